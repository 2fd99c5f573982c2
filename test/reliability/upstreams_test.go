package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/testenv"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// recorder is what an upstream server received: the "message" argument of
// every tools/call, as it arrived.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int // message → times received
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) add(message string) {
	r.mu.Lock()
	r.seen[message]++
	r.mu.Unlock()
}

func (r *recorder) count(message string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[message]
}

// snapshot returns a copy of what was received.
func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// recordCalls adds the tools/call messages in a JSON-RPC message or batch.
func (r *recorder) recordCalls(b []byte) {
	b = bytes.TrimSpace(b)
	var msgs []json.RawMessage
	if len(b) > 0 && b[0] == '[' {
		json.Unmarshal(b, &msgs)
	} else {
		msgs = []json.RawMessage{b}
	}
	for _, m := range msgs {
		var c struct {
			Method string `json:"method"`
			Params struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal(m, &c) == nil && c.Method == "tools/call" {
			r.add(argMessage(c.Params.Arguments))
		}
	}
}

// memUpstream is an in-process mcp-go server over Streamable HTTP with an
// echo tool that records what it was asked, and a "hang" tool that answers
// only when its request ends.
type memUpstream struct {
	rec *recorder
	url string
	srv *httptest.Server
}

func startMemUpstream(t *testing.T) *memUpstream {
	t.Helper()
	u := &memUpstream{rec: newRecorder()}
	s := server.NewMCPServer("mem", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg := r.GetString("message", "")
		u.rec.add(msg)
		return mcp.NewToolResultText("Echo: " + msg), nil
	})
	s.AddTool(mcp.NewTool("hang", mcp.WithString("message")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		u.rec.add(r.GetString("message", ""))
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h := server.NewStreamableHTTPServer(s)
	u.srv = httptest.NewServer(h)
	u.url = u.srv.URL + "/mcp"
	t.Cleanup(func() {
		u.srv.CloseClientConnections()
		u.srv.Close()
		h.Shutdown(context.Background())
	})
	return u
}

// startMemApp starts the app on a setup of its own with one server, "mem"
// (a memUpstream), and a client for AI apps' sessions.
func startMemApp(t *testing.T) (*memUpstream, *setup, *instance, *http.Client) {
	t.Helper()
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	return mem, s, startApp(t, s), newClient(t)
}

// startEverythingHTTP runs the real server-everything over Streamable
// HTTP, behind a proxy that records the tools/call messages it is sent, and
// returns the proxy's URL.
func startEverythingHTTP(t *testing.T, dir string, rec *recorder) string {
	t.Helper()
	port := testenv.StartEverything(t, dir, "streamableHttp")
	target, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		FlushInterval: -1,
		// Node closes a kept-alive connection after 5 s idle; a request
		// sent on it just then fails (502) though Countersign did nothing
		// wrong. A connection per request avoids that race.
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rec.recordCalls(b)
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
	})
	return front.URL + "/mcp"
}

// everythingStdio returns the command and arguments that run the real
// server-everything over stdio with what Countersign writes to it copied
// to logPath (bash's exec keeps node the process Countersign started).
func everythingStdio(dir, logPath string) (string, []string) {
	return "bash", []string{"-c", `exec node "$0" stdio < <(exec tee -a "$1")`, testenv.EverythingJS(dir), logPath}
}

// readStdioLog adds the tools/call messages a stdio server was sent.
func readStdioLog(t *testing.T, path string, rec *recorder) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			rec.recordCalls([]byte(line))
		}
	}
}

// childrenRunning lists the processes this test process started whose
// command line contains want.
func childrenRunning(want string) []int {
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(me) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}
