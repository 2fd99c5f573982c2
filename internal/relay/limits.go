package relay

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
)

// Bounds on what the AI apps' messages can make Countersign hold. A message
// costs several times its size on its way through (parsing, the review,
// redaction, the audit), so one message is bounded, and so are all the
// messages being handled at once.
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
	limit := r.o.MaxMessage
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
