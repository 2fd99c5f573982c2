package auth

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/vault"
	"github.com/zalando/go-keyring"
)

// TestDPoPProofVerifiesIndependently checks a proof with crypto/ecdsa
// alone: its header, signature, claims, ath and the JWK thumbprint.
func TestDPoPProofVerifiesIndependently(t *testing.T) {
	priv := ecKey(t, elliptic.P256())
	k, err := newDPoPKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	target, _ := url.Parse("https://mcp.example.com/v1/mcp?session=1#frag")
	proof, err := k.proof(http.MethodDelete, target, "the-token", "n-1", now)
	if err != nil {
		t.Fatal(err)
	}
	h, c, err := verifyJWS(proof, &priv.PublicKey)
	if err != nil {
		t.Fatalf("the proof does not verify with the key: %v", err)
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(proof[strings.LastIndex(proof, ".")+1:]); len(sig) != 64 {
		t.Fatalf("signature of %d bytes, want r||s of 64", len(sig))
	}
	jwk, _ := h["jwk"].(map[string]any)
	if h["typ"] != "dpop+jwt" || h["alg"] != "ES256" || jwk == nil || jwk["d"] != nil || len(jwk) != 4 {
		t.Fatalf("header %v", h)
	}
	x, _ := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	y, _ := base64.RawURLEncoding.DecodeString(jwk["y"].(string))
	if new(big.Int).SetBytes(x).Cmp(priv.X) != 0 || new(big.Int).SetBytes(y).Cmp(priv.Y) != 0 {
		t.Fatal("the header's jwk is not the key's public key")
	}
	sum := sha256.Sum256([]byte("the-token"))
	want := map[string]any{
		"htm": "DELETE", "htu": "https://mcp.example.com/v1/mcp", "iat": float64(now.Unix()),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]), "nonce": "n-1",
	}
	for name, v := range want {
		if c[name] != v {
			t.Errorf("%s = %v, want %v", name, c[name], v)
		}
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q", jti)
	}
	if got := jwkThumbprint(jwk); k.thumbprint() != got {
		t.Errorf("thumbprint %s, independently %s", k.thumbprint(), got)
	}
	// RFC 7638 §3.1's example key and thumbprint pin the computation.
	ex := map[string]any{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
	if jwkThumbprint(ex) != (&dpopKey{jwk: ex}).thumbprint() {
		t.Error("the thumbprints disagree on a second key")
	}

	// Each proof is fresh; a token request's has no ath and no nonce.
	again, _ := k.proof(http.MethodPost, target, "", "", now)
	_, c2, err := verifyJWS(again, &priv.PublicKey)
	if err != nil || c2["jti"] == c["jti"] || c2["ath"] != nil || c2["nonce"] != nil {
		t.Fatalf("second proof %v (%v)", c2, err)
	}
}

// TestDPoPBindsTokensAndKeepsTheKeyInTheKeychain: an authorization server
// listing ES256 gets a proof at the code exchange and at each refresh;
// every request to the server (POST, GET, DELETE) carries the DPoP scheme
// and a fresh proof with ath; the key lives in the keychain only, outlives
// a restart, and goes at sign-out.
func TestDPoPBindsTokensAndKeepsTheKeyInTheKeychain(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.dpop, a.accessTTL = true, 600 })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	if sess := h.storedSession(t); sess == nil || !sess.DPoP {
		t.Fatal("the session is not marked DPoP-bound")
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(m, a.resourceURL(), nil)
		resp, err := h.svc.Client("test").Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", m, resp, err)
		}
		resp.Body.Close()
	}
	h.clock.Advance(590 * time.Second) // inside the refresh margin
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if len(a.authorizes) != 1 {
			t.Fatalf("%d browser sign-ins: the refresh failed", len(a.authorizes))
		}
		if len(a.tokenProofs) != 2 {
			t.Fatalf("%d token requests with a proof, want the code exchange and the refresh", len(a.tokenProofs))
		}
		if last := a.tokenForms[len(a.tokenForms)-1]; last.Get("grant_type") != "refresh_token" {
			t.Fatalf("last token request %v", last)
		}
		var methods []string
		for _, c := range a.resProofs {
			methods = append(methods, c["htm"].(string))
		}
		if strings.Join(methods, " ") != "POST GET DELETE POST" {
			t.Fatalf("resource proofs for %v", methods)
		}
	})

	pemKey := keychainEntry(t, h, dpopKeyKey("test"))
	if !strings.Contains(pemKey, "PRIVATE KEY") {
		t.Fatal("the keychain entry holds no key: the scan below would prove nothing")
	}
	filepath.Walk(h.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			t.Errorf("a file was written: %s", p)
		}
		return err
	})
	if strings.Contains(h.logs.String(), strings.Split(pemKey, "\n")[1]) {
		t.Error("the log holds the key")
	}

	// A restart reads the same key: the bound token still works.
	h2 := &harness{vault: h.vault}
	h2.svc = New(Options{Vault: h.vault, Now: h.clock.Now, OpenURL: func(*url.URL) error { t.Error("a browser was opened"); return nil }})
	defer h2.svc.Close()
	h2.register(t, a, nil)
	h2.mustCall(t, a, "tools/list")

	if err := h.svc.SignOut(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if keychainEntry(t, h, dpopKeyKey("test")) != "" {
		t.Fatal("sign-out kept the DPoP key")
	}
}

