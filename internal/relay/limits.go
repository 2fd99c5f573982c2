package relay

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Bounds on what the AI apps' messages can make Countersign hold. A message
// costs several times its size on its way through (parsing, the review,
// redaction, the audit), so one message is bounded, and so are all the
// messages being handled at once. These are the built-in figures; an
// organisation's policy may set others (see Limits and SetLimits).
const (
	// DefaultMaxMessage bounds one POST body from an AI app. (A server's
	// answers may be larger: see transport.DefaultMaxMessage.) Measured
	// with the app's guard and audit, a tool call costs the app about 17
	// times its size while it is handled.
	DefaultMaxMessage = 4 << 20
	// DefaultMaxInFlight bounds the bytes of every AI app's POST bodies
	// being handled at once, held tool calls included: with the cost
	// above, a few hundred megabytes at worst.
	DefaultMaxInFlight = 32 << 20
	// maxBatch bounds the messages in one JSON-RPC batch (2025-03-26).
	maxBatch = 128
)

// Limits are the bounds an organisation's policy may change while the
// relay runs (see SetLimits). A zero field means the built-in figure.
type Limits struct {
	// CallTimeout bounds how long a request forwarded to a server may go
	// unanswered (DefaultCallTimeout).
	CallTimeout time.Duration
	// MaxMessage bounds one POST body (DefaultMaxMessage).
	MaxMessage int64
	// MaxInFlight bounds the bytes of all POST bodies being handled at
	// once (DefaultMaxInFlight); it is never below MaxMessage, so that a
	// message within the limit can be taken.
	MaxInFlight int64
	// MaxSessionsPerClient bounds the open sessions of one AI app
	// (DefaultMaxSessionsPerClient).
	MaxSessionsPerClient int
}

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	if l.CallTimeout <= 0 {
		l.CallTimeout = DefaultCallTimeout
	}
	if l.MaxMessage <= 0 {
		l.MaxMessage = DefaultMaxMessage
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	l.MaxInFlight = max(l.MaxInFlight, l.MaxMessage)
	if l.MaxSessionsPerClient <= 0 {
		l.MaxSessionsPerClient = DefaultMaxSessionsPerClient
	}
	return l
}

// SetLimits changes the relay's limits from now on: the call timeout for
// requests forwarded after it, the message limits for the next message,
// the session cap for the next session an AI app opens. What is already
// running keeps the limits it started with.
func (r *Relay) SetLimits(l Limits) {
	l = l.withDefaults()
	r.limits.Store(&l)
	r.inFlight.setMax(l.MaxInFlight)
}

// Limits returns the limits in force, defaults filled in.
func (r *Relay) Limits() Limits { return *r.limits.Load() }

// budget counts bytes against a limit; take never waits.
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

// take reserves n bytes, reporting false when they would not fit.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// setMax changes the limit; bytes taken beyond a lowered one are given
// back as before, and nothing more is taken until they are.
func (b *budget) setMax(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.max = n
}

// give returns n bytes taken before.
func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// inUse reports the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// readBody reads a POST body within the limits. It writes the HTTP error
// itself and returns ok false when the body is refused; otherwise release
// must be called once the message is handled, to give its bytes back to
// the budget.
func (r *Relay) readBody(w http.ResponseWriter, req *http.Request) (body []byte, release func(), ok bool) {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			httpError(w, http.StatusUnsupportedMediaType, "a message must be sent as application/json")
			return nil, nil, false
		}
	}
	limit := r.limits.Load().MaxMessage
	if req.ContentLength > limit {
		// Refused before a byte of it is read.
		w.Header().Set("Connection", "close")
		httpError(w, http.StatusRequestEntityTooLarge, tooLarge(limit))
		return nil, nil, false
	}
	reserved := req.ContentLength
	if reserved < 0 {
		reserved = limit // length unknown until read
	}
	if !r.inFlight.take(reserved) {
		r.log.Warn("refusing a message: too much data is being handled at once", "bytes", reserved, "in use", r.inFlight.inUse())
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable,
			"Countersign is busy with other large messages from AI apps; try again in a moment")
		return nil, nil, false
	}
	release = func() { r.inFlight.give(reserved) }
	rd := http.MaxBytesReader(w, req.Body, limit)
	var err error
	if req.ContentLength >= 0 {
		body = make([]byte, req.ContentLength)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		release()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, tooLarge(limit))
		} else {
			httpError(w, http.StatusBadRequest, "reading the request body failed")
		}
		return nil, nil, false
	}
	if n := int64(len(body)); n < reserved {
		r.inFlight.give(reserved - n)
		reserved = n
	}
	return body, release, true
}

// tooLarge is the message for a body over limit bytes.
func tooLarge(limit int64) string {
	return fmt.Sprintf("message too large: Countersign accepts messages of up to %s", sizeText(limit))
}

// sizeText writes a byte count for people: "8 MB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
