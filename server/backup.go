package server

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/messages"
)

// backupChunkBytes is the most file data one SnapshotSaveChunk carries.
const backupChunkBytes = 1 << 20

// SnapshotSave snapshots this node now and streams the snapshot file, for
// `livepaxos snapshot save`. The file is sent as it is on disk: its own
// checksums and its handle (instance, epoch, membership) travel with it,
// and the receiver verifies it whole before keeping it.
func (k *kvService) SnapshotSave(_ *messages.SnapshotSaveRequest, st messages.KV_SnapshotSaveServer) error {
	s := k.s
	if !authorized("/livepaxos.v1.KV/SnapshotSave", peerCert(st.Context()), s.clientCerts, s.cfg.AdminNames) {
		return errNotAdmin("/livepaxos.v1.KV/SnapshotSave")
	}
	ctx, cancel := context.WithTimeout(st.Context(), time.Minute)
	req := &request{kind: kindSnapshot}
	a := s.do(ctx, req)
	cancel()
	resp, ok := a.msg.(*messages.SnapshotResponse)
	switch {
	case !ok:
		return s.failedStatus(req, a)
	case resp.Error != "":
		return s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "no snapshot taken: "+resp.Error)
	}
	f, info, err := s.replica.OpenLatestSnapshot()
	if errors.Is(err, actors.ErrNoSnapshotFile) {
		return s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
	}
	if err != nil {
		return s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "opening the snapshot: "+err.Error())
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "opening the snapshot: "+err.Error())
	}
	buf := make([]byte, backupChunkBytes)
	for sent := int64(0); ; {
		n, err := io.ReadFull(f, buf)
		if n > 0 || sent == 0 {
			c := &messages.SnapshotSaveChunk{Data: buf[:n]}
			if sent == 0 {
				c.Instance, c.TotalBytes = info.Instance, uint64(fi.Size())
			}
			if err := st.Send(c); err != nil {
				return err
			}
			sent += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if sent != fi.Size() {
				return s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "the snapshot file changed while it was sent")
			}
			return nil
		case err != nil:
			return s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "reading the snapshot: "+err.Error())
		}
	}
}
