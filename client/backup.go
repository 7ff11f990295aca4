package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/livepaxos/livepaxos/messages"
)

// SaveSnapshot has one node (the first of the endpoints that answers)
// snapshot its database now and writes that snapshot file to w, for a
// backup that `livepaxos restore` makes a new cluster from. It returns
// the snapshot's instance. progress, if not nil, is called after each
// chunk with the bytes written so far and the file's size. A failure
// after the first bytes were written to w is returned as it is: w then
// holds a partial file (`livepaxos snapshot save` writes a temporary
// file, verifies it whole, and only then renames it).
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer, progress func(done, total uint64)) (uint64, error) {
	var lastErr error = ErrNoMaster
	for _, ep := range c.knownEndpoints() {
		instance, wrote, err := c.saveSnapshotFrom(ctx, ep, w, progress)
		if err == nil || wrote || ctx.Err() != nil {
			return instance, err
		}
		lastErr = err
	}
	return 0, lastErr
}

// SaveSnapshotFrom is SaveSnapshot from the node at endpoint ep alone (a
// client address, whether or not it is among the client's endpoints):
// `members force-shrink` takes the most caught-up survivor's state.
func (c *Client) SaveSnapshotFrom(ctx context.Context, ep string, w io.Writer, progress func(done, total uint64)) (uint64, error) {
	instance, _, err := c.saveSnapshotFrom(ctx, ep, w, progress)
	return instance, err
}

// saveSnapshotFrom streams the snapshot of the node at ep into w; wrote
// says whether any byte reached w.
func (c *Client) saveSnapshotFrom(ctx context.Context, ep string, w io.Writer, progress func(done, total uint64)) (instance uint64, wrote bool, err error) {
	n, err := c.node(ep)
	if err != nil {
		return 0, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := n.kvs[0].SnapshotSave(ctx, &messages.SnapshotSaveRequest{})
	if err != nil {
		return 0, false, c.snapshotError(ep, err)
	}
	var done, total uint64
	for first := true; ; first = false {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			if first || done != total {
				return instance, wrote, fmt.Errorf("%w: snapshot from %s ended after %d of %d bytes", ErrSnapshot, ep, done, total)
			}
			return instance, wrote, nil
		}
		if err != nil {
			return instance, wrote, c.snapshotError(ep, err)
		}
		if first {
			instance, total = chunk.Instance, chunk.TotalBytes
		}
		if done+uint64(len(chunk.Data)) > total {
			return instance, wrote, fmt.Errorf("%w: snapshot from %s runs past its size %d", ErrSnapshot, ep, total)
		}
		if len(chunk.Data) > 0 {
			wrote = true
			if _, err := w.Write(chunk.Data); err != nil {
				return instance, wrote, err
			}
		}
		done += uint64(len(chunk.Data))
		if progress != nil {
			progress(done, total)
		}
	}
}

func (c *Client) snapshotError(ep string, err error) error {
	code, msg, said, out := c.rpcError(ep, err)
	if said && code == messages.ErrorCode_ERROR_CODE_PERMISSION_DENIED {
		return fmt.Errorf("%w: %s", ErrPermissionDenied, msg)
	}
	if said {
		return fmt.Errorf("%w: snapshot of %s: %s", ErrSnapshot, ep, msg)
	}
	return out
}
