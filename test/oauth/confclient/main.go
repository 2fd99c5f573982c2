// Command confclient is the client under test for the MCP conformance
// suite's auth scenarios: `conformance client --command confclient
// --scenario auth/…` runs it with the scenario's server URL as its last
// argument. It connects with Countersign's own auth service and
// Streamable HTTP transport, signs in with a headless browser, then
// initializes (server/discover and stateless requests for a 2026-07-28
// server, the initialize handshake for an older one), lists tools and
// calls the first one.
//
// The scenario's context (MCP_CONFORMANCE_CONTEXT) is what an admin would
// configure: a pre-registered client_id and client_secret; for a
// machine-to-machine server a client_id with a private key
// (private_key_pem, signing_algorithm) or a client secret; for cross-app
// access the IdP's issuer, token endpoint and Countersign's client there,
// with the person's ID token; for workload identity federation a client_id
// and the workload's JWT (valid_jwt). A client secret with a client ID fits both
// a pre-registered browser client and a machine-to-machine one, so the
// scenario name (MCP_CONFORMANCE_SCENARIO) says which the admin chose.
// Secrets go to an in-memory keychain and a temporary directory removed
// on exit: the person's keychain is never touched. It exits 0 when every
// step succeeded.
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
		ClientID         string `json:"client_id"`
		ClientSecret     string `json:"client_secret"`
		PrivateKeyPEM    string `json:"private_key_pem"`
		SigningAlgorithm string `json:"signing_algorithm"`
		IdPClientID      string `json:"idp_client_id"`
		IdPIDToken       string `json:"idp_id_token"`
		IdPIssuer        string `json:"idp_issuer"`
		IdPTokenEndpoint string `json:"idp_token_endpoint"`
		WorkloadJWT      string `json:"valid_jwt"`
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
	cfg := auth.ServerAuth{
		Kind:        auth.KindOAuth,
		Name:        "the conformance server",
		ResourceURL: serverURL,
		ClientID:    cc.ClientID,
		CIMDURL:     cimdURL,
	}
	var cred auth.Credential
	switch {
	case cc.WorkloadJWT != "":
		cfg.Kind = auth.KindWorkloadIdentity
		cred.WorkloadToken = cc.WorkloadJWT
	case cc.IdPIDToken != "":
		cfg.Kind = auth.KindCrossApp
		cfg.IdP = &auth.IdentityProvider{Issuer: cc.IdPIssuer, ClientID: cc.IdPClientID, TokenEndpoint: cc.IdPTokenEndpoint}
		cred.ClientSecret = cc.ClientSecret
	case cc.PrivateKeyPEM != "":
		cfg.Kind = auth.KindClientCredentials
		cfg.TokenEndpointAuthMethod = "private_key_jwt"
		cfg.SigningAlgorithm = cc.SigningAlgorithm
		cred.PrivateKeyPEM = cc.PrivateKeyPEM
	case os.Getenv("MCP_CONFORMANCE_SCENARIO") == "auth/client-credentials-basic":
		cfg.Kind = auth.KindClientCredentials
		cfg.TokenEndpointAuthMethod = "client_secret_basic"
		cred.ClientSecret = cc.ClientSecret
	default:
		cfg.ClientSecret = cc.ClientSecret
	}
	if err := svc.Register("conformance", cfg); err != nil {
		return err
	}
	if cfg.Kind != auth.KindOAuth {
		if err := svc.SetCredential("conformance", cred); err != nil {
			return err
		}
	}
	if cfg.Kind == auth.KindCrossApp {
		if err := svc.SetIDToken("conformance", cc.IdPIDToken); err != nil {
			return err
		}
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
