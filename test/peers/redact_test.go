package peers

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// everythingUpstream starts server-everything in mode and returns a relay
// server for it.
func everythingUpstream(t *testing.T, dir, mode string) relay.Server {
	t.Helper()
	switch mode {
	case "stdio":
		return relay.Server{ID: "everything", Name: "Everything", Dial: func(ctx context.Context) (transport.Conn, error) {
			return transport.StartStdio(ctx, transport.StdioOptions{Command: "node", Args: []string{testenv.EverythingJS(dir), "stdio"}})
		}}
	case "sse":
		url := startEverything(t, dir, mode)
		return relay.Server{ID: "everything", Name: "Everything", Dial: func(ctx context.Context) (transport.Conn, error) {
			return transport.DialLegacySSE(ctx, transport.HTTPOptions{URL: url})
		}}
	}
	url := startEverything(t, dir, mode)
	return relay.Server{ID: "everything", Name: "Everything", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: url}), nil
	}}
}

// guarded runs the relay with the guard in front of upstream, a person who
// approves every call, and an audit log, and returns the endpoint.
func guarded(t *testing.T, upstream relay.Server, pol *policy.Policy) (string, *audit.Log) {
	t.Helper()
	auditLog, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := gate.New(gate.Options{})
	g := guard.New(guard.Options{Queue: q, Audit: auditLog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.SetPolicies(map[string]*policy.Policy{upstream.ID: pol})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{upstream}, Gate: g, Filter: g, Token: token, Port: port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	sub := q.Subscribe()
	go func() {
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				q.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		r.Close()
		hs.Close()
		sub.Close()
		q.Close()
		auditLog.Close()
	})
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/" + upstream.ID + "/mcp", auditLog
}

// tee keeps a copy of every response body the client reads: everything
// that reached the AI app.
type tee struct {
	mu   sync.Mutex
	seen bytes.Buffer
}

func (t *tee) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = teeBody{resp.Body, t}
	}
	return resp, err
}

func (t *tee) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen.String()
}

type teeBody struct {
	io.ReadCloser
	t *tee
}

func (b teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.t.mu.Lock()
	b.t.seen.Write(p[:n])
	b.t.mu.Unlock()
	return n, err
}

// fakeHost is the AI app's side of sampling and elicitation: it records
// what the server asked and answers.
type fakeHost struct {
	mu       sync.Mutex
	sampled  []string
	elicited []string
}

func (h *fakeHost) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	h.mu.Lock()
	for _, m := range req.Messages {
		if tc, ok := m.Content.(mcp.TextContent); ok {
			h.sampled = append(h.sampled, tc.Text)
		}
	}
	h.mu.Unlock()
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("sampled-by-test")}, Model: "test"}, nil
}

func (h *fakeHost) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.mu.Lock()
	h.elicited = append(h.elicited, req.Params.Message+" | "+req.Params.URL)
	h.mu.Unlock()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
}

func newPEMKey(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
}

