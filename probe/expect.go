package probe

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the expectations; they wrap details.
var (
	// ErrTimeout: the expected message did not arrive in time.
	ErrTimeout = errors.New("probe: timed out")
	// ErrUnexpected: a message arrived that the expectation does not allow.
	ErrUnexpected = errors.New("probe: unexpected message")
)

func timeoutError(d time.Duration) error {
	return fmt.Errorf("%w: no message within %v", ErrTimeout, d)
}

// ExpectMsg reads the probe's next message and returns it as a T. It fails
// with ErrUnexpected if the next message is of another type (the message is
// consumed) and with ErrTimeout if none arrives within timeout.
func ExpectMsg[T any](p *TestProbe, timeout time.Duration) (T, error) {
	var zero T
	r, err := p.Next(timeout)
	if err != nil {
		return zero, fmt.Errorf("expecting %T: %w", zero, err)
	}
	m, ok := r.Message.(T)
	if !ok {
		return zero, fmt.Errorf("%w: expected %T, got %T: %v", ErrUnexpected, zero, r.Message, r.Message)
	}
	return m, nil
}

// ExpectNoMsg waits d and fails with ErrUnexpected if a message arrives in
// that time (the message is consumed).
func (p *TestProbe) ExpectNoMsg(d time.Duration) error {
	r, err := p.Next(d)
	if errors.Is(err, ErrTimeout) {
		return nil
	}
	return fmt.Errorf("%w: expected none, got %T: %v", ErrUnexpected, r.Message, r.Message)
}

// FishForMessage reads the probe's messages until match accepts one, which
// it returns; the messages it skips are discarded. It fails with ErrTimeout
// if no accepted message arrives within timeout.
func FishForMessage(p *TestProbe, timeout time.Duration, match func(msg any) bool) (any, error) {
	deadline := time.Now().Add(timeout)
	skipped := 0
	for {
		r, err := p.Next(time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("%w: no matching message within %v (%d skipped)", ErrTimeout, timeout, skipped)
		}
		if match(r.Message) {
			return r.Message, nil
		}
		skipped++
	}
}
