package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const token = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"

// warmup is how many calls each client makes, alternating direct and
// relayed, before anything is timed: it fills connection pools and lets
// Node's JIT settle.
const warmup = 200

// upstream is an MCP server with an echo tool: start runs it and returns
// its Streamable HTTP URL, or skips when it cannot run here.
type upstream struct {
	name  string
	start func(testing.TB) string
}

var upstreams = []upstream{
	{"everything", startEverything},
	{"mcpgo", startMCPGo},
}

// BenchmarkEcho times sequential echo tool calls against each upstream,
// made by one client talking to it directly and another talking to it
// through the relay. One op is one call of each, alternating which goes
// first, so both sides see the same machine load however it drifts; the
// metrics are per side: median and 99th percentile latency, what the relay
// adds to each, and each side's sequential call rate.
func BenchmarkEcho(b *testing.B) {
	for _, up := range upstreams {
		b.Run(up.name, func(b *testing.B) {
			url := up.start(b)
			sides := [2]*client.Client{connect(b, url), connect(b, startRelay(b, url))}
			for range warmup {
				for _, c := range sides {
					if err := callEcho(b.Context(), c); err != nil {
						b.Fatalf("warm-up: %v", err)
					}
				}
			}
			lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
			b.ResetTimer()
			for i := range b.N {
				for k := range 2 {
					side := (i + k) % 2
					start := time.Now()
					err := callEcho(b.Context(), sides[side])
					lat[side] = append(lat[side], time.Since(start))
					if err != nil {
						b.Fatalf("%s call %d: %v", sideNames[side], i, err)
					}
				}
			}
			b.StopTimer()
			var p50, p99 [2]float64
			for side, l := range lat {
				total := time.Duration(0)
				for _, d := range l {
					total += d
				}
				slices.Sort(l)
				p50[side], p99[side] = ms(percentile(l, 0.50)), ms(percentile(l, 0.99))
				b.ReportMetric(p50[side], sideNames[side]+"-p50-ms")
				b.ReportMetric(p99[side], sideNames[side]+"-p99-ms")
				b.ReportMetric(float64(len(l))/total.Seconds(), sideNames[side]+"-calls/s")
			}
			b.ReportMetric(p50[1]-p50[0], "added-p50-ms")
			b.ReportMetric(p99[1]-p99[0], "added-p99-ms")
		})
	}
}

var sideNames = [2]string{"direct", "relay"}

// percentile returns the nearest-rank p-quantile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted))-1e-9)) - 1 // tolerate 0.99*n rounding up
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// callEcho makes one tools/call and checks the echo came back.
func callEcho(ctx context.Context, c *client.Client) error {
	req := mcp.CallToolRequest{}
	req.Params.Name = "echo"
	req.Params.Arguments = map[string]any{"message": "bench"}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	for _, content := range res.Content {
		if tc, ok := content.(mcp.TextContent); ok && !res.IsError && strings.Contains(tc.Text, "bench") {
			return nil
		}
	}
	return fmt.Errorf("unexpected result %+v", res)
}

// connect returns an initialized mcp-go client of url. Direct and relayed
// clients are built the same way and send the same headers.
func connect(tb testing.TB, url string) *client.Client { return connectWith(tb, url, token) }

// connectWith is connect with the bearer token tok.
func connectWith(tb testing.TB, url, tok string) *client.Client {
	tb.Helper()
	c, err := client.NewStreamableHttpClient(url,
		mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "countersign-bench", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		tb.Fatalf("initialize %s: %v", url, err)
	}
	return c
}

// startRelay runs a relay on loopback in front of upstreamURL, with an
// in-process approver that approves every call the moment it is held, and
// returns the relay's endpoint.
func startRelay(tb testing.TB, upstreamURL string) string {
	tb.Helper()
	g := gate.New(gate.Options{})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{
		Servers: []relay.Server{{ID: "everything", Dial: func(context.Context) (transport.Conn, error) {
			return transport.NewStreamableHTTP(transport.HTTPOptions{URL: upstreamURL}), nil
		}}},
		Gate:   g,
		Token:  token,
		Port:   port,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	sub := g.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				g.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	tb.Cleanup(func() {
		hs.CloseClientConnections()
		r.Close()
		hs.Close()
		g.Close()
		<-done
	})
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/everything/mcp"
}

// startMCPGo serves an in-process mcp-go server with an echo tool.
func startMCPGo(tb testing.TB) string {
	tb.Helper()
	s := server.NewMCPServer("bench-echo", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("message", "")), nil
		})
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s))
	tb.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// startEverything runs the npm server-everything in streamableHttp mode on
// loopback. It skips when Node or the package is not installed.
func startEverything(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("COUNTERSIGN_PEERS")
	if dir == "" {
		dir = filepath.Join("..", "test", "peers")
	}
	js := filepath.Join(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	if _, err := exec.LookPath("node"); err != nil {
		tb.Skip("node is not on PATH")
	}
	if _, err := os.Stat(js); err != nil {
		tb.Skipf("server-everything is not installed (%v): run npm ci in %s", err, dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("node", "--require", filepath.Join(dir, "loopback.cjs"), js, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr + "/mcp"
		}
		select {
		case err := <-exited:
			tb.Fatalf("server-everything exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server-everything did not listen on %s: %s", addr, stderr.String())
		}
	}
}

// TestRelayedEchoMatchesDirect checks the benchmark's plumbing with the
// in-process upstream: both clients get the echo back.
func TestRelayedEchoMatchesDirect(t *testing.T) {
	url := startMCPGo(t)
	for name, c := range map[string]*client.Client{"direct": connect(t, url), "relay": connect(t, startRelay(t, url))} {
		for i := range 3 {
			if err := callEcho(t.Context(), c); err != nil {
				t.Errorf("%s call %d: %v", name, i, err)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 1000 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(lat, tc.p); got != tc.want {
			t.Errorf("percentile(1..1000 ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(lat[:1], 0.99); got != time.Millisecond {
		t.Errorf("percentile of one = %v", got)
	}
}
