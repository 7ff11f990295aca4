// Package storage is the durable write-ahead log of one replica.
//
// Every Paxos acceptor must have its promise or acceptance on disk before any
// reply leaves, so the log is on the critical path of every instance. It is
// therefore built around group commit: appenders queue framed records in
// memory, and a single goroutine writes everything queued with one write per
// segment touched and covers it with one fdatasync, while the next group
// accumulates behind it. Under load one fsync covers many records.
//
// On disk the log is a directory of append-only segment files named by a
// zero-padded hexadecimal sequence number (so lexical order is numeric
// order), plus a LOCK file that holds an exclusive flock while the log is
// open. Each segment starts with a checksummed header and then holds records
// framed as
//
//	length  uint32 little-endian  payload length
//	crc     uint32 little-endian  CRC-32C (Castagnoli) of length bytes + payload
//	payload [length]byte
//
// The checksum covers the length so that a garbled length is caught instead
// of sending the reader off into the middle of the next record. Segments are
// independent of each other (no record spans two), so that removing the
// segments that precede a snapshot is a matter of deleting files.
//
// Records are opaque: the caller encodes them and decodes them on replay.
//
// A LOGRANGE file names the oldest segment a replay needs and the newest
// segment created, so that a lost segment at either end (which leaves the
// others consecutive and intact) is noticed: Open refuses with
// ErrSegmentMissing rather than start with a shorter log (logrange.go
// says when it is written, and why that order is crash-safe). With
// Options.RangeRequired (data directories of format 2), the file's own
// loss is refused too (ErrRangeMissing).
//
// Recovery distinguishes a crash from corruption. A crash can only damage the
// unsynced tail of the newest segment, and only by leaving parts of the last
// write unwritten (zeros), so a broken record there that is missing a part,
// with nothing but zeros after it, is cut off (tail.go has the whole rule and
// why). Damage anywhere else means data that was acknowledged as durable has
// been lost; Open refuses with ErrCorrupt rather than silently forget a
// promise, and the replica must be rebuilt.
//
// An fsync failure is fatal: after a failed fsync Linux may have dropped the
// dirty pages and cleared the error, so a retry that "succeeds" proves
// nothing. The log fails for good and reports through Options.OnFatal.
package storage
