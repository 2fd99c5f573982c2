package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/transport"
)

// NewMCPClient starts reading conn's messages; it stops when conn ends.
func NewMCPClient(conn *transport.StreamableHTTP) *MCPClient {
	c := &MCPClient{conn: conn, waiting: map[string]chan []byte{}}
	go c.read()
	return c
}

// MCPClient is a minimal MCP client on a transport connection: it
// matches answers to requests. Once [MCPClient.Initialize] found a
// 2026-07-28 server, it speaks that version's stateless protocol: every
// request carries the protocol version, the client's capabilities and its
// name in params._meta (the transport copies the version into the
// MCP-Protocol-Version header), and there is no session.
type MCPClient struct {
	conn    *transport.StreamableHTTP
	mu      sync.Mutex
	next    int
	waiting map[string]chan []byte
	// meta is added to every request's params._meta; nil before a
	// stateless server was found.
	meta map[string]any
}

// stateless is the protocol version whose requests each carry their
// context in _meta.
const stateless = "2026-07-28"

func (c *MCPClient) read() {
	for {
		select {
		case in := <-c.conn.Incoming():
			m, err := jsonrpc.Parse(in.Raw)
			if err != nil || m.Kind != jsonrpc.KindResponse {
				continue
			}
			c.mu.Lock()
			ch := c.waiting[string(m.ID)]
			c.mu.Unlock()
			if ch != nil {
				ch <- in.Raw
			}
		case <-c.conn.Done():
			return
		}
	}
}

// Call sends a request and waits for its result.
func (c *MCPClient) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	c.next++
	n, meta := c.next, c.meta
	id := fmt.Sprint(n)
	ch := make(chan []byte, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	p, err := withMeta(params, meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": n, "method": method, "params": p})
	if err := c.conn.Send(ctx, msg, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case raw := <-ch:
		var r struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(raw, &r)
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: no answer: %w", method, ctx.Err())
	}
}

// withMeta is params (an object) with meta's keys added to its _meta.
func withMeta(params any, meta map[string]any) (map[string]any, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	p := map[string]any{}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("params are not an object: %w", err)
	}
	if len(meta) == 0 {
		return p, nil
	}
	m, _ := p["_meta"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	for k, v := range meta {
		m[k] = v
	}
	p["_meta"] = m
	return p, nil
}

// Initialize starts talking to the server as clientName: by asking a
// 2026-07-28 server what it supports (server/discover, stateless), or,
// when the server does not speak that version, with the initialize
// handshake of 2025-11-25.
func (c *MCPClient) Initialize(ctx context.Context, clientName string) error {
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    stateless,
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": clientName, "version": "1.0.0"},
	}
	c.mu.Lock()
	c.meta = meta
	c.mu.Unlock()
	res, err := c.Call(ctx, "server/discover", map[string]any{})
	if err == nil {
		var d struct {
			SupportedVersions []string `json:"supportedVersions"`
		}
		if json.Unmarshal(res, &d) == nil && slices.Contains(d.SupportedVersions, stateless) {
			return nil
		}
	}
	c.mu.Lock()
	c.meta = nil
	c.mu.Unlock()
	if _, err := c.Call(ctx, "initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": clientName, "version": "1.0.0"},
	}); err != nil {
		return err
	}
	note := []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err := c.conn.Send(ctx, note, nil); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	return nil
}
