// Command confclient is the client under test for the MCP conformance
// suite's auth scenarios: `conformance client --command confclient
// --scenario auth/…` runs it with the scenario's server URL as its last
// argument. It connects with Countersign's own auth service and
// Streamable HTTP transport, signs in with a headless browser, then
// initializes, lists tools and calls the first one.
//
// The scenario's context (MCP_CONFORMANCE_CONTEXT) may carry a
// pre-registered client_id and client_secret. Secrets go to an in-memory
// keychain and a temporary directory removed on exit: the person's
// keychain is never touched. It exits 0 when every step succeeded.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
	"github.com/countersign/countersign/test/oauth"
)

// cimdURL is the Client ID Metadata Document URL the conformance suite
// expects a CIMD-capable client to use.
const cimdURL = "https://conformance-test.local/client-metadata.json"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "confclient:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return errors.New("usage: confclient SERVER_URL")
	}
	serverURL := os.Args[len(os.Args)-1]
	var cc struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if c := os.Getenv("MCP_CONFORMANCE_CONTEXT"); c != "" {
		if err := json.Unmarshal([]byte(c), &cc); err != nil {
			return fmt.Errorf("reading MCP_CONFORMANCE_CONTEXT: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "confclient-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := auth.New(auth.Options{
		Vault:      vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: dir}),
		OpenURL:    oauth.Opener(func(err error) { log.Info("browser", "err", err) }),
		Logger:     log,
		AutoSignIn: true,
		// Per scenario the harness allows 30 s in all.
		SignInTimeout: 20 * time.Second,
	})
	defer svc.Close()
	if err := svc.Register("conformance", auth.ServerAuth{
		Kind:         auth.KindOAuth,
		Name:         "the conformance server",
		ResourceURL:  serverURL,
		ClientID:     cc.ClientID,
		ClientSecret: cc.ClientSecret,
		CIMDURL:      cimdURL,
	}); err != nil {
		return err
	}
	conn := transport.NewStreamableHTTP(transport.HTTPOptions{URL: serverURL, Client: svc.Client("conformance"), Logger: log})
	defer conn.Close()
	c := oauth.NewMCPClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := c.Initialize(ctx, "countersign-confclient"); err != nil {
		return err
	}
	res, err := c.Call(ctx, "tools/list", map[string]any{})
	if err != nil {
		return err
	}
	var tools struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(res, &tools)
	if len(tools.Tools) > 0 {
		if _, err := c.Call(ctx, "tools/call", map[string]any{"name": tools.Tools[0].Name, "arguments": map[string]any{}}); err != nil {
			return err
		}
	}
	return nil
}
