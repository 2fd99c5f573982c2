package awsauth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/countersign/countersign/internal/awsauth"
	"github.com/countersign/countersign/internal/awsauth/awstest"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

const testTimeout = 30 * time.Second

var (
	dev  = awstest.Account{ID: "111122223333", Name: "Payments Dev", Roles: []string{"ReadOnly", "PowerUser"}}
	prod = awstest.Account{ID: "444455556666", Name: "Payments Prod", Roles: []string{"ReadOnly"}}
)

// fixture is a signed-out session against the stand-in IAM Identity Center.
type fixture struct {
	clock *clocktest.Clock
	ic    *awstest.IdentityCenter
	dir   string // where the vault seals large values: scanned for secrets
	sess  *awsauth.Session
	// browser is how the person's browser follows the authorize page;
	// tests may change the URL it opens.
	rewrite func(string) string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: clocktest.New(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)), dir: t.TempDir()}
	f.ic = awstest.NewIdentityCenter(f.clock, dev, prod)
	t.Cleanup(f.ic.Close)
	v := vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: f.dir, Service: "countersign-test"})
	sess, err := awsauth.New(awsauth.Options{
		ID: "aws", Vault: v, Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler),
		Settings: awsauth.Settings{StartURL: "https://d-1234567890.awsapps.com/start", Region: "eu-west-1",
			OIDCEndpoint: f.ic.URL, PortalEndpoint: f.ic.URL},
		OpenURL:       f.open,
		SignInTimeout: testTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sess = sess
	return f
}