// keychainEntry is the value the keychain holds for the vault's secret
// name, "" if none; it must be stored in the keychain itself, not sealed
// into a file.
func keychainEntry(t *testing.T, h *harness, name string) string {
	t.Helper()
	h.kr.mu.Lock()
	defer h.kr.mu.Unlock()
	for k, v := range h.kr.m {
		if !strings.HasSuffix(k, "/"+name) {
			continue
		}
		enc, ok := strings.CutPrefix(v, "p:")
		if !ok {
			t.Fatalf("the keychain entry of %s is %q, not the value itself", name, v[:min(len(v), 12)])
		}
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return ""
}

// TestDPoPNonceRetry: a use_dpop_nonce answer, from the token endpoint or
// the server, is retried once with the nonce given, which later proofs
// carry; a server that demands a new nonce every time is not retried
// forever.
func TestDPoPNonceRetry(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.dpop, a.dpopNonce = true, "nonce-1" })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if a.asNonceAsks != 1 || a.rsNonceAsks != 1 {
			t.Fatalf("nonce challenges: token endpoint %d, server %d; want one each", a.asNonceAsks, a.rsNonceAsks)
		}
		if len(a.tokenForms) != 2 {
			t.Fatalf("%d token requests, want the code exchange and its retry: a nonce challenge is not a reason to renew", len(a.tokenForms))
		}
		if last := a.resProofs[len(a.resProofs)-1]; last["nonce"] != "nonce-1" {
			t.Fatalf("later proof %v", last)
		}
		a.dpopNonce = "nonce-2" // the server rotates its nonce
	})
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if a.rsNonceAsks != 2 || len(a.tokenForms) != 2 {
			t.Fatalf("%d server nonce challenges", a.rsNonceAsks)
		}
	})

	// A server whose nonce changes before every request: one retry, then
	// the 401 leads to the usual recovery, which is bounded too.
	var asks int
	a.set(func(a *testAS) { asks = a.rsNonceAsks })
	h.svc.o.Transport = rotatingNonce{a: a, next: http.DefaultTransport}
	if resp, err := h.call(t, a, "tools/list"); err == nil {
		t.Fatalf("HTTP %d, want an error", resp.StatusCode)
	}
	a.set(func(a *testAS) {
		if n := a.rsNonceAsks - asks; n < 2 || n > 8 {
			t.Fatalf("%d nonce challenges for one request", n)
		}
	})
}

// rotatingNonce makes the fake server demand a nonce no proof can carry:
// it changes before every request.
type rotatingNonce struct {
	a    *testAS
	next http.RoundTripper
}

func (r rotatingNonce) RoundTrip(req *http.Request) (*http.Response, error) {
	r.a.set(func(a *testAS) { a.dpopNonce = randHex(8) })
	return r.next.RoundTrip(req)
}

