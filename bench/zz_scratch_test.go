package bench

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"log/slog"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/client"
)

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(ms(percentile(lat, 0.5)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
}

// gate round trip with in-process approver
func BenchmarkXGate(b *testing.B) {
	g := gate.New(gate.Options{})
	sub := g.Subscribe()
	go func() {
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				g.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	defer g.Close()
	lat := make([]time.Duration, 0, b.N)
	for range b.N {
		s := time.Now()
		g.Submit(context.Background(), gate.Call{Server: "x", Tool: "echo", Arguments: json.RawMessage(`{"message":"bench"}`)})
		lat = append(lat, time.Since(s))
	}
	report(b, lat)
}

var req = []byte(`{"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"},"_meta":{"progressToken":1}},"jsonrpc":"2.0","id":3}`)

func BenchmarkXParse(b *testing.B) {
	for range b.N {
		jsonrpc.Parse(req)
	}
}
func BenchmarkXCheck(b *testing.B) {
	m, _ := jsonrpc.Parse(req)
	for range b.N {
		jsonrpc.CheckUnambiguous(m.Params)
	}
}

// countingClient counts dials.
func countingClient(n *atomic.Int64) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, nw, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, nw, addr)
	}, MaxIdleConnsPerHost: 2}}
}

// relay's upstream leg alone: transport.StreamableHTTP Send + wait answer.
func BenchmarkXTransport(b *testing.B) {
	for _, up := range upstreams {
		b.Run(up.name, func(b *testing.B) {
			url := up.start(b)
			var dials atomic.Int64
			c := transport.NewStreamableHTTP(transport.HTTPOptions{URL: url, Client: countingClient(&dials)})
			defer c.Close()
			rt := func(id int, msg string) {
				if err := c.Send(context.Background(), []byte(msg), nil); err != nil {
					b.Fatal(err)
				}
				for in := range c.Incoming() {
					m, _ := jsonrpc.Parse(in.Raw)
					if m.Kind == jsonrpc.KindResponse && string(m.ID) == strconv.Itoa(id) {
						return
					}
				}
			}
			rt(0, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
			c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil)
			for i := range warmup {
				rt(i+1, `{"jsonrpc":"2.0","id":`+strconv.Itoa(i+1)+`,"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}`)
			}
			d0 := dials.Load()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				id := 1000 + i
				s := time.Now()
				rt(id, `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}`)
				lat = append(lat, time.Since(s))
			}
			b.StopTimer()
			b.ReportMetric(float64(dials.Load()-d0), "dials")
			report(b, lat)
		})
	}
}

// direct mcp-go client, counting dials
func BenchmarkXDirectDials(b *testing.B) {
	for _, up := range upstreams {
		b.Run(up.name, func(b *testing.B) {
			url := up.start(b)
			c := connect(b, url)
			lat := make([]time.Duration, 0, b.N)
			for range warmup {
				callEcho(b.Context(), c)
			}
			b.ResetTimer()
			for range b.N {
				s := time.Now()
				callEcho(b.Context(), c)
				lat = append(lat, time.Since(s))
			}
			report(b, lat)
		})
	}
}

// instant is an upstream Conn answering every request at once, in process.
type instant struct {
	in   chan transport.Incoming
	done chan struct{}
	once sync.Once
}

func (p *instant) Send(_ context.Context, msg []byte, _ http.Header) error {
	m, err := jsonrpc.Parse(msg)
	if err != nil || m.Kind != jsonrpc.KindRequest {
		return err
	}
	var res []byte
	if m.Method == "initialize" {
		res, _ = jsonrpc.Response(m.ID, map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{"tools": map[string]any{}}, "serverInfo": map[string]any{"name": "i", "version": "1"}})
	} else {
		res, _ = jsonrpc.Response(m.ID, map[string]any{"content": []any{map[string]any{"type": "text", "text": "bench"}}})
	}
	p.in <- transport.Incoming{Raw: res, RelatedTo: m.ID}
	return nil
}
func (p *instant) Incoming() <-chan transport.Incoming { return p.in }
func (p *instant) Done() <-chan struct{}               { return p.done }
func (p *instant) Err() error                          { return nil }
func (p *instant) Close() error                        { p.once.Do(func() { close(p.done) }); return nil }

// relay with an instant upstream: the relay's host side + gate + routing.
func BenchmarkXRelayInstant(b *testing.B) {
	g := gate.New(gate.Options{})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, _ := relay.New(relay.Options{Servers: []relay.Server{{ID: "everything", Dial: func(context.Context) (transport.Conn, error) {
		return &instant{in: make(chan transport.Incoming, 64), done: make(chan struct{})}, nil
	}}}, Gate: g, Token: token, Port: port, Logger: slog.New(slog.DiscardHandler)})
	hs.Config.Handler = r
	hs.Start()
	sub := g.Subscribe()
	go func() {
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				g.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	defer func() { hs.CloseClientConnections(); r.Close(); hs.Close(); g.Close() }()
	var c *client.Client = connect(b, "http://127.0.0.1:"+strconv.Itoa(port)+"/servers/everything/mcp")
	for range warmup {
		if err := callEcho(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		s := time.Now()
		callEcho(b.Context(), c)
		lat = append(lat, time.Since(s))
	}
	report(b, lat)
}
