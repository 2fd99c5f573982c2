package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/vault"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/zalando/go-keyring"
)

type memKeyring map[string]string

func (k memKeyring) Get(s, u string) (string, error) {
	if v, ok := k[s+u]; ok {
		return v, nil
	}
	return "", keyring.ErrNotFound
}
func (k memKeyring) Set(s, u, p string) error { k[s+u] = p; return nil }
func (k memKeyring) Delete(s, u string) error { delete(k, s+u); return nil }

// TestRunServesAndShutsDownClosed starts the whole app on loopback, checks a
// call waits for the approver, then shuts down with a call still waiting:
// it must come back denied.
func TestRunServesAndShutsDownClosed(t *testing.T) {
	s := server.NewMCPServer("up", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo: " + r.GetString("message", "")), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s))
	defer up.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfgPath := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`{"port":%d,"servers":[{"id":"up","name":"Upstream","transport":"streamable-http","url":%q}]}`, port, up.URL+"/mcp")), 0o600)

	v := vault.NewWith(memKeyring{})
	token, _ := v.LocalToken()
	queues := make(chan *gate.Queue, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			ConfigPath: cfgPath,
			Vault:      v,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			Approver: func(ctx context.Context, q *gate.Queue, cfg *config.Config) error {
				queues <- q
				<-ctx.Done()
				return nil
			},
		})
	}()
	q := <-queues
	url := fmt.Sprintf("http://127.0.0.1:%d/servers/up/mcp", port)
	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
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
	var resp *http.Response
	for i := 0; ; i++ { // the listener may not be up yet
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("app never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp = post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	io.ReadAll(resp.Body)
	resp.Body.Close()
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()

	answer := make(chan string, 1)
	go func() {
		r := post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`)
		b, _ := io.ReadAll(r.Body)
		answer <- string(b)
	}()
	for len(q.Pending()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // quit with the call still waiting
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case got := <-answer:
		if !strings.Contains(got, `"isError":true`) || !strings.Contains(got, "shutting down") {
			t.Fatalf("waiting call got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting call never answered after shutdown")
	}
}

func TestRunRefusesWithoutAnApprover(t *testing.T) {
	if err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("Run started with no way for a person to approve")
	}
}
