package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// LegacySSE is a client session over the HTTP+SSE transport of protocol
// revision 2024-11-05: one GET event stream carries every server message,
// and messages to the server are POSTed to the URL its "endpoint" event
// names. Unlike mcp-go's, it carries server-to-client requests both ways.
type LegacySSE struct {
	life
	o        HTTPOptions
	ctx      context.Context
	cancel   context.CancelFunc
	in       chan Incoming
	endpoint *url.URL
	stream   io.Closer
}

// DialLegacySSE opens the event stream and waits, within ctx, for the
// server to name its message endpoint.
func DialLegacySSE(ctx context.Context, o HTTPOptions) (*LegacySSE, error) {
	o.defaults()
	base, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("transport: SSE URL: %w", err)
	}
	lifeCtx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(lifeCtx, http.MethodGet, o.URL, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	addHeaders(req, o.Header)
	req.Header.Set("Accept", "text/event-stream")
	stop := context.AfterFunc(ctx, cancel)
	resp, err := o.Client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("transport: GET %s: %w", o.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		cancel()
		return nil, &HTTPStatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body)), Header: resp.Header}
	}
	r := newEventReader(resp.Body, o.MaxMessage)
	var endpoint *url.URL
	for endpoint == nil {
		ev, err := r.Next()
		if err != nil {
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("transport: SSE stream ended before the endpoint event: %w", err)
		}
		if ev.Name != "endpoint" {
			continue
		}
		u, err := base.Parse(string(bytes.TrimSpace(ev.Data)))
		if err != nil || u.Scheme != base.Scheme || u.Host != base.Host {
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("transport: SSE endpoint %q is not on the server's origin", ev.Data)
		}
		endpoint = u
	}
	if !stop() { // ctx ended while we read
		resp.Body.Close()
		return nil, ctx.Err()
	}
	c := &LegacySSE{life: newLife(), o: o, ctx: lifeCtx, cancel: cancel, in: make(chan Incoming, 64), endpoint: endpoint, stream: resp.Body}
	go c.readLoop(r)
	return c, nil
}

func (c *LegacySSE) readLoop(r *EventReader) {
	for {
		ev, err := r.Next()
		if err != nil {
			if err == io.EOF {
				err = errors.New("transport: the server closed its event stream")
			}
			c.end(fmt.Errorf("%w: %v", ErrSessionLost, err))
			c.cancel()
			return
		}
		if ev.Name != "message" {
			continue
		}
		msgs, _, err := jsonrpc.SplitBatch(ev.Data)
		if err != nil {
			c.o.Logger.Warn("server sent invalid JSON on its event stream", "err", err)
			continue
		}
		for _, raw := range msgs {
			if !c.deliver(c.in, Incoming{Raw: append([]byte(nil), raw...)}) {
				return
			}
		}
	}
}

// Incoming delivers the server's messages.
func (c *LegacySSE) Incoming() <-chan Incoming { return c.in }

// Send POSTs one message to the endpoint; its answer comes on the stream.
// The server must accept the message within a minute, and before ctx ends.
func (c *LegacySSE) Send(ctx context.Context, msg []byte, header http.Header) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.endpoint.String(), bytes.NewReader(msg))
	if err != nil {
		return err
	}
	addHeaders(req, c.o.Header, header)
	req.Header.Set("Content-Type", "application/json")
	resp, err := do(c.o.Client, c.ctx, req, ctx, c.o.HeaderTimeout)
	if err != nil {
		if c.ctx.Err() != nil {
			return c.Err()
		}
		return fmt.Errorf("transport: POST %s: %w", c.endpoint, err)
	}
	defer drain(resp)
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
		if resp.StatusCode == http.StatusNotFound {
			c.end(ErrSessionLost)
			c.cancel()
			return ErrSessionLost
		}
		// A JSON-RPC error answering the request is its answer.
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if m, err := jsonrpc.Parse(msg); err == nil && m.Kind == jsonrpc.KindRequest && ct == "application/json" && len(body) <= maxErrorBody {
			if answer := ErrorAnswer(body, m.ID); answer != nil {
				if !c.deliver(c.in, Incoming{Raw: answer, Status: resp.StatusCode}) {
					return c.Err()
				}
				return nil
			}
		}
		if len(body) > 512 {
			body = body[:512]
		}
		return &HTTPStatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body)), Header: resp.Header}
	}
	return nil
}

// Close ends the stream, which ends the session.
func (c *LegacySSE) Close() error {
	c.end(ErrClosed)
	c.cancel()
	c.stream.Close()
	return nil
}
