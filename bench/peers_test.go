package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/phases"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
)

// The peer benchmark (bench/peers) runs TestPeers with
// COUNTERSIGN_BENCH=peers; plain `go test ./bench` skips it. It needs Node
// 22 (test/peers/node_modules/node), the npm peers and a Secret Service
// holding the local token, which bench/peers provides.

// peerOps are the calls each path makes: two ungated ones and the gated one.
var peerOps = []string{"ping", "tools/list", "echo"}

// pathSpec is one way for the SDK client to reach server-everything.
type pathSpec struct {
	Name    string            `json:"name"`
	Kind    string            `json:"kind"` // http, sse or stdio, as the client speaks it
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`

	base string // the path whose latency this one adds to; "" for a baseline
	note string // what the path is, for the table
}

// approver decides every call the moment the gate holds it, as a person
// clicking Approve at once would, and notes when it decided. It exists only
// in this test: the product's only approval path is the person.
type approver struct {
	decided sync.Map // server id → time.Time of the last approval
}

type benchUI struct {
	a    *approver
	core app.Core
}

func (u *benchUI) Run(ctx context.Context) error {
	sub := u.core.Queue.Subscribe()
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.Events():
			if !ok {
				return nil
			}
			if ev.Kind == gate.EventAdded {
				u.a.decided.Store(ev.Call.Server, time.Now())
				u.core.Queue.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}
}

func (u *benchUI) Show()                  {}
func (u *benchUI) OpenURL(*url.URL) error { return errors.New("no browser in the benchmark") }

// tap is a reverse proxy in front of an upstream that notes, for every
// tools/call it receives, how long after the approver's decision the whole
// request had arrived: "person clicks Approve → request on the upstream
// wire".
type tap struct {
	server string
	a      *approver
	mu     sync.Mutex
	waits  []time.Duration
}

func (tp *tap) handler(upstream string) http.Handler {
	u, _ := url.Parse(upstream)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.URL.Path = u.Path },
		FlushInterval: -1}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		if bytes.Contains(body, []byte(`"tools/call"`)) {
			if d, ok := tp.a.decided.Load(tp.server); ok {
				tp.mu.Lock()
				tp.waits = append(tp.waits, now.Sub(d.(time.Time)))
				tp.mu.Unlock()
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	})
}

func TestPeers(t *testing.T) {
	if os.Getenv("COUNTERSIGN_BENCH") != "peers" {
		t.Skip("the peer benchmark runs from bench/peers")
	}
	calls, warm := envInt(t, "BENCH_CALLS", 1000), envInt(t, "BENCH_WARMUP", warmup)
	dir := peersDir(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not on PATH")
	}
	everything := filepath.Join(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	tmp := t.TempDir()

	httpURL := startNode(t, dir, "server-everything streamableHttp", []string{everything, "streamableHttp"}, "/mcp")
	sseURL := startNode(t, dir, "server-everything sse", []string{everything, "sse"}, "/sse")
	sgPort := testenv.FreePort(t)
	sgURL := startNodeOn(t, dir, sgPort, "supergateway", []string{filepath.Join(dir, "node_modules/supergateway/dist/index.js"),
		"--stdio", node + " " + everything + " stdio", "--outputTransport", "streamableHttp", "--stateful",
		"--port", strconv.Itoa(sgPort), "--logLevel", "none"}, "/mcp")

	a := &approver{}
	tp := &tap{server: "tap", a: a}
	tapSrv := httptest.NewServer(tp.handler(httpURL))
	t.Cleanup(tapSrv.Close)

	port := testenv.FreePort(t)
	cfgPath := writeSettings(t, tmp, port,
		map[string]any{"id": "http", "name": "Everything over HTTP", "transport": "streamable-http", "url": httpURL},
		map[string]any{"id": "sse", "name": "Everything over SSE", "transport": "sse", "url": sseURL},
		map[string]any{"id": "stdio", "name": "Everything over stdio", "transport": "stdio", "command": node, "args": []string{everything, "stdio"}},
		map[string]any{"id": "tap", "name": "Everything, timed", "transport": "streamable-http", "url": tapSrv.URL + "/mcp"})
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(tmp, "xdg")) // the login entry Run keeps in step
	ctx, cancel := context.WithCancel(context.Background())
	built := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			ConfigPath: cfgPath,
			PolicyPath: filepath.Join(tmp, "no-policy.json"),
			Logger:     slog.New(slog.DiscardHandler),
			NewUI: func(c app.Core) (app.UI, error) {
				close(built)
				return &benchUI{a: a, core: c}, nil
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the app: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the app did not stop")
		}
	})
	select {
	case <-built:
	case err := <-done:
		t.Fatalf("the app stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the app did not start")
	}
	waitListening(t, "127.0.0.1:"+strconv.Itoa(port))
	token, err := vault.New().ExistingLocalToken()
	if err != nil {
		t.Fatalf("the local token: %v", err)
	}
	bridge := filepath.Join(tmp, "countersign-bridge")
	build := exec.Command("go", "build", "-o", bridge, "github.com/countersign/countersign/cmd/countersign-bridge")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building countersign-bridge: %v\n%s", err, out)
	}

	cs := func(id string) string { return fmt.Sprintf("http://127.0.0.1:%d/servers/%s/mcp", port, id) }
	auth := map[string]string{"Authorization": "Bearer " + token}
	paths := []pathSpec{
		{Name: "direct HTTP", Kind: "http", URL: httpURL},
		{Name: "direct SSE", Kind: "sse", URL: sseURL},
		{Name: "direct stdio", Kind: "stdio", Command: node, Args: []string{everything, "stdio"}},
		{Name: "Countersign HTTP→HTTP", Kind: "http", URL: cs("http"), Headers: auth, base: "direct HTTP"},
		{Name: "Countersign HTTP→SSE", Kind: "http", URL: cs("sse"), Headers: auth, base: "direct SSE"},
		{Name: "Countersign HTTP→stdio", Kind: "http", URL: cs("stdio"), Headers: auth, base: "direct stdio"},
		{Name: "countersign-bridge stdio→HTTP", Kind: "stdio", Command: bridge, Args: []string{"-config", cfgPath, "http"}, base: "direct HTTP"},
		{Name: "mcp-remote stdio→HTTP", Kind: "stdio", Command: node,
			Args: []string{filepath.Join(dir, "node_modules/mcp-remote/dist/proxy.js"), httpURL, "--transport", "http-only", "--silent"}, base: "direct HTTP"},
		{Name: "supergateway HTTP→stdio", Kind: "http", URL: sgURL, base: "direct stdio"},
		{Name: "Countersign HTTP→HTTP, timed", Kind: "http", URL: cs("tap"), Headers: auth, base: "direct HTTP",
			note: "through a Go reverse proxy that times approve→wire"},
	}
	res := runDriver(t, dir, tmp, node, paths, calls, warm)
	tp.mu.Lock()
	waits := tp.waits[min(warm, len(tp.waits)):] // one echo a round on the timed path: drop the warm-up's
	tp.mu.Unlock()
	printPeers(os.Stdout, paths, res, waits)
}

// writeSettings writes a settings file with servers, listening on port, in
// dir and returns its path.
func writeSettings(tb testing.TB, dir string, port int, servers ...map[string]any) string {
	tb.Helper()
	path := filepath.Join(dir, "settings.json")
	b, _ := json.Marshal(map[string]any{"port": port, "servers": servers})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// driverResult is what peers.mjs prints.
type driverResult struct {
	Paths   map[string]map[string][]float64 `json:"paths"` // µs per call
	Seconds float64                         `json:"seconds"`
}

func runDriver(t *testing.T, peers, tmp, node string, paths []pathSpec, calls, warm int) driverResult {
	t.Helper()
	// The driver imports the SDK from test/peers: run it beside a link to
	// those node_modules.
	if err := os.Symlink(filepath.Join(peers, "node_modules"), filepath.Join(tmp, "node_modules")); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("peers.mjs")
	if err != nil {
		t.Fatal(err)
	}
	driver := filepath.Join(tmp, "peers.mjs")
	os.WriteFile(driver, src, 0o600)
	cfg, _ := json.Marshal(map[string]any{"warmup": warm, "calls": calls, "ops": peerOps, "paths": paths})
	cfgPath := filepath.Join(tmp, "driver.json")
	os.WriteFile(cfgPath, cfg, 0o600)
	cmd := exec.Command(node, driver, cfgPath)
	cmd.Dir = tmp
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the driver: %v\n%s", err, stderr.String())
	}
	if out := os.Getenv("BENCH_OUT"); out != "" { // the raw figures, kept
		os.WriteFile(out, stdout.Bytes(), 0o644)
	}
	var res driverResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("the driver's output: %v\n%s", err, stdout.String())
	}
	return res
}

// stats are one path's figures for one op, in ms.
type stats struct{ p50, p90, p99, rate float64 }

func statsOf(us []float64) stats {
	if len(us) == 0 {
		return stats{}
	}
	d := make([]time.Duration, len(us))
	total := 0.0
	for i, v := range us {
		d[i] = time.Duration(v * float64(time.Microsecond))
		total += v
	}
	slices.Sort(d)
	return stats{ms(percentile(d, .5)), ms(percentile(d, .9)), ms(percentile(d, .99)), float64(len(us)) / (total / 1e6)}
}

func printPeers(w io.Writer, paths []pathSpec, res driverResult, waits []time.Duration) {
	n := 0
	for _, p := range paths {
		n = max(n, len(res.Paths[p.Name]["ping"]))
	}
	fmt.Fprintf(w, "\npeer benchmark: TypeScript SDK client → server-everything, %d sequential calls per path and method, interleaved, %.0f s\n", n, res.Seconds)
	all := map[string]map[string]stats{}
	for _, p := range paths {
		all[p.Name] = map[string]stats{}
		for _, op := range peerOps {
			all[p.Name][op] = statsOf(res.Paths[p.Name][op])
		}
	}
	for _, op := range peerOps {
		gated := "not gated"
		if op == "echo" {
			gated = "gated, approved at once"
		}
		fmt.Fprintf(w, "\n%s (%s), ms\n", op, gated)
		fmt.Fprintf(w, "%-32s %8s %8s %8s %8s %10s %7s\n", "path", "p50", "p90", "p99", "calls/s", "added p50", "ratio")
		for _, p := range paths {
			s := all[p.Name][op]
			added, ratio := "", ""
			if p.base != "" {
				b := all[p.base][op]
				added = fmt.Sprintf("%+.2f", s.p50-b.p50)
				ratio = fmt.Sprintf("%.2f×", s.p50/b.p50)
			}
			fmt.Fprintf(w, "%-32s %8.2f %8.2f %8.2f %8.0f %10s %7s\n", p.Name, s.p50, s.p90, s.p99, s.rate, added, ratio)
		}
	}
	addedP50 := func(name, op string) float64 {
		for _, p := range paths {
			if p.Name == name {
				return all[name][op].p50 - all[p.base][op].p50
			}
		}
		return 0
	}
	fmt.Fprintf(w, "\nagainst the peers (added p50 ms, Countersign / peer)\n")
	for _, c := range [][2]string{{"countersign-bridge stdio→HTTP", "mcp-remote stdio→HTTP"}, {"Countersign HTTP→stdio", "supergateway HTTP→stdio"}} {
		for _, op := range peerOps {
			cs, peer := addedP50(c[0], op), addedP50(c[1], op)
			fmt.Fprintf(w, "%-30s vs %-24s %-10s %+.2f / %+.2f = %.2f\n", c[0], c[1], op, cs, peer, cs/peer)
		}
	}
	d := slices.Clone(waits)
	slices.Sort(d)
	fmt.Fprintf(w, "\napprove → request on the upstream wire (%d calls): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms\n",
		len(d), ms(percentile(d, .5)), ms(percentile(d, .9)), ms(percentile(d, .99)))
	gatedAdded := addedP50("Countersign HTTP→HTTP", "echo")
	fmt.Fprintf(w, "\ntargets (measured, not asserted)\n")
	fmt.Fprintf(w, "gated added p50 ≤ 1.5 ms (HTTP→HTTP): %+.2f %s\n", gatedAdded, met(gatedAdded <= 1.5))
	for _, op := range []string{"ping", "tools/list"} {
		v := addedP50("Countersign HTTP→HTTP", op)
		fmt.Fprintf(w, "ungated %s added p50 ≤ 0.15 ms (HTTP→HTTP): %+.2f %s\n", op, v, met(v <= 0.15))
	}
	p99 := ms(percentile(d, .99))
	fmt.Fprintf(w, "approve → wire p99 ≤ 2 ms: %.3f %s\n", p99, met(p99 <= 2))
	printPhases(w)
}

// printPhases prints where a gated call's time goes inside the app, every
// Countersign path together, when built with the phases tag
// (BENCH_PHASES=1; see internal/phases).
func printPhases(w io.Writer) {
	steps := phases.Steps()
	if steps == nil {
		return
	}
	fmt.Fprintf(w, "\ninside the app, gated calls of every Countersign path (ms)\n")
	fmt.Fprintf(w, "%-36s %6s %8s %8s %8s\n", "step", "calls", "p50", "p90", "p99")
	for i, d := range steps {
		slices.Sort(d)
		fmt.Fprintf(w, "%-36s %6d %8.3f %8.3f %8.3f\n", phases.Names[i], len(d), ms(percentile(d, .5)), ms(percentile(d, .9)), ms(percentile(d, .99)))
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q is not a count", name, v)
	}
	return n
}

func peersDir(t *testing.T) string {
	dir := os.Getenv("COUNTERSIGN_PEERS")
	if dir == "" {
		dir = filepath.Join("..", "test", "peers")
	}
	dir, _ = filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(dir, "node_modules/mcp-remote")); err != nil {
		t.Fatalf("the npm peers are not installed in %s: run npm ci there", dir)
	}
	return dir
}

func startNode(t *testing.T, peers, what string, args []string, path string) string {
	return startNodeOn(t, peers, testenv.FreePort(t), what, args, path)
}

// startNodeOn runs node with args and PORT=port, and returns its URL at
// path once it listens.
func startNodeOn(t *testing.T, peers string, port int, what string, args []string, path string) string {
	t.Helper()
	cmd := exec.Command("node", append([]string{"--require", filepath.Join(peers, "loopback.cjs")}, args...)...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var stderr testenv.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exited atomic.Bool
	go func() { cmd.Wait(); exited.Store(true) }()
	t.Cleanup(func() { cmd.Process.Kill() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr + path
		}
		if exited.Load() || time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %s", what, addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
