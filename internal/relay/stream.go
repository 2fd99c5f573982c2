package relay

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/transport"
)

// maxQueued bounds what one host stream holds while its writer is slow.
const maxQueued = 10000

// Bounds on what a resumable stream keeps of the events it has written,
// for a host that reconnects with Last-Event-ID, and on how many such
// streams a session keeps.
const (
	maxReplayEvents = 256
	maxReplayBytes  = 4 << 20
	maxResumable    = 16
)

// stream is the queue of messages bound for one open host HTTP response:
// a POST's event stream or a GET stream. Producers never block; the
// handler that owns the response drains it.
//
// A stream of a host session (protocol revisions 2025-03-26 to 2025-11-25)
// is resumable: its events carry ids "<stream>-<event>", it remembers the
// last events it wrote, and when the host's response ends early it is
// detached rather than closed: it keeps the answers to its requests until
// the host resumes it with a GET carrying Last-Event-ID.
type stream struct {
	sse  bool          // the response is an event stream (else one JSON body)
	wake chan struct{} // buffered(1): something was queued
	num  int           // number within the session; 0: not resumable
	get  bool          // a GET stream (else a POST's)
	call bool          // a POST of one tools/call
	via  hostwait.Via  // how the AI app reached Countersign (the POST's Countersign-Via)

	mu       sync.Mutex
	queue    [][]byte
	closed   bool
	detached bool           // the host's response ended early; answers still queue
	status   map[string]int // HTTP status for an answer, by the host's id
	// told holds, by the host's id, what is told whether a queued answer
	// reached the host (see pushAnswer), oldest first.
	told     map[string][]func(delivered bool)
	open     map[string]bool
	seq      int      // the last event id number used
	sent     []sentEv // the last events written, oldest first
	sentSize int
	writing  chan struct{} // closed when the current writer lets go; nil when none
	kick     chan struct{} // closed to ask the current writer to let go
}

// sentEv is an event a resumable stream wrote.
type sentEv struct {
	seq  int
	data []byte
}

func newStream(sse bool) *stream {
	return &stream{sse: sse, wake: make(chan struct{}, 1)}
}

// push queues msg. It reports false when the stream is closed, detached or
// full, so the caller can route msg elsewhere.
func (s *stream) push(msg []byte) bool {
	s.mu.Lock()
	if s.closed || s.detached || len(s.queue) >= maxQueued {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	s.signal()
	return true
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pushAnswer queues the answer to the host's request id, with the HTTP
// status the host's response should carry if it is answered alone (zero
// for 200). A detached stream still takes it, for the host to resume, and
// so does a full one: maxQueued bounds the server's notifications, and an
// answer, one per request the host sent on the stream, is never dropped
// for them. Only a closed stream refuses it: the host has gone.
//
// told, unless nil, is told exactly once whether the answer reached the
// host: true once it is written to the host's response, false if the
// stream refuses it or closes with it unwritten.
func (s *stream) pushAnswer(msg []byte, id []byte, status int, told func(delivered bool)) bool {
	s.mu.Lock()
	if status != 0 {
		if s.status == nil {
			s.status = make(map[string]int)
		}
		s.status[string(id)] = status
	}
	if s.closed {
		s.mu.Unlock()
		if told != nil {
			told(false)
		}
		return false
	}
	s.queue = append(s.queue, msg)
	if told != nil {
		if s.told == nil {
			s.told = make(map[string][]func(bool))
		}
		s.told[string(id)] = append(s.told[string(id)], told)
	}
	s.mu.Unlock()
	s.signal()
	return true
}

// takeTold returns, and forgets, what is to be told whether the answer
// to id reached the host; nil when nothing is.
func (s *stream) takeTold(id []byte) func(bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.told[string(id)]
	if len(fs) == 0 {
		return nil
	}
	if len(fs) == 1 {
		delete(s.told, string(id))
	} else {
		s.told[string(id)] = fs[1:]
	}
	return fs[0]
}

// holdsAnswers reports whether answers wait in the stream for the host
// with someone to be told of their fate.
func (s *stream) holdsAnswers() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.told) > 0
}

// untoldLocked returns, and forgets, everything still to be told of the
// answers queued: the stream is closing. s.mu must be held.
func (s *stream) untoldLocked() []func(bool) {
	var out []func(bool)
	for _, fs := range s.told {
		out = append(out, fs...)
	}
	s.told = nil
	return out
}

