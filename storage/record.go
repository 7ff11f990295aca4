package storage

import (
	"encoding/binary"
	"hash/crc32"
)

// frameHeaderSize is the length and checksum that precede every payload.
const frameHeaderSize = 8

// castagnoli is the CRC-32C table. CRC-32C is used rather than IEEE because it
// detects more error patterns and has hardware support on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize is the on-disk size of a record with an n-byte payload.
func frameSize(n int) int { return frameHeaderSize + n }

// appendFrame appends payload, framed, to dst.
func appendFrame(dst, payload []byte) []byte {
	var hdr [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:8], frameChecksum(hdr[0:4], payload))
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// frameChecksum is the CRC-32C of the encoded length followed by the payload.
func frameChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

// frameLength decodes the payload length from a frame header.
func frameLength(hdr []byte) uint32 { return binary.LittleEndian.Uint32(hdr[0:4]) }

// frameValid reports whether hdr (a full frame header) and payload form an
// intact record.
func frameValid(hdr, payload []byte) bool {
	return frameLength(hdr) == uint32(len(payload)) &&
		binary.LittleEndian.Uint32(hdr[4:8]) == frameChecksum(hdr[0:4], payload)
}
