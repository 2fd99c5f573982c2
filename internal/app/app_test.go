package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/portproof/prooftest"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// fakeUI stands in for the desktop interface: it runs until told to quit
// or its context ends, and counts Show requests.
type fakeUI struct {
	core  Core
	quit  chan struct{}
	shows atomic.Int32
	err   error
}

func (u *fakeUI) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-u.quit:
	}
	return u.err
}

func (u *fakeUI) Show() { u.shows.Add(1) }

func (u *fakeUI) OpenURL(*url.URL) error { return errors.New("no browser in tests") }

// running is one Countersign started by startApp.
type running struct {
	ui     *fakeUI
	url    string
	token  string
	cancel context.CancelFunc
	done   chan error
	cfg    string
	kr     vault.Keyring
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startApp runs the whole app on loopback against an in-process upstream
// with an echo tool, and waits until it listens.
func startApp(t *testing.T, opts ...func(*Options)) *running {
	t.Helper()
	return startAppWith(t, "", opts...)
}

// startAppWith is startApp with more members for the server's settings
// entry, such as `"hiddenTools":["echo"]`.
func startAppWith(t *testing.T, serverExtra string, opts ...func(*Options)) *running {
	t.Helper()
	version := ""
	if serverExtra != "" {
		version, serverExtra = `"version":2,`, ","+serverExtra
	}
	s := server.NewMCPServer("up", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo: " + r.GetString("message", "")), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(up.Close)

	port := testenv.FreePort(t)
	cfgPath := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`{%s"port":%d,"servers":[{"id":"up","name":"Upstream","transport":"streamable-http","url":%q%s}]}`, version, port, up.URL+"/mcp", serverExtra)), 0o600)
	return launch(t, cfgPath, vaulttest.NewKeyring(), port, opts...)
}