// tell tells each of fs whether its answer reached the host.
func tell(fs []func(bool), delivered bool) {
	for _, f := range fs {
		f(delivered)
	}
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

// expect records the ids of the host's requests whose answers the stream
// carries.
func (s *stream) expect(ids [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = make(map[string]bool, len(ids))
	for _, id := range ids {
		s.open[string(id)] = true
	}
}

// written notes that msg was written to the host's response: an answer
// to one of the stream's requests is no longer open, and whoever waits to
// hear of its fate is told it was delivered.
func (s *stream) written(msg []byte) {
	m, err := jsonrpc.Parse(msg)
	if err != nil || m.Kind != jsonrpc.KindResponse {
		return
	}
	s.answeredBy(m)
	if f := s.takeTold(m.ID); f != nil {
		f(true)
	}
}

// answeredBy is answered for a message already parsed.
func (s *stream) answeredBy(m jsonrpc.Message) bool {
	if m.Kind != jsonrpc.KindResponse {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open[string(m.ID)] {
		return false
	}
	delete(s.open, string(m.ID))
	return true
}

// isOpen reports whether id is a request of the stream still unanswered.
func (s *stream) isOpen(id []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[string(id)]
}

// done reports whether a POST stream has carried every answer it expects.
func (s *stream) done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.get && len(s.open) == 0
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
// The answers among them never reached the host, and whoever waits to
// hear of their fate is told so.
func (s *stream) close() [][]byte {
	s.mu.Lock()
	s.closed = true
	s.release()
	q := s.queue
	s.queue = nil
	untold := s.untoldLocked()
	s.mu.Unlock()
	tell(untold, false)
	return q
}

// detach ends the stream's current response but keeps the stream for a
// resume: answers to its requests keep queueing; everything else left
// unread is returned for routing elsewhere.
func (s *stream) detach() (unread [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detached = true
	s.release()
	var kept [][]byte
	for _, msg := range s.queue {
		if m, err := jsonrpc.Parse(msg); err == nil && m.Kind == jsonrpc.KindResponse {
			kept = append(kept, msg)
		} else {
			unread = append(unread, msg)
		}
	}
	s.queue = kept
	return unread
}

// release lets a resume waiting for the current writer proceed. s.mu must
// be held.
func (s *stream) release() {
	if s.writing != nil {
		close(s.writing)
		s.writing = nil
		s.kick = nil
	}
}

// attach makes the caller the stream's writer. A writer still attached is
// asked to let go first; attach gives up when it has not by the time wait
// is closed. It returns the channel that is closed when a later resume
// asks the caller to let go.
func (s *stream) attach(wait <-chan time.Time) (kick <-chan struct{}, ok bool) {
	for {
		s.mu.Lock()
		if s.writing == nil {
			s.writing = make(chan struct{})
			s.kick = make(chan struct{})
			s.detached = false
			k := s.kick
			s.mu.Unlock()
			s.signal() // answers may have queued while detached
			return k, true
		}
		writing := s.writing
		select {
		case <-s.kick:
		default:
			close(s.kick)
		}
		s.mu.Unlock()
		select {
		case <-writing:
		case <-wait:
			return nil, false
		}
	}
}

// startWriting makes a new response the stream's writer.
func (s *stream) startWriting() <-chan struct{} {
	k, _ := s.attach(nil)
	return k
}

// unshift puts messages taken but not written back at the queue's head.
func (s *stream) unshift(msgs [][]byte) {
	if len(msgs) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(append([][]byte(nil), msgs...), s.queue...)
	s.mu.Unlock()
}

// eventID returns the id of the stream's event number seq.
func (s *stream) eventID(seq int) string {
	return strconv.Itoa(s.num) + "-" + strconv.Itoa(seq)
}

// parseEventID reads an id eventID made.
func parseEventID(id string) (num, seq int, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	num, err1 := strconv.Atoi(a)
	seq, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || num <= 0 || seq < 0 || strconv.Itoa(num) != a || strconv.Itoa(seq) != b {
		return 0, 0, false
	}
	return num, seq, true
}

// write writes msg as the stream's next event, with an id when the stream
// is resumable, and remembers it for a replay.
func (s *stream) write(w io.Writer, msg []byte) error {
	if s.num == 0 {
		return transport.WriteEvent(w, "", "message", msg)
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.sent = append(s.sent, sentEv{seq: seq, data: msg})
	s.sentSize += len(msg)
	for len(s.sent) > maxReplayEvents || (s.sentSize > maxReplayBytes && len(s.sent) > 0) {
		s.sentSize -= len(s.sent[0].data)
		s.sent = s.sent[1:]
	}
	s.mu.Unlock()
	return transport.WriteEvent(w, s.eventID(seq), "message", msg)
}

// prime writes the event with an id and no data that the 2025-11-25
// revision has a server send first, so a host can resume from the start.
func (s *stream) prime(w io.Writer) error {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	return transport.WriteEvent(w, s.eventID(seq), "", nil)
}

// wroteAfter reports whether the stream keeps an event it wrote after
// event number after.
func (s *stream) wroteAfter(after int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent) > 0 && s.sent[len(s.sent)-1].seq > after
}

// replay writes again the events the stream wrote after event number
// after, with their ids.
func (s *stream) replay(w io.Writer, after int) error {
	s.mu.Lock()
	var evs []sentEv
	for _, ev := range s.sent {
		if ev.seq > after {
			evs = append(evs, ev)
		}
	}
	s.mu.Unlock()
	for _, ev := range evs {
		if err := transport.WriteEvent(w, s.eventID(ev.seq), "message", ev.data); err != nil {
			return err
		}
	}
	return nil
}

// resumables are a session's resumable streams, by number.
type resumables struct {
	mu      sync.Mutex
	next    int
	streams map[int]*stream
	order   []int // oldest first
}

// track numbers st and keeps it for resumes, forgetting the oldest stream
// beyond maxResumable.
func (r *resumables) track(st *stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams == nil {
		r.streams = make(map[int]*stream)
	}
	r.next++
	st.num = r.next
	r.streams[st.num] = st
	r.order = append(r.order, st.num)
	for len(r.order) > maxResumable {
		delete(r.streams, r.order[0])
		r.order = r.order[1:]
	}
}

// all returns the streams kept.
func (r *resumables) all() []*stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*stream, 0, len(r.streams))
	for _, st := range r.streams {
		out = append(out, st)
	}
	return out
}

// find returns the stream an event id names, if the session still has it.
func (r *resumables) find(lastEventID string) (*stream, int, error) {
	num, seq, ok := parseEventID(lastEventID)
	if !ok {
		return nil, 0, fmt.Errorf("relay: %q is not an event id of this relay", lastEventID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.streams[num]
	if st == nil {
		return nil, 0, fmt.Errorf("relay: stream %d is no longer kept", num)
	}
	return st, seq, nil
}
