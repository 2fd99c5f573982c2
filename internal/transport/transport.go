// Package transport connects to MCP servers as a client, over stdio,
// Streamable HTTP and the legacy HTTP+SSE transport, and moves JSON-RPC
// messages as raw bytes: nothing is decoded and encoded again, so _meta,
// unknown fields and large integers arrive as the server wrote them.
//
// It exists because mcp-go's client transports re-encode notifications,
// cap server-to-client requests at 30 seconds and cannot carry them on SSE.
package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
)

// Incoming is a message from the server.
type Incoming struct {
	Raw []byte
	// RelatedTo is the id of our request whose HTTP response stream carried
	// this message, nil when the transport cannot tell (stdio, GET stream).
	RelatedTo json.RawMessage
	// Status is the HTTP error status (4xx or 5xx) of the response whose
	// body was this message: the server's JSON-RPC error answer to our
	// request. Zero for everything else.
	Status int
}

// Conn is a client connection to one MCP server session.
type Conn interface {
	// Send delivers one message. header carries extra HTTP headers for HTTP
	// transports (for example a host's Mcp-Name) and is ignored by stdio.
	Send(ctx context.Context, msg []byte, header http.Header) error
	// Incoming delivers the server's messages in order.
	Incoming() <-chan Incoming
	// Done is closed when the connection is lost or closed; Err says why.
	Done() <-chan struct{}
	Err() error
	// Close ends the session and releases its resources.
	Close() error
}

// ErrClosed is the error of a connection closed by its owner.
var ErrClosed = errors.New("transport: connection closed")

// ErrSessionLost means the server no longer knows the session.
var ErrSessionLost = errors.New("transport: the server ended the session")

// HTTPStatusError is an HTTP error answer to a sent message.
type HTTPStatusError struct {
	Status int
	Body   string // first bytes of the body, for the error message
	Header http.Header
}

func (e *HTTPStatusError) Error() string {
	msg := "transport: server answered HTTP " + http.StatusText(e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// life is the shared done/err bookkeeping of a connection.
type life struct {
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newLife() life { return life{done: make(chan struct{})} }

// end records err as the reason the connection ended; only the first counts.
func (l *life) end(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
	})
}

func (l *life) Done() <-chan struct{} { return l.done }

func (l *life) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// deliver hands a message to the reader unless the connection has ended.
func (l *life) deliver(ch chan<- Incoming, in Incoming) bool {
	select {
	case ch <- in:
		return true
	case <-l.done:
		return false
	}
}

// addHeaders copies every header in src onto req, canonicalising names.
func addHeaders(req *http.Request, src ...http.Header) {
	for _, h := range src {
		for k, vs := range h {
			req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
	}
}
