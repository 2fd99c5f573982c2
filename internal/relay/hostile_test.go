package relay

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/countersign/countersign/internal/testenv"
)

// TestHostileInputWhileAGoodClientIsServed sends the listener what a
// hostile or broken local program might, all at once, while a well-behaved
// AI app (a real mcp-go client) keeps calling a tool through the relay.
// Each hostile request must be refused cleanly, with the status given, and
// every call of the good client must succeed. Its latency, quiet and under
// the load, is logged, not asserted.
func TestHostileInputWhileAGoodClientIsServed(t *testing.T) {
	var ran atomic.Int64
	// The attacks use the default client: its kept-alive connections must
	// not outlive the test (goleak).
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&ran))})
	good := hostClient(t, e, "echo")
	port := strconv.Itoa(e.port)
	hostOK := "127.0.0.1:" + port

	call := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"message": "hi"}
		start := time.Now()
		res, err := good.CallTool(ctx, req)
		if err == nil && resultText(res) != "echo: hi" {
			err = fmt.Errorf("result %q", resultText(res))
		}
		return time.Since(start), err
	}
	var quiet []time.Duration
	for range 30 {
		d, err := call()
		if err != nil {
			t.Fatalf("good client, before: %v", err)
		}
		quiet = append(quiet, d)
	}

	// send makes one hostile request and checks its status.
	var refused sync.Map // what -> count
	var mu sync.Mutex
	var problems []string
	send := func(what string, want int, req *http.Request) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			mu.Unlock()
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode != want {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s: status %d, want %d", what, resp.StatusCode, want))
			mu.Unlock()
			return
		}
		n, _ := refused.LoadOrStore(what, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	post := func(host, body string, header ...string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.url("echo"), strings.NewReader(body))
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(header); i += 2 {
			if header[i+1] == "" {
				req.Header.Del(header[i])
			} else {
				req.Header.Set(header[i], header[i+1])
			}
		}
		return req
	}
	const ping = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	initialize := func(client string) string {
		return `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"` + client + `","version":"1"}}}`
	}
	var batch strings.Builder
	batch.WriteString("[")
	for i := range 10000 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, i)
	}
	batch.WriteString("]")

	attacks := []func(){
		func() { // malformed and truncated JSON
			for i, body := range []string{`{`, `{"jsonrpc":"2.0","id":1,"method":`, `not json`, `[`, `{"jsonrpc":"2.0","id":1,"method":"ping"}}`, "\x00\xff", `[]`, `{"jsonrpc":"2.0","id":{},"method":"ping"}`} {
				for range 10 {
					send(fmt.Sprintf("malformed %d", i), http.StatusBadRequest, post(hostOK, body))
				}
			}
		},
		func() { // bodies over the limit, refused by their length
			for range 10 {
				req := post(hostOK, "")
				req.Body = io.NopCloser(io.LimitReader(neverEnding('x'), 100<<20))
				req.ContentLength = 100 << 20
				send("over the limit", http.StatusRequestEntityTooLarge, req)
			}
		},
		func() { // a 10,000-entry batch
			for range 2 {
				send("huge batch", http.StatusBadRequest, post(hostOK, batch.String()))
			}
		},
		func() { // wrong content types
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "text/html"} {
				for range 10 {
					send("content type "+ct, http.StatusUnsupportedMediaType, post(hostOK, ping, "Content-Type", ct))
				}
			}
		},
		func() { // missing or wrong token
			for range 40 {
				send("no token", http.StatusUnauthorized, post(hostOK, ping, "Authorization", ""))
				send("wrong token", http.StatusUnauthorized, post(hostOK, ping, "Authorization", "Bearer "+strings.Repeat("f", 64)))
			}
		},
		func() { // Host and Origin variants
			for range 8 {
				for _, host := range []string{"127.0.0.1.evil.example:" + port, "localhost.:" + port, "127.0.0.1", "evil.example", "[::1]:1", "0.0.0.0:" + port} {
					send("Host "+host, http.StatusForbidden, post(host, ping))
				}
				send("Host [::1] (loopback: served)", http.StatusOK, post("[::1]:"+port, initialize("ipv6")))
				for _, origin := range []string{"null", "http://127.0.0.1.evil.example:" + port, "http://localhost.:" + port, "https://127.0.0.1:" + port, "http://evil.example"} {
					send("Origin "+origin, http.StatusForbidden, post(hostOK, ping, "Origin", origin))
				}
			}
		},
		func() { // sessions opened and abandoned, by one AI app: up to
			// its cap, then refused (429) until some have been idle long
			// enough to close for room
			floodStart := time.Now()
			for i := range 100 {
				// Beyond the cap a new session is refused while every
				// earlier one was used within DefaultEvictAfter, and takes
				// the place of the one unused longest after that (on a slow
				// machine the flood can outlast it): either way the
				// sessions held stay bounded (checked below).
				switch {
				case i < DefaultMaxSessionsPerClient:
					send("abandoned session", http.StatusOK, post(hostOK, initialize("abandoner")))
				case time.Since(floodStart) < DefaultEvictAfter-time.Second: // a second to spare for the request itself
					send("abandoned session beyond the cap", http.StatusTooManyRequests, post(hostOK, initialize("abandoner")))
				default:
					return
				}
			}
		},
		func() { // a GET stream reconnect storm on one session
			resp, err := http.DefaultClient.Do(post(hostOK, initialize("stormer")))
			if err != nil {
				mu.Lock()
				problems = append(problems, "storm: "+err.Error())
				mu.Unlock()
				return
			}
			resp.Body.Close()
			sid := resp.Header.Get(mcp.HeaderSessionID)
			var held []*http.Response
			for i := range 100 {
				req, _ := http.NewRequest(http.MethodGet, e.url("echo"), nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set(mcp.HeaderSessionID, sid)
				r, err := http.DefaultClient.Do(req)
				if err != nil || r.StatusCode != http.StatusOK {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("storm GET %d: %v", i, err))
					mu.Unlock()
					continue
				}
				if i%10 == 0 {
					held = append(held, r) // some stay open
				} else {
					r.Body.Close()
				}
			}
			for _, r := range held {
				r.Body.Close()
			}
		},
	}
	stopCalling := testenv.KeepCalling(call)
	start := time.Now()
	var wg sync.WaitGroup
	for _, a := range attacks {
		wg.Go(a)
	}
	wg.Wait()
	took := time.Since(start)
	loaded, err := stopCalling()
	if err != nil {
		t.Fatalf("the good client failed under the load: %v", err)
	}
	if len(problems) > 0 {
		t.Fatalf("%d hostile requests were not refused as expected, e.g.:\n%s", len(problems), strings.Join(problems[:min(10, len(problems))], "\n"))
	}
	refused.Range(func(k, v any) bool {
		t.Logf("%-45s %d", k, v.(*atomic.Int64).Load())
		return true
	})

	// What the abandoned sessions hold is bounded by the cap.
	e.relay.mu.Lock()
	total := len(e.relay.sessions)
	e.relay.mu.Unlock()
	if want := 3 * DefaultMaxSessionsPerClient; total > want { // abandoner, ipv6, stormer, the good client
		t.Errorf("%d sessions open after the flood, want at most %d", total, want)
	}
	if d, err := call(); err != nil {
		t.Fatalf("good client, after: %v", err)
	} else {
		loaded = append(loaded, d)
	}
	t.Logf("hostile phase %v; good client latency quiet p50 %v p99 %v (%d calls), under load p50 %v p99 %v (%d calls)",
		took.Round(time.Millisecond), pct(quiet, 50), pct(quiet, 99), len(quiet), pct(loaded, 50), pct(loaded, 99), len(loaded))
	if n := ran.Load(); n != int64(len(quiet)+len(loaded)) {
		t.Errorf("the tool ran %d times, want %d: only the good client's calls", n, len(quiet)+len(loaded))
	}
}

// neverEnding is an endless reader of one byte.
type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// pct returns the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
