package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// The session caps of the app's relay (relay.DefaultMaxSessionsPerClient
// and relay.DefaultMaxSessions), as an AI app meets them.
const (
	capPerApp = 32
	capAll    = 256
)

// TestHostileInputOnTheListener floods the app's own loopback listener, as
// app.Run opens it, with thousands of sessions opened and abandoned by many
// AI apps, and with requests that name the wrong Host or Origin or carry no
// or the wrong token, while a well-behaved AI app (a real mcp-go client)
// keeps calling a tool that a person approves. Every hostile request is
// refused with its status (a session beyond a cap with 429 and words a
// person can act on), and every call of the good client succeeds; its
// latency, quiet and under the flood, is logged, never asserted.
func TestHostileInputOnTheListener(t *testing.T) {
	enabled(t)
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	in := startApp(t, s)
	ap := startApprover(in.core.Queue, func(c gate.Call) { in.core.Queue.Decide(c.ID, gate.Decision{Approve: true}) })
	defer ap.stop()
	url := in.url("mem")
	port := strconv.Itoa(in.port)

	good, err := client.NewStreamableHttpClient(url, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + in.token}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := good.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "good-host", Version: "1"}
	if _, err := good.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	var calls atomic.Int64
	call := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := calls.Add(1)
		req := mcp.CallToolRequest{}
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"message": fmt.Sprintf("good %d", n)}
		start := time.Now()
		res, err := good.CallTool(ctx, req)
		if err == nil && (len(res.Content) != 1 || res.Content[0].(mcp.TextContent).Text != fmt.Sprintf("Echo: good %d", n)) {
			err = fmt.Errorf("result %+v", res.Content)
		}
		return time.Since(start), err
	}
	var quiet []time.Duration
	for range 30 {
		d, err := call()
		if err != nil {
			t.Fatalf("good client, before the flood: %v", err)
		}
		quiet = append(quiet, d)
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer hc.CloseIdleConnections()
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// do sends one request and returns its status and the start of its body.
	do := func(host, token, origin, body string) (int, string, bool) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			problem("%s: %v", body[:min(len(body), 60)], err)
			return 0, "", false
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return resp.StatusCode, string(b), true
	}
	initialize := func(client string) string {
		return `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"` + client + `","version":"1"}}}`
	}
	hostOK := "127.0.0.1:" + port
	const ping = `{"jsonrpc":"2.0","id":1,"method":"ping"}`

	// The good client keeps calling while the flood runs.
	stopCalling := testenv.KeepCalling(call)

	goroutinesBefore := runtime.NumGoroutine()
	start := time.Now()
	var statuses sync.Map // what -> *atomic.Int64
	count := func(what string) {
		n, _ := statuses.LoadOrStore(what, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	// One AI app opens sessions until its cap, and beyond; then the rest
	// at once.
	func() {
		first := time.Now()
		for i := range capPerApp + 8 {
			status, body, ok := do(hostOK, in.token, "", initialize("greedy-app"))
			switch {
			case !ok:
			case i < capPerApp && status == http.StatusOK:
				count("greedy app: session opened")
			case i >= capPerApp && status == http.StatusTooManyRequests &&
				strings.Contains(body, "greedy-app already has 32 open sessions with Countersign, all in use; close unused connections in the AI app, or restart it"):
				count("greedy app beyond its cap: 429")
			case i >= capPerApp && status == http.StatusOK && time.Since(first) > 4*time.Second:
				// Slow enough that its first sessions count as
				// abandoned, and the oldest made room.
				count("greedy app beyond its cap: oldest idle closed")
			default:
				problem("greedy app, session %d: %d %s", i+1, status, body)
			}
		}
	}()
	var wg sync.WaitGroup
	// Thousands of sessions opened and abandoned by a hundred AI apps.
	const flood, apps, workers = 3000, 100, 12
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= flood {
					return
				}
				status, body, ok := do(hostOK, in.token, "", initialize(fmt.Sprintf("abandoner-%d", i%apps)))
				switch {
				case !ok:
				case status == http.StatusOK:
					count("abandoned session: opened")
				case status == http.StatusTooManyRequests &&
					strings.Contains(body, "open sessions with Countersign, all in use; close unused connections in your AI apps, or restart them"):
					count("abandoned session beyond the cap: 429")
				default:
					problem("abandoned session %d: %d %s", i, status, body)
				}
			}
		})
	}
	// Wrong Host, Origin and token, over and over.
	wg.Go(func() {
		for range 20 {
			for _, host := range []string{"127.0.0.1.evil.example:" + port, "localhost.:" + port, "127.0.0.1", "evil.example", "[::1]:1", "0.0.0.0:" + port} {
				if status, body, ok := do(host, in.token, "", ping); ok && status != http.StatusForbidden {
					problem("Host %s: %d %s", host, status, body)
				} else if ok {
					count("Host variants: 403")
				}
			}
			for _, origin := range []string{"null", "http://127.0.0.1.evil.example:" + port, "http://localhost.:" + port, "https://127.0.0.1:" + port, "http://evil.example"} {
				if status, body, ok := do(hostOK, in.token, origin, ping); ok && status != http.StatusForbidden {
					problem("Origin %s: %d %s", origin, status, body)
				} else if ok {
					count("Origin variants: 403")
				}
			}
			for _, token := range []string{"", strings.Repeat("f", 64), in.token[:len(in.token)-1]} {
				if status, body, ok := do(hostOK, token, "", ping); ok && status != http.StatusUnauthorized {
					problem("token %q: %d %s", token, status, body)
				} else if ok {
					count("missing or wrong token: 401")
				}
			}
		}
	})
	wg.Wait()
	took := time.Since(start)
	goroutinesDuring := runtime.NumGoroutine()
	loaded, err := stopCalling()
	if err != nil {
		t.Fatalf("the good client failed during the flood: %v", err)
	}
	if len(problems) > 0 {
		t.Errorf("%d hostile requests were not refused as expected, e.g.:\n%s", len(problems), strings.Join(problems[:min(10, len(problems))], "\n"))
	}
	var lines []string
	statuses.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(lines)
	t.Logf("flood of %d abandoned sessions and %d greedy ones in %s:\n%s", flood, capPerApp+8, took.Round(time.Millisecond), strings.Join(lines, "\n"))
	if n, ok := statuses.Load("abandoned session beyond the cap: 429"); !ok || n.(*atomic.Int64).Load() == 0 {
		t.Errorf("no session of the flood was refused at the cap of %d", capAll)
	}
	if n, ok := statuses.Load("abandoned session: opened"); ok && n.(*atomic.Int64).Load() < capAll-capPerApp-2 {
		t.Errorf("only %d sessions of the flood opened, want the cap's worth", n.(*atomic.Int64).Load())
	}
	d, err := call()
	if err != nil {
		t.Fatalf("good client, after the flood: %v", err)
	}
	loaded = append(loaded, d)
	t.Logf("good client: quiet p50 %s p99 %s (%d calls); during the flood p50 %s p99 %s max %s (%d calls); goroutines before the flood %d, after it %d",
		pctOf(quiet, 50), pctOf(quiet, 99), len(quiet), pctOf(loaded, 50), pctOf(loaded, 99), pctOf(loaded, 100), len(loaded), goroutinesBefore, goroutinesDuring)
	ran := 0
	for m, n := range mem.rec.snapshot() {
		if strings.HasPrefix(m, "good ") {
			ran += n
		}
	}
	if ran != int(calls.Load()) {
		t.Errorf("the server ran %d calls of the good client, which made %d", ran, calls.Load())
	}
}

// pctOf returns the p-th percentile of ds.
func pctOf(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
