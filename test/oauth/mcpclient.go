package oauth

import (
	"context"
	"encoding/json"
	"fmt"
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
// matches answers to requests.
type MCPClient struct {
	conn    *transport.StreamableHTTP
	mu      sync.Mutex
	next    int
	waiting map[string]chan []byte
}

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
	id := fmt.Sprint(c.next)
	ch := make(chan []byte, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	p, _ := json.Marshal(params)
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.next, "method": method, "params": json.RawMessage(p)})
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

// Initialize runs the MCP handshake as clientName.
func (c *MCPClient) Initialize(ctx context.Context, clientName string) error {
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
