package walrus

import "context"

// OpenPausedAppendStream opens an AppendStream whose sender writes nothing
// until release is called, so the appends sent before release are queued
// together and the messages they make are known exactly.
func OpenPausedAppendStream(ctx context.Context, c *Client) (s *AppendStream, release func(), err error) {
	gate := make(chan struct{})
	s, err = c.openAppendStream(ctx, gate)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { close(gate) }, nil
}

// WireMessages is how many messages s has written to the daemon.
func WireMessages(s *AppendStream) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wireCount
}

// SenderDone is closed when s's sender goroutine has ended.
func SenderDone(s *AppendStream) <-chan struct{} { return s.done }