// TestGuardRedactsServerMessages plants secrets in what server-everything
// sends toward the AI app besides tool results, for each transport it
// speaks: a prompt argument echoed by prompts/get, a sampling request, a
// URL elicitation and a log message. A real client must get each with the
// secret replaced by its marker, no byte it reads may hold a secret, and
// the audit records the redactions without them.
func TestGuardRedactsServerMessages(t *testing.T) {
	dir := peersDir(t)
	promptSecret := "ghp_" + "Pr0mptArgSecretAbCdEfGhIjKlMnOpQrSt12"
	samplingSecret := "ghp_" + "SampLingSecretAbCdEfGhIjKlMnOpQrSt345"
	logSecret := "AK" + "IA" + "Q3EGRHX5MZ4TB7LW"
	pemKey := newPEMKey(t)
	pemJSON, _ := json.Marshal(pemKey)
	secrets := []string{promptSecret, samplingSecret, logSecret, pemKey, string(pemJSON[1 : len(pemJSON)-1])}

	for _, mode := range []string{"streamableHttp", "sse", "stdio"} {
		t.Run(mode, func(t *testing.T) {
			pol, err := policy.New(policy.Config{Name: "Everything"})
			if err != nil {
				t.Fatal(err)
			}
			endpoint, auditLog := guarded(t, everythingUpstream(t, dir, mode), pol)

			seen := &tee{}
			host := &fakeHost{}
			// The legacy protocol on purpose: it is the one with a GET
			// stream, server-to-client requests and resources/subscribe,
			// which is what server-everything speaks.
			tr, err := mcptransport.NewStreamableHTTP(endpoint,
				//lint:ignore SA1019 the legacy GET stream is what this test needs
				mcptransport.WithContinuousListening(),
				mcptransport.WithHTTPLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
				mcptransport.WithHTTPBasicClient(&http.Client{Transport: seen}),
				mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
			if err != nil {
				t.Fatal(err)
			}
			c := client.NewClient(tr, client.WithSamplingHandler(host), client.WithElicitationHandler(host))
			logs := make(chan string, 100)
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == "notifications/message" {
					b, _ := json.Marshal(n.Params.AdditionalFields["data"])
					select {
					case logs <- string(b):
					default:
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
				ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION,
				ClientInfo:      mcp.Implementation{Name: "redact-test", Version: "1"},
				Capabilities: mcp.ClientCapabilities{Sampling: &mcp.SamplingCapability{},
					Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}},
			}}); err != nil {
				t.Fatal(err)
			}

			// A prompt argument echoed back by prompts/get.
			prompt, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "args-prompt",
				Arguments: map[string]string{"city": promptSecret}}})
			if err != nil {
				t.Fatal(err)
			}
			var promptText string
			for _, m := range prompt.Messages {
				if tc, ok := m.Content.(mcp.TextContent); ok {
					promptText += tc.Text
				}
			}
			if want := "What's weather in [redacted: github token]?"; promptText != want {
				t.Errorf("prompts/get text %q, want %q", promptText, want)
			}

			// A sampling request the server makes during a tool call.
			call := func(name string, args map[string]any) {
				t.Helper()
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if res.IsError {
					t.Fatalf("%s: error result %+v", name, res.Content)
				}
			}
			call("trigger-sampling-request", map[string]any{"prompt": "deploy with " + samplingSecret, "maxTokens": 10})
			// A URL elicitation whose message holds a private key.
			call("trigger-url-elicitation", map[string]any{"url": "https://example.com/connect", "message": "Install this key: " + pemKey})
			host.mu.Lock()
			sampled, elicited := strings.Join(host.sampled, "\n"), strings.Join(host.elicited, "\n")
			host.mu.Unlock()
			if want := "Resource trigger-sampling-request context: deploy with [redacted: github token]"; sampled != want {
				t.Errorf("sampling request reached the AI app as %q, want %q", sampled, want)
			}
			if want := "Install this key: [redacted: private key] | https://example.com/connect"; elicited != want {
				t.Errorf("elicitation reached the AI app as %q, want %q", elicited, want)
			}

			// A log message: server-everything logs the URI of a
			// subscription.
			//lint:ignore SA1019 server-everything logs legacy subscriptions
			if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "demo://resource/" + logSecret}}); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(20 * time.Second)
		wait:
			for {
				select {
				case data := <-logs:
					if strings.Contains(data, "Received Subscribe Resource request") {
						if !strings.Contains(data, "demo://resource/[redacted: aws access key]") {
							t.Errorf("log message reached the AI app as %s", data)
						}
						break wait
					}
				case <-deadline:
					t.Fatal("no log message about the subscription reached the AI app")
				}
			}

			got := seen.String()
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("a planted secret reached the AI app: %.12s…", s)
				}
			}
			for _, marker := range []string{"[redacted: github token]", "[redacted: private key]", "[redacted: aws access key]"} {
				if !strings.Contains(got, marker) {
					t.Errorf("the AI app never saw %s", marker)
				}
			}

			// Redaction records are queued off the message's path: let them land.
			if err := auditLog.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			page, err := auditLog.Query(ctx, audit.Filter{Kinds: []audit.Kind{audit.KindMessageRedacted}}, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			redacted := map[string]int{}
			for _, rec := range page.Records {
				b, _ := json.Marshal(rec)
				for _, s := range secrets {
					if strings.Contains(string(b), s) {
						t.Errorf("audit event %d holds a secret", rec.ID)
					}
				}
				for _, n := range rec.Redactions {
					redacted[rec.Tool] += n
				}
			}
			if redacted["prompts/get"] != 1 || redacted["sampling/createMessage"] != 1 || redacted["elicitation/create"] != 1 {
				t.Errorf("audited redactions by method %v, want one each for prompts/get, sampling/createMessage, elicitation/create", redacted)
			}
			if rep, err := auditLog.Verify(ctx); err != nil || !rep.OK() {
				t.Errorf("audit verify: %v %v", rep, err)
			}
		})
	}
}