// TestDPoPKeyInRealSecretService signs in to a DPoP server with the vault
// on the session's Secret Service (scripts/test provides gnome-keyring):
// the key is an entry of the keychain itself, no file is written, and a
// fresh vault on the same keychain presents the bound token.
func TestDPoPKeyInRealSecretService(t *testing.T) {
	if os.Getenv("COUNTERSIGN_REAL_KEYRING") == "" {
		t.Skip("needs a real Secret Service: run through scripts/test")
	}
	service := "Countersign-test-" + randHex(4)
	dir := t.TempDir()
	a := newTestAS(t)
	a.set(func(a *testAS) { a.dpop = true })
	h := newHarness(t, nil)
	h.vault = vault.Open(vault.Options{Dir: dir, Service: service})
	h.svc.Close()
	quiet := slog.New(slog.NewTextHandler(h.logs, nil))
	h.svc = New(Options{Vault: h.vault, OpenURL: h.browser.open, Now: h.clock.Now, Logger: quiet, SignInTimeout: 10 * time.Second, AutoSignIn: true})
	t.Cleanup(func() { h.svc.SignOut(context.Background(), "test") })
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")

	raw, err := keyring.Get(service, "secret/"+dpopKeyKey("test"))
	if err != nil {
		t.Fatalf("no DPoP key in the Secret Service: %v", err)
	}
	pemKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(raw, "p:"))
	if !strings.HasPrefix(raw, "p:") || err != nil || !strings.Contains(string(pemKey), "PRIVATE KEY") {
		t.Fatalf("the keychain entry is not the key itself: %q…", raw[:min(len(raw), 8)])
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("files written: %v", files)
	}
	fresh := New(Options{Vault: vault.Open(vault.Options{Dir: dir, Service: service}), Now: h.clock.Now, Logger: quiet})
	defer fresh.Close()
	h2 := &harness{svc: fresh}
	h2.register(t, a, nil)
	h2.mustCall(t, a, "tools/list")
}

// TestDPoPOnlyWhereBothServersTakeIt: tokens are bound only when the
// authorization server takes ES256 proofs and the MCP server takes bound
// tokens (a DPoP challenge, or its resource metadata says so): a server
// that only knows Bearer would refuse them (oidc-provider lists DPoP
// whatever the resource server does).
func TestDPoPOnlyWhereBothServersTakeIt(t *testing.T) {
	es256 := serverMetadata{DPoPSigningAlgValuesSupported: []string{"ES256", "PS256"}}
	challenged := func(v ...string) challenge {
		ch, _ := bearerChallenge(http.Header{"Www-Authenticate": v})
		return ch
	}
	tests := []struct {
		name string
		as   serverMetadata
		prm  *resourceMetadata
		ch   challenge
		want bool
	}{
		{"DPoP challenge", es256, nil, challenged(`DPoP resource_metadata="https://x/prm"`), true},
		{"Bearer and DPoP challenges", es256, nil, challenged(`Bearer realm="x", DPoP algs="ES256 PS256"`), true},
		{"Bearer challenge only", es256, nil, challenged(`Bearer resource_metadata="https://x/prm"`), false},
		{"DPoP challenge for other algorithms", es256, nil, challenged(`DPoP algs="PS256"`), false},
		{"resource metadata lists ES256", es256, &resourceMetadata{DPoPSigningAlgValuesSupported: []string{"ES256"}}, challenged(`Bearer`), true},
		{"resource metadata requires bound tokens", es256, &resourceMetadata{DPoPBoundAccessTokensRequired: true}, challenge{}, true},
		{"authorization server without ES256", serverMetadata{DPoPSigningAlgValuesSupported: []string{"PS256"}}, nil, challenged(`DPoP`), false},
		{"authorization server without DPoP", serverMetadata{}, &resourceMetadata{DPoPBoundAccessTokensRequired: true}, challenged(`DPoP`), false},
	}
	for _, tt := range tests {
		if got := useDPoP(&discovered{as: tt.as, prm: tt.prm}, tt.ch); got != tt.want {
			t.Errorf("%s: useDPoP = %v, want %v", tt.name, got, tt.want)
		}
	}
	if ch := challenged(`DPoP error="use_dpop_nonce", resource_metadata="https://x/prm"`); ch.Error != errUseDPoPNonce || ch.ResourceMetadata != "https://x/prm" {
		t.Errorf("a DPoP challenge read as %+v", ch)
	}
}