func launch(t *testing.T, cfgPath string, kr vault.Keyring, port int, opts ...func(*Options)) *running {
	t.Helper()
	// Run makes the login entry match the settings: keep it away from the
	// real ~/.config/autostart of whoever runs the tests.
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(filepath.Dir(cfgPath), "xdg"))
	token, _ := vault.Open(vault.Options{Keyring: kr}).LocalToken()
	rn := &running{ui: &fakeUI{quit: make(chan struct{})}, token: token, done: make(chan error, 1), cfg: cfgPath, kr: kr,
		url: fmt.Sprintf("http://127.0.0.1:%d/servers/up/mcp", port)}
	built := make(chan struct{})
	o := Options{
		ConfigPath: cfgPath,
		PolicyPath: filepath.Join(filepath.Dir(cfgPath), "no-policy.json"),
		Keyring:    kr,
		Logger:     quietLog(),
		NewUI: func(c Core) (UI, error) {
			rn.ui.core = c
			close(built)
			return rn.ui, nil
		},
	}
	for _, f := range opts {
		f(&o)
	}
	var ctx context.Context
	ctx, rn.cancel = context.WithCancel(context.Background())
	go func() { rn.done <- Run(ctx, o) }()
	t.Cleanup(func() {
		rn.cancel()
		select {
		case <-rn.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	select {
	case <-built:
	case err := <-rn.done:
		t.Fatalf("Run returned early: %v", err)
	}
	for i := 0; ; i++ { // the listener is up just after the interface is built
		if r, err := http.Get(rn.url); err == nil {
			r.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("app never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rn
}

func (rn *running) post(t *testing.T, sid, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rn.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rn.token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// callEcho starts a tools/call and returns a channel with the response
// body.
func (rn *running) callEcho(t *testing.T) <-chan string {
	t.Helper()
	resp := rn.post(t, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	io.ReadAll(resp.Body)
	resp.Body.Close()
	rn.post(t, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()
	answer := make(chan string, 1)
	go func() {
		r := rn.post(t, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`)
		b, _ := io.ReadAll(r.Body)
		answer <- string(b)
	}()
	return answer
}

func waitPending(t *testing.T, q *gate.Queue) gate.Call {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if p := q.Pending(); len(p) > 0 {
			return p[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no call started waiting")
	return gate.Call{}
}

func wantDenied(t *testing.T, answer <-chan string, why string) {
	t.Helper()
	select {
	case got := <-answer:
		if !strings.Contains(got, `"isError":true`) || !strings.Contains(got, why) {
			t.Fatalf("waiting call got %s, want an error result saying %q", got, why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting call never answered")
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Run("a call waits for the interface and runs once approved", func(t *testing.T) {
		rn := startApp(t)
		answer := rn.callEcho(t)
		c := waitPending(t, rn.ui.core.Queue)
		if c.Server != "up" || c.Tool != "echo" {
			t.Fatalf("waiting call %+v", c)
		}
		if err := rn.ui.core.Queue.Decide(c.ID, gate.Decision{Approve: true}); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-answer:
			if !strings.Contains(got, "echo: x") {
				t.Fatalf("approved call got %s", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("approved call never answered")
		}
	})
	t.Run("ending the context denies waiting calls and stops", func(t *testing.T) {
		rn := startApp(t)
		answer := rn.callEcho(t)
		waitPending(t, rn.ui.core.Queue)
		rn.cancel()
		if err := <-rn.done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		rn.done <- nil // for the cleanup
		wantDenied(t, answer, "shutting down")
	})
	t.Run("quitting from the interface denies waiting calls and stops", func(t *testing.T) {
		rn := startApp(t)
		answer := rn.callEcho(t)
		waitPending(t, rn.ui.core.Queue)
		close(rn.ui.quit)
		if err := <-rn.done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		rn.done <- nil
		wantDenied(t, answer, "shutting down")
		if _, err := http.Get(rn.url); err == nil {
			t.Error("still listening after quitting")
		}
	})
	t.Run("an interface failure is reported", func(t *testing.T) {
		rn := startApp(t, func(o *Options) {})
		rn.ui.err = errors.New("window system went away")
		close(rn.ui.quit)
		err := <-rn.done
		rn.done <- nil
		if err == nil || !strings.Contains(err.Error(), "window system went away") {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("a waiting call is notified", func(t *testing.T) {
		got := make(chan string, 1)
		rn := startApp(t, func(o *Options) {
			o.Notifier = notifierFunc(func(title, msg string) error { got <- title + ": " + msg; return nil })
		})
		rn.callEcho(t)
		select {
		case n := <-got:
			if n != "Review a tool call: Upstream wants to echo" && n != "Review a tool call: up wants to echo" {
				t.Fatalf("notification %q", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
		}
	})
}

type notifierFunc func(title, message string) error

func (f notifierFunc) Notify(title, message string) error { return f(title, message) }

func TestSingleInstance(t *testing.T) {
	t.Run("a second launch brings the first forward", func(t *testing.T) {
		first := startApp(t)
		built := false
		err := Run(context.Background(), Options{
			ConfigPath: first.cfg, PolicyPath: filepath.Join(filepath.Dir(first.cfg), "no-policy.json"), Keyring: first.kr, Logger: quietLog(),
			NewUI: func(Core) (UI, error) { built = true; return &fakeUI{}, nil },
		})
		if !errors.Is(err, ErrAlreadyRunning) {
			t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
		}
		if built {
			t.Error("the second launch built an interface")
		}
		if n := first.ui.shows.Load(); n != 1 {
			t.Errorf("the first was asked to show %d times, want 1", n)
		}
	})
	t.Run("a port held by another program never gets the token", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rec := prooftest.Record(ln)
		// It answers every request as the real app answers a show request.
		other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Countersign-Proof", r.Header.Get("Countersign-Challenge"))
			w.WriteHeader(http.StatusNoContent)
		})}
		go other.Serve(rec)
		defer other.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		cfg := filepath.Join(t.TempDir(), "settings.json")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`{"port":%d,"servers":[]}`, port)), 0o600)
		kr := vaulttest.NewKeyring()
		token, _ := vault.Open(vault.Options{Keyring: kr}).LocalToken()
		var notified []string
		err = Run(context.Background(), Options{
			ConfigPath: cfg, PolicyPath: filepath.Join(filepath.Dir(cfg), "no-policy.json"), Keyring: kr, Logger: quietLog(),
			NewUI:    func(Core) (UI, error) { return &fakeUI{}, nil },
			Notifier: notifierFunc(func(title, msg string) error { notified = append(notified, title+": "+msg); return nil }),
		})
		if seen := rec.Bytes(); bytes.Contains(seen, []byte(token)) {
			t.Fatalf("the program on the port received the token:\n%s", seen)
		}
		want := fmt.Sprintf("Another program is using Countersign's port %d, so Countersign could not start.", port)
		if err == nil || errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run = %v, want an error saying %q", err, want)
		}
		if len(notified) != 1 || !strings.Contains(notified[0], want) {
			t.Fatalf("notified %q, want one notification saying %q", notified, want)
		}
	})
}

func TestShowEndpoint(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var shown int
	f := &front{
		relay: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		show:  func() { shown++ },
		token: token,
		port:  4000,
	}
	tests := []struct {
		name         string
		method, path string
		host, origin string
		auth         string
		want         int
		shows        bool
	}{
		{"shows the window", "POST", showPath, "127.0.0.1:4000", "", "Bearer " + token, 204, true},
		{"accepts localhost", "POST", showPath, "localhost:4000", "", "Bearer " + token, 204, true},
		{"refuses a wrong token", "POST", showPath, "127.0.0.1:4000", "", "Bearer nope", 401, false},
		{"refuses no token", "POST", showPath, "127.0.0.1:4000", "", "", 401, false},
		{"refuses a browser origin", "POST", showPath, "127.0.0.1:4000", "http://evil.example", "Bearer " + token, 403, false},
		{"refuses another host (DNS rebinding)", "POST", showPath, "evil.example:4000", "", "Bearer " + token, 403, false},
		{"refuses another port", "POST", showPath, "127.0.0.1:4001", "", "Bearer " + token, 403, false},
		{"refuses GET", "GET", showPath, "127.0.0.1:4000", "", "Bearer " + token, 405, false},
		{"passes other paths to the relay", "POST", "/servers/up/mcp", "127.0.0.1:4000", "", "Bearer " + token, 418, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shown = 0
			req := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			f.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
			if (shown == 1) != tt.shows {
				t.Errorf("shown %d times", shown)
			}
		})
	}
}

func TestRunRefusesWithoutAnInterface(t *testing.T) {
	if err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("Run started with no way for a person to approve")
	}
}

func TestRunStopsWhenTheInterfaceCannotStart(t *testing.T) {
	port := testenv.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"port":%d,"servers":[]}`, port)), 0o600)
	err := Run(context.Background(), Options{
		ConfigPath: cfg, PolicyPath: filepath.Join(filepath.Dir(cfg), "no-policy.json"), Keyring: vaulttest.NewKeyring(), Logger: quietLog(),
		NewUI: func(Core) (UI, error) { return nil, errors.New("no display") },
	})
	if err == nil || !strings.Contains(err.Error(), "no display") {
		t.Fatalf("Run = %v", err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("the port is still held: %v", err)
	}
	ln.Close()
}
