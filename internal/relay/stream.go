package relay

import "sync"

// maxQueued bounds what one host stream holds while its writer is slow.
const maxQueued = 10000

// stream is the queue of messages bound for one open host HTTP response:
// a POST's event stream or a GET stream. Producers never block; the
// handler that owns the response drains it.
type stream struct {
	sse  bool          // the response is an event stream (else one JSON body)
	wake chan struct{} // buffered(1): something was queued

	mu     sync.Mutex
	queue  [][]byte
	closed bool
}

func newStream(sse bool) *stream {
	return &stream{sse: sse, wake: make(chan struct{}, 1)}
}

// push queues msg. It reports false when the stream is closed or full, so
// the caller can route msg elsewhere.
func (s *stream) push(msg []byte) bool {
	s.mu.Lock()
	if s.closed || len(s.queue) >= maxQueued {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns and clears what is queued.
func (s *stream) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// close stops the stream taking messages and returns any left unread.
func (s *stream) close() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	q := s.queue
	s.queue = nil
	return q
}