// open plays the person's browser: it follows the authorize page's
// redirect back to Countersign's loopback address.
func (f *fixture) open(u string) error {
	if f.rewrite != nil {
		u = f.rewrite(u)
	}
	go func() {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return nil
}

func (f *fixture) signIn(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := f.sess.SignIn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.sess.ChooseRole(ctx, awsauth.Account{ID: dev.ID, Name: dev.Name}, "ReadOnly"); err != nil {
		t.Fatal(err)
	}
}

func TestSignInListsAccountsAndRoles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.sess.Accounts(ctx); !errors.Is(err, awsauth.ErrSignInRequired) {
		t.Fatalf("Accounts before sign-in: %v, want ErrSignInRequired", err)
	}
	if err := f.sess.SignIn(ctx); err != nil {
		t.Fatal(err)
	}
	accounts, err := f.sess.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 2 || accounts[0].Label() != "Payments Dev (111122223333)" || accounts[1].ID != prod.ID {
		t.Fatalf("accounts = %+v", accounts)
	}
	roles, err := f.sess.Roles(ctx, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(roles, ",") != "PowerUser,ReadOnly" {
		t.Fatalf("roles = %v", roles)
	}
	if _, err := f.sess.Retrieve(ctx); !errors.Is(err, awsauth.ErrNoRole) {
		t.Fatalf("Retrieve before a role is chosen: %v, want ErrNoRole", err)
	}
	if err := f.sess.ChooseRole(ctx, accounts[0], "ReadOnly"); err != nil {
		t.Fatal(err)
	}
	st, err := f.sess.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.SignedIn || st.AccountID != dev.ID || st.RoleName != "ReadOnly" || !st.Expires.Equal(f.clock.Now().Add(15*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("status = %+v", st)
	}
	if err := f.sess.ChooseRole(ctx, awsauth.Account{ID: prod.ID}, "PowerUser"); err == nil {
		t.Fatal("a role the portal does not offer was accepted")
	}
}

// The stand-in redeems a code only with the verifier whose S256 hash was
// sent to the authorize page; a sign-in whose challenge was changed on the
// way fails.
func TestSignInNeedsMatchingVerifier(t *testing.T) {
	f := newFixture(t)
	f.rewrite = func(u string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		q.Set("code_challenge", strings.Repeat("A", 43))
		p.RawQuery = q.Encode()
		return p.String()
	}
	err := f.sess.SignIn(context.Background())
	if err == nil || !strings.Contains(err.Error(), "InvalidGrantException") {
		t.Fatalf("SignIn with a changed challenge: %v, want InvalidGrantException", err)
	}
	if st, _ := f.sess.Status(); st.SignedIn {
		t.Fatal("signed in although the code was refused")
	}
}

// mcpUpstream is an MCP server behind the SigV4 check.
type mcpUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	accepted map[string]int // by HTTP method
	rejected []error
}

func newUpstream(t *testing.T, f *fixture, service, region string) *mcpUpstream {
	t.Helper()
	s := server.NewMCPServer("aws-stand-in", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("message", "")), nil
		})
	u := &mcpUpstream{accepted: map[string]int{}}
	v := &awstest.Verifier{Service: service, Region: region, Clock: f.clock, Lookup: f.ic.Lookup}
	h := server.NewStreamableHTTPServer(s, server.WithStateful(true), server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)))
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.accepted[r.Method]++
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	u.Server = httptest.NewServer(v.Handler(counted, func(err error) {
		u.mu.Lock()
		u.rejected = append(u.rejected, err)
		u.mu.Unlock()
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *mcpUpstream) counts() (map[string]int, []error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := map[string]int{}
	for k, v := range u.accepted {
		m[k] = v
	}
	return m, append([]error(nil), u.rejected...)
}

// signedInUpstream signs a session in and starts the stand-in AWS MCP
// endpoint (aws-mcp in eu-west-1) that checks its signatures; endpoint is
// the endpoint's URL.
func signedInUpstream(t *testing.T) (f *fixture, up *mcpUpstream, endpoint string) {
	t.Helper()
	f = newFixture(t)
	f.signIn(t)
	up = newUpstream(t, f, "aws-mcp", "eu-west-1")
	return f, up, up.URL + "/mcp"
}

func signerFor(t *testing.T, f *fixture, endpoint string, next http.RoundTripper) *awsauth.Signer {
	t.Helper()
	s, err := awsauth.NewSigner(endpoint, awsauth.SigningScope{Service: "aws-mcp", Region: "eu-west-1"}, f.sess, next)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = f.clock.Now
	return s
}

func recvAnswer(t *testing.T, c transport.Conn, id string) jsonrpc.Message {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case in := <-c.Incoming():
			m, err := jsonrpc.Parse(in.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != jsonrpc.KindResponse {
				continue
			}
			if string(m.ID) != id {
				t.Fatalf("answer to %s, want %s", m.ID, id)
			}
			return m
		case <-c.Done():
			t.Fatalf("connection ended: %v", c.Err())
		case <-deadline:
			t.Fatalf("no answer to %s", id)
		}
	}
}

// Every kind of request the Streamable HTTP transport sends — POSTs, the
// GET stream and the DELETE that ends the session — reaches the server
// signed, and the server's own check accepts each.
func TestSignerSignsEveryRequestKind(t *testing.T) {
	f, up, endpoint := signedInUpstream(t)
	c := transport.NewStreamableHTTP(transport.HTTPOptions{URL: endpoint, Client: &http.Client{Transport: signerFor(t, f, endpoint, nil)}})
	ctx := context.Background()
	send := func(msg string) {
		t.Helper()
		if err := c.Send(ctx, []byte(msg), nil); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`)
	recvAnswer(t, c, "1")
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"signed"}}}`)
	if m := recvAnswer(t, c, "2"); !bytes.Contains(m.Result, []byte("signed")) {
		t.Fatalf("tools/call result %s", m.Result)
	}
	waitFor(t, "the GET stream", func() bool { n, _ := up.counts(); return n[http.MethodGet] > 0 })
	c.Close()
	waitFor(t, "the DELETE", func() bool { n, _ := up.counts(); return n[http.MethodDelete] > 0 })
	n, rejected := up.counts()
	if len(rejected) > 0 {
		t.Fatalf("the server rejected signatures: %v", rejected)
	}
	if n[http.MethodPost] < 3 {
		t.Fatalf("accepted %v, want at least 3 POSTs", n)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tamper changes the body after it was signed.
type tamper struct{}

func (tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	b = bytes.Replace(b, []byte("ReadOnly"), []byte("Delete!!"), 1)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(r)
}

// The server's check is independent and strict: a body changed after
// signing, a stale date and a signature for another service or Region
// are each refused, and the same request signed properly is accepted.
func TestVerifierRejects(t *testing.T) {
	f, up, endpoint := signedInUpstream(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"ReadOnly","version":"0"}}}`
	post := func(rt http.RoundTripper) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := signerFor(t, f, endpoint, nil)
	stale := signerFor(t, f, endpoint, nil)
	stale.Now = func() time.Time { return f.clock.Now().Add(-16 * time.Minute) }
	otherRegion := signerFor(t, f, endpoint, nil)
	otherRegion.Scope.Region = "us-east-1"
	otherService := signerFor(t, f, endpoint, nil)
	otherService.Scope.Service = "execute-api"
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
		want error
	}{
		{"tampered body", signerFor(t, f, endpoint, tamper{}), awstest.ErrBadSignature},
		{"stale date", stale, awstest.ErrStale},
		{"wrong region", otherRegion, awstest.ErrWrongScope},
		{"wrong service", otherService, awstest.ErrWrongScope},
		{"unsigned", http.DefaultTransport, awstest.ErrUnsigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, before := up.counts()
			if got := post(tc.rt); got != http.StatusForbidden {
				t.Fatalf("status %d, want 403", got)
			}
			_, after := up.counts()
			if len(after) != len(before)+1 || !errors.Is(after[len(after)-1], tc.want) {
				t.Fatalf("rejections %v, want %v last", after, tc.want)
			}
		})
	}
	if got := post(good); got != http.StatusOK {
		t.Fatalf("a properly signed request got %d", got)
	}
}

// Role credentials last 15 minutes and the portal token an hour; calls
// keep working across both without a new sign-in, with fresh credentials
// fetched before the old ones end.
func TestRenewalWithoutNoticing(t *testing.T) {
	f, up, endpoint := signedInUpstream(t)
	client := &http.Client{Transport: signerFor(t, f, endpoint, nil)}
	call := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call at %s answered %d", f.clock.Now().Format(time.Kitchen), resp.StatusCode)
		}
	}
	call()
	if n := len(f.ic.Issued()); n != 1 {
		t.Fatalf("issued %d credentials, want 1", n)
	}
	// 9 minutes on, 6 remain: more than the 5-minute window, no renewal.
	f.clock.Advance(9 * time.Minute)
	call()
	if n := len(f.ic.Issued()); n != 1 {
		t.Fatalf("renewed too early: %d credentials", n)
	}
	// 11 minutes on, 4 remain: renewed before they end.
	f.clock.Advance(2 * time.Minute)
	call()
	issued := f.ic.Issued()
	if len(issued) != 2 || issued[1].Expires.Sub(f.clock.Now()) != 15*time.Minute {
		t.Fatalf("issued %+v, want fresh credentials", issued)
	}
	for range 6 { // past the portal token's hour
		f.clock.Advance(11 * time.Minute)
		call()
	}
	if f.ic.TokenRefreshes == 0 {
		t.Fatal("the portal token was never refreshed")
	}
	_, rejected := up.counts()
	if len(rejected) > 0 {
		t.Fatalf("rejected: %v", rejected)
	}
	if f.ic.Registrations != 1 {
		t.Fatalf("registered %d times: renewal must not sign in again", f.ic.Registrations)
	}

	// Nothing of any credential is on disk.
	secrets := []string{}
	for _, c := range f.ic.Issued() {
		secrets = append(secrets, c.SecretAccessKey, c.SessionToken)
	}
	assertNotOnDisk(t, f.dir, secrets)
}

// assertNotOnDisk fails if any secret appears in any file under dir.
func assertNotOnDisk(t *testing.T, dir string, secrets []string) {
	t.Helper()
	files := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, s := range secrets {
			if s != "" && bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a credential", path)
			}
		}
		return nil
	})
	t.Logf("scanned %d files under %s", files, dir)
}

func TestSignerRefusesOtherOriginsAndLongLivedKeys(t *testing.T) {
	static := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "long-lived"}, nil
	})
	s, err := awsauth.NewSigner("https://aws-mcp.eu-west-1.api.aws/mcp", awsauth.SigningScope{}, static, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Scope != (awsauth.SigningScope{Service: "aws-mcp", Region: "eu-west-1"}) {
		t.Fatalf("scope %+v", s.Scope)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://aws-mcp.eu-west-1.api.aws/mcp", nil)
	if _, err := s.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "not temporary") {
		t.Fatalf("long-lived key: %v", err)
	}
	req, _ = http.NewRequest(http.MethodGet, "https://example.org/mcp", nil)
	if _, err := s.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing to sign") {
		t.Fatalf("other origin: %v", err)
	}
	if _, err := awsauth.NewSigner("http://aws-mcp.eu-west-1.api.aws/mcp", awsauth.SigningScope{}, static, nil); err == nil {
		t.Fatal("a plain-http AWS endpoint was accepted")
	}
}

func TestScopeFor(t *testing.T) {
	for in, want := range map[string]awsauth.SigningScope{
		"https://aws-mcp.us-east-1.api.aws/mcp":      {Service: "aws-mcp", Region: "us-east-1"},
		"https://aws-mcp.eu-central-1.api.aws/mcp":   {Service: "aws-mcp", Region: "eu-central-1"},
		"https://AWS-MCP.ap-southeast-2.api.aws/mcp": {Service: "aws-mcp", Region: "ap-southeast-2"},
	} {
		got, err := awsauth.ScopeFor(in)
		if err != nil || got != want {
			t.Errorf("ScopeFor(%s) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"https://example.org/mcp", "https://aws-mcp.api.aws/mcp", "https://aws-mcp.evil.api.aws.example.org/mcp"} {
		if got, err := awsauth.ScopeFor(in); err == nil {
			t.Errorf("ScopeFor(%s) = %+v, want an error", in, got)
		}
	}
}
