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
	status map[string]int // HTTP status for an answer, by the host's id
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

// pushAnswer queues the answer to the host's request id, with the HTTP
// status the host's response should carry if it is answered alone (zero
// for 200).
func (s *stream) pushAnswer(msg []byte, id []byte, status int) bool {
	if status != 0 {
		s.mu.Lock()
		if s.status == nil {
			s.status = make(map[string]int)
		}
		s.status[string(id)] = status
		s.mu.Unlock()
	}
	return s.push(msg)
}

// statusFor returns the HTTP status for the answer to id, 200 unless
// pushAnswer said otherwise.
func (s *stream) statusFor(id []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.status[string(id)]; st != 0 {
		return st
	}
	return 200
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
