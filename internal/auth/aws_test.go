package auth

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

	"github.com/countersign/countersign/internal/awsauth"
	"github.com/countersign/countersign/internal/awsauth/awstest"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// An AWS server signs in through the stand-in IAM Identity Center, its
// role is chosen, and every request the Service's client sends is signed
// so that an independent SigV4 check accepts it — across renewals of the
// role credentials and of the portal token — until sign-out. No key or
// token is left on disk.
func TestAWSSignInRoleAndSignedRequests(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	ic := awstest.NewIdentityCenter(clock, awstest.Account{ID: "111122223333", Name: "Payments Dev", Roles: []string{"ReadOnly"}})
	defer ic.Close()

	var mu sync.Mutex
	var rejected []error
	accepted := 0
	v := &awstest.Verifier{Service: "aws-mcp", Region: "eu-west-1", Clock: clock, Lookup: ic.Lookup}
	mcp := httptest.NewServer(v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepted++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}), func(err error) {
		mu.Lock()
		rejected = append(rejected, err)
		mu.Unlock()
	}))
	defer mcp.Close()

	dir := t.TempDir()
	svc := New(Options{
		Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: dir, Service: "countersign-test"}),
		Now:   clock.Now, Logger: slog.New(slog.DiscardHandler), SignInTimeout: 30 * time.Second,
		OpenURL: awstest.OpenInBrowser, // the person's browser: the stand-in signs in at once
	})
	defer svc.Close()
	settings := &AWSSettings{StartURL: "https://d-1234567890.awsapps.com/start", Region: "eu-west-1",
		OIDCEndpoint: ic.URL, PortalEndpoint: ic.URL}
	endpoint := mcp.URL + "/mcp"
	// The signing scope is read from AWS endpoints; the stand-in is on
	// loopback, so it is given: the scope aws-mcp.eu-west-1.api.aws gives.
	register := func(account, role string) {
		t.Helper()
		cfg := ServerAuth{Kind: KindAWS, Name: "AWS", ResourceURL: endpoint, AWS: &AWSSettings{
			StartURL: settings.StartURL, Region: settings.Region, OIDCEndpoint: ic.URL, PortalEndpoint: ic.URL,
			AccountID: account, Role: role, Scope: awsauth.SigningScope{Service: "aws-mcp", Region: "eu-west-1"}}}
		if err := svc.Register("aws", cfg); err != nil {
			t.Fatal(err)
		}
	}
	register("", "")
	post := func() (int, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		resp, err := svc.Client("aws").Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := post(); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("before sign-in: %v, want ErrSignInRequired", err)
	}
	if err := svc.SignIn(context.Background(), "aws"); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.Status("aws"); st.State != StateSignedIn || !strings.Contains(st.Reason, "choose an AWS account") {
		t.Fatalf("after sign-in: %+v", st)
	}
	sess, err := svc.AWS("aws")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.ChooseRole(context.Background(), awsauth.Account{ID: "111122223333"}, "ReadOnly"); err != nil {
		t.Fatal(err)
	}
	register("111122223333", "ReadOnly") // the settings now name the role
	if st, _ := svc.Status("aws"); st.State != StateSignedIn || st.Reason != "" {
		t.Fatalf("after choosing a role: %+v", st)
	}
	for range 10 { // 10 × 8 minutes: past several credential lives and the token's hour
		if code, err := post(); err != nil || code != http.StatusOK {
			t.Fatalf("at %s: %d, %v", clock.Now().Format(time.Kitchen), code, err)
		}
		clock.Advance(8 * time.Minute)
	}
	mu.Lock()
	if len(rejected) > 0 || accepted != 10 {
		t.Fatalf("accepted %d, rejected %v", accepted, rejected)
	}
	mu.Unlock()
	if len(ic.Issued()) < 5 || ic.TokenRefreshes == 0 || ic.Registrations != 1 {
		t.Fatalf("issued %d credentials, %d token refreshes, %d registrations", len(ic.Issued()), ic.TokenRefreshes, ic.Registrations)
	}

	// A role the settings do not name never signs.
	register("111122223333", "Admin")
	if _, err := post(); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("with another role in the settings: %v", err)
	}

	var secrets []string
	for _, c := range ic.Issued() {
		secrets = append(secrets, c.SecretAccessKey, c.SessionToken)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a credential", path)
			}
		}
		return nil
	})

	if err := svc.SignOut(context.Background(), "aws"); err != nil {
		t.Fatal(err)
	}
	register("111122223333", "ReadOnly")
	if st, _ := svc.Status("aws"); st.State != StateSignedOut {
		t.Fatalf("after sign-out: %+v", st)
	}
}

// AWS MCP Server also takes OAuth through AWS Sign-In, which fits MCP
// authorization: protected resource metadata names the Sign-In issuer,
// whose metadata lists /v1/authorize and /v1/token, dynamic registration
// for loopback redirects, PKCE S256 and clients named by ARNs
// (arn:aws:signin:{region}::external-client/dcr/{uuid}, per AWS's
// AuthorizeOAuth2Access reference). The existing sign-in serves it.
func TestAWSSignInOAuthShape(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.clientPrefix = "arn:aws:signin:eu-west-1::external-client/dcr/"
		a.authMethods = []string{"none"}
		a.meta = map[string]any{
			"authorization_endpoint": a.issuer() + "/v1/authorize",
			"token_endpoint":         a.issuer() + "/v1/token",
			"registration_endpoint":  a.issuer() + "/v1/register",
			"revocation_endpoint":    nil,
			"scopes_supported":       nil,
		}
	})
	h := newHarness(t, nil)
	h.register(t, a, func(c *ServerAuth) { c.Name = "AWS" })
	h.mustCall(t, a, "tools/list")
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.registers) != 1 || len(a.authorizes) != 1 {
		t.Fatalf("registered %d, authorized %d times", len(a.registers), len(a.authorizes))
	}
	q := a.authorizes[0]
	if !strings.HasPrefix(q.Get("client_id"), "arn:aws:signin:eu-west-1::external-client/dcr/") ||
		q.Get("code_challenge_method") != "S256" || q.Get("resource") != a.resourceURL() {
		t.Fatalf("authorize request %v", q)
	}
	if u, _ := url.Parse(q.Get("redirect_uri")); u == nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("redirect %q is not a loopback address AWS Sign-In accepts", q.Get("redirect_uri"))
	}
	if len(a.tokenForms) == 0 || a.tokenForms[0].Get("client_id") != q.Get("client_id") {
		t.Fatalf("token requests %v", a.tokenForms)
	}
}
