package bench

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// startApp runs the whole app (guard, pins, redaction, audit on a SQLite
// file in a temporary folder, the gate with the instant approver) in front
// of the Streamable HTTP server at upstreamURL, with an in-memory keychain,
// and returns an initialized mcp-go client of it.
func startApp(tb testing.TB, upstreamURL string) *client.Client {
	tb.Helper()
	tmp := tb.TempDir()
	kr := vaulttest.NewKeyring()
	tok, err := vault.Open(vault.Options{Keyring: kr, Dir: filepath.Join(tmp, "secrets")}).LocalToken()
	if err != nil {
		tb.Fatal(err)
	}
	port := testenv.FreePort(tb)
	cfg := writeSettings(tb, tmp, port, map[string]any{"id": "up", "name": "Upstream", "transport": "streamable-http", "url": upstreamURL})
	a := &approver{}
	built := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: cfg, PolicyPath: filepath.Join(tmp, "no-policy.json"), Keyring: kr,
			Logger: slog.New(slog.DiscardHandler),
			NewUI: func(c app.Core) (app.UI, error) {
				close(built)
				return &benchUI{a: a, core: c}, nil
			}})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			tb.Error("the app did not stop")
		}
	})
	select {
	case <-built:
	case err := <-done:
		tb.Fatalf("the app stopped at start: %v", err)
	}
	waitListening(tb, "127.0.0.1:"+strconv.Itoa(port))
	return connectWith(tb, "http://127.0.0.1:"+strconv.Itoa(port)+"/servers/up/mcp", tok)
}

// BenchmarkApp times one tools/list and one gated echo per op,
// made by the mcp-go client through the app as it runs, against
// server-everything (or the in-process mcp-go server with -short). Run it
// with -cpuprofile to see where the app's time goes. (No ping: mcp-go's
// client sends none on a 2026-07-28 connection.)
func BenchmarkApp(b *testing.B) {
	url := ""
	if testing.Short() {
		url = startMCPGo(b)
	} else {
		url = startEverything(b)
	}
	c := startApp(b, url)
	ctx := b.Context()
	one := func() {
		if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
			b.Fatal(err)
		}
		if err := callEcho(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	for range warmup {
		one()
	}
	b.ResetTimer()
	for range b.N {
		one()
	}
}
