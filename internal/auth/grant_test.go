package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// registerMachine registers a KindClientCredentials server and stores
// cred for it.
func (h *harness) registerMachine(t *testing.T, a *testAS, tweak func(*ServerAuth), cred Credential) {
	t.Helper()
	h.register(t, a, func(c *ServerAuth) {
		c.Kind = KindClientCredentials
		c.ClientID = "m2m"
		if tweak != nil {
			tweak(c)
		}
	})
	if err := h.svc.SetCredential("test", cred); err != nil {
		t.Fatal(err)
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	ec384 := ecKey(t, elliptic.P384())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		methods []string // token_endpoint_auth_methods_supported
		algs    []string // token_endpoint_auth_signing_alg_values_supported
		method  string   // configured; "" lets the credential and metadata decide
		cred    Credential
		key     crypto.Signer // the public half the server knows
		// wantAuth is how the client authenticated: "basic", "post" or
		// the assertion's alg.
		wantAuth string
	}{
		{name: "client_secret_basic", methods: []string{authBasic}, method: authBasic, cred: Credential{ClientSecret: "s3cret-basic"}, wantAuth: "basic"},
		{name: "client_secret_post when it is all the server takes", methods: []string{authPost}, cred: Credential{ClientSecret: "s3cret-post"}, wantAuth: "post"},
		{name: "basic by default when the server lists no methods", cred: Credential{ClientSecret: "s3cret-default"}, wantAuth: "basic"},
		{name: "private_key_jwt ES256", methods: []string{authKeyJWT}, algs: []string{"ES256"}, method: authKeyJWT, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, key: ec, wantAuth: "ES256"},
		{name: "private_key_jwt chosen for a key", methods: []string{authBasic, authKeyJWT}, cred: Credential{PrivateKeyPEM: pemKey(t, ec384)}, key: ec384, wantAuth: "ES384"},
		{name: "private_key_jwt RSA picks an algorithm the server lists", methods: []string{authKeyJWT}, algs: []string{"RS256"}, cred: Credential{PrivateKeyPEM: pemKey(t, rsaKey)}, key: rsaKey, wantAuth: "RS256"},
		{name: "private_key_jwt RSA prefers PS256", methods: []string{authKeyJWT}, cred: Credential{PrivateKeyPEM: pemKey(t, rsaKey)}, key: rsaKey, wantAuth: "PS256"},
		{name: "private_key_jwt Ed25519", methods: []string{authKeyJWT}, algs: []string{"EdDSA", "ES256"}, cred: Credential{PrivateKeyPEM: pemKey(t, edKey)}, key: edKey, wantAuth: "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			a.set(func(a *testAS) {
				a.authMethods = tt.methods
				a.meta = map[string]any{"grant_types_supported": []string{grantClientCredentials}}
				if tt.methods == nil {
					a.meta["token_endpoint_auth_methods_supported"] = nil
				}
				if tt.algs != nil {
					a.meta["token_endpoint_auth_signing_alg_values_supported"] = tt.algs
				}
				if tt.key != nil {
					a.keyClients["m2m"] = tt.key.Public()
				} else {
					a.preClients["m2m"] = tt.cred.ClientSecret
				}
			})
			h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
			h.registerMachine(t, a, func(c *ServerAuth) { c.TokenEndpointAuthMethod = tt.method; c.Scopes = []string{"read"} }, tt.cred)

			h.mustCall(t, a, "tools/list")
			h.mustCall(t, a, "tools/call")

			a.set(func(a *testAS) {
				if len(a.tokenForms) != 1 {
					t.Fatalf("%d token requests, want 1: the token is reused", len(a.tokenForms))
				}
				f := a.tokenForms[0]
				got := map[string]string{"grant_type": f.Get("grant_type"), "resource": f.Get("resource"), "scope": f.Get("scope")}
				want := map[string]string{"grant_type": "client_credentials", "resource": a.resourceURL(), "scope": "read"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("token request (-want +got):\n%s", diff)
				}
				auth := "basic"
				switch {
				case f.Get("client_assertion") != "":
					hd, _, err := decodeJWT(f.Get("client_assertion"))
					if err != nil {
						t.Fatal(err)
					}
					auth = hd.Alg
				case f.Get("client_secret") != "":
					auth = "post"
				}
				if auth != tt.wantAuth {
					t.Fatalf("client authenticated with %s, want %s", auth, tt.wantAuth)
				}
			})
			if n := len(h.browser.opened); n != 0 {
				t.Fatalf("%d browser windows for a machine-to-machine server", n)
			}
			st, _ := h.svc.Status("test")
			if st.State != StateSignedIn || st.Kind != KindClientCredentials || st.PolicyException {
				t.Fatalf("status %+v", st)
			}
			sess := h.storedSession(t)
			if sess == nil || sess.Client.Secret != "" || sess.RefreshToken != "" {
				t.Fatalf("stored session %+v: no secret, no refresh token", sess)
			}
		})
	}
}

func TestClientCredentialsRefusals(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	other := ecKey(t, elliptic.P256())
	tests := []struct {
		name   string
		setup  func(a *testAS)
		method string
		cred   Credential
		want   error
		// tokenRequests is how many requests reached the token endpoint.
		tokenRequests int
		state         State
	}{
		{name: "bad client secret", setup: func(a *testAS) { a.preClients["m2m"] = "right" },
			method: authBasic, cred: Credential{ClientSecret: "wrong"}, want: ErrSignInRequired, tokenRequests: 1, state: StateSignInAgain},
		{name: "assertion signed with a key the server does not know", setup: func(a *testAS) {
			a.authMethods = []string{authKeyJWT}
			a.keyClients["m2m"] = other.Public()
		}, method: authKeyJWT, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: ErrSignInRequired, tokenRequests: 1, state: StateSignInAgain},
		{name: "server does not list private_key_jwt", setup: func(a *testAS) { a.authMethods = []string{authBasic} },
			method: authKeyJWT, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: ErrAuthMethodUnsupported, state: StateSignedOut},
		{name: "server lists no auth methods, so only client_secret_basic", setup: func(a *testAS) {
			a.meta = map[string]any{"token_endpoint_auth_methods_supported": nil}
		}, method: authKeyJWT, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: ErrAuthMethodUnsupported, state: StateSignedOut},
		{name: "server takes no algorithm the key can sign", setup: func(a *testAS) {
			a.authMethods = []string{authKeyJWT}
			a.meta = map[string]any{"token_endpoint_auth_signing_alg_values_supported": []string{"RS256"}}
		}, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: ErrAuthMethodUnsupported, state: StateSignedOut},
		{name: "server does not offer the grant", setup: func(a *testAS) {
			a.meta = map[string]any{"grant_types_supported": []string{"authorization_code"}}
			a.preClients["m2m"] = "s"
		}, method: authBasic, cred: Credential{ClientSecret: "s"}, want: ErrGrantUnsupported, state: StateSignedOut},
		{name: "token issued for another resource is refused by the server", setup: func(a *testAS) {
			a.preClients["m2m"] = "s"
			a.prm = map[string]any{"resource": "https://evil.example.com/mcp"}
		}, method: authBasic, cred: Credential{ClientSecret: "s"}, want: ErrResourceMismatch, state: StateSignedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			a.set(tt.setup)
			h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
			h.registerMachine(t, a, func(c *ServerAuth) { c.TokenEndpointAuthMethod = tt.method }, tt.cred)
			changed, stop := h.svc.Subscribe()
			defer stop()
			_, err := h.call(t, a, "tools/list")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// A second call does not hammer a server that refused for good.
			h.call(t, a, "tools/list")
			if n := a.count(func(a *testAS) int { return len(a.tokenForms) }); n != tt.tokenRequests && !(tt.tokenRequests == 0 && n == 0) {
				t.Fatalf("%d token requests, want %d", n, tt.tokenRequests)
			}
			st, _ := h.svc.Status("test")
			if st.State != tt.state || st.Reason == "" {
				t.Fatalf("status %+v, want %v with a reason", st, tt.state)
			}
			if tt.state == StateSignInAgain {
				select {
				case <-changed:
				default:
					t.Fatal("subscribers were not told")
				}
			}
			for _, secret := range []string{"wrong", "right"} {
				if strings.Contains(h.logs.String(), "="+secret) || strings.Contains(err.Error(), secret) {
					t.Fatal("a client secret was logged or reported")
				}
			}
		})
	}
}

func TestClientCredentialsRenewsWithoutAPerson(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.preClients["m2m"] = "s"
		a.accessTTL = 600
	})
	h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
	h.registerMachine(t, a, nil, Credential{ClientSecret: "s"})
	h.mustCall(t, a, "tools/list")
	first := h.storedSession(t).AccessToken

	h.clock.Advance(590 * time.Second) // about to expire: a new grant before the call
	h.mustCall(t, a, "tools/list")
	second := h.storedSession(t).AccessToken
	if second == first {
		t.Fatal("the token was not renewed before expiry")
	}
	a.expireAccess() // revoked: a 401 gets a new one and the call is retried
	h.mustCall(t, a, "tools/list")
	if third := h.storedSession(t).AccessToken; third == second {
		t.Fatal("the token was not renewed after a 401")
	}
	if n := a.count(func(a *testAS) int { return len(a.tokenForms) }); n != 3 {
		t.Fatalf("%d grants, want 3", n)
	}
	if n := len(h.browser.opened); n != 0 {
		t.Fatalf("%d browser windows", n)
	}
}

func TestSetCredentialChecksTheMaterial(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec := ecKey(t, elliptic.P256())
	sec1, _ := x509.MarshalECPrivateKey(ec)
	tests := []struct {
		name   string
		kind   Kind
		method string
		alg    string
		cred   Credential
		want   string // "" accepts
	}{
		{name: "a SEC 1 EC key", kind: KindClientCredentials, method: authKeyJWT, cred: Credential{PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))}},
		{name: "not PEM", kind: KindClientCredentials, method: authKeyJWT, cred: Credential{PrivateKeyPEM: "MIIB…"}, want: "not PEM"},
		{name: "a certificate, not a key", kind: KindClientCredentials, cred: Credential{PrivateKeyPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, want: "not a private key"},
		{name: "a weak RSA key", kind: KindClientCredentials, cred: Credential{PrivateKeyPEM: pemKey(t, weak)}, want: "too weak"},
		{name: "private_key_jwt without a key", kind: KindClientCredentials, method: authKeyJWT, cred: Credential{ClientSecret: "s"}, want: "private key is required"},
		{name: "client_secret_basic without a secret", kind: KindClientCredentials, method: authBasic, cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: "client secret is required"},
		{name: "nothing at all", kind: KindClientCredentials, want: "client secret or a private key"},
		{name: "an algorithm the key cannot sign", kind: KindClientCredentials, alg: "RS256", cred: Credential{PrivateKeyPEM: pemKey(t, ec)}, want: "cannot sign RS256"},
		{name: "a secret with a newline", kind: KindClientCredentials, cred: Credential{ClientSecret: "a\nb"}, want: "control characters"},
		{name: "a browser sign-in server takes none", kind: KindOAuth, cred: Credential{ClientSecret: "s"}, want: "does not take a client credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			h := newHarness(t, nil)
			h.register(t, a, func(c *ServerAuth) {
				c.Kind, c.ClientID, c.TokenEndpointAuthMethod, c.SigningAlgorithm = tt.kind, "m2m", tt.method, tt.alg
			})
			err := h.svc.SetCredential("test", tt.cred)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := h.vault.Get(credentialKey("test")); !isNotFound(err) {
				t.Fatal("a refused credential was stored")
			}
		})
	}
}

func TestMachineKindConfigurationIsChecked(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	for name, cfg := range map[string]ServerAuth{
		"no client id":                    {Kind: KindClientCredentials},
		"public client":                   {Kind: KindClientCredentials, ClientID: "c", TokenEndpointAuthMethod: authNone},
		"unknown method":                  {Kind: KindClientCredentials, ClientID: "c", TokenEndpointAuthMethod: "tls_client_auth"},
		"cross-app without an IdP":        {Kind: KindCrossApp, ClientID: "c"},
		"cross-app with a plain-HTTP IdP": {Kind: KindCrossApp, ClientID: "c", IdP: &IdentityProvider{Issuer: "http://idp.example.com", ClientID: "x"}},
	} {
		cfg.ResourceURL = a.resourceURL()
		if err := h.svc.Register("bad", cfg); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
}

// crossAppHarness is a KindCrossApp server whose authorization server
// trusts idp, with the MCP client "xaa-client" authenticating with
// client_secret_basic.
func crossAppHarness(t *testing.T, tweak func(*Options)) (*testAS, *testIdP, *harness) {
	t.Helper()
	a := newTestAS(t)
	h := newHarness(t, tweak)
	idp := newTestIdP(t, h.clock.Now)
	a.set(func(a *testAS) {
		a.idp = idp
		a.preClients["xaa-client"] = "xaa-secret"
		a.authMethods = []string{authBasic}
		a.meta = map[string]any{"grant_types_supported": []string{grantJWTBearer}}
	})
	h.register(t, a, func(c *ServerAuth) {
		c.Kind, c.ClientID = KindCrossApp, "xaa-client"
		c.IdP = &IdentityProvider{Issuer: idp.issuer(), ClientID: idp.clientID}
	})
	if err := h.svc.SetCredential("test", Credential{ClientSecret: "xaa-secret"}); err != nil {
		t.Fatal(err)
	}
	return a, idp, h
}

func TestCrossAppAccess(t *testing.T) {
	a, idp, h := crossAppHarness(t, func(o *Options) { o.AutoSignIn = false })
	idToken := idp.idToken(t, idp.clientID, time.Hour, "")
	if err := h.svc.SetIDToken("test", idToken); err != nil {
		t.Fatal(err)
	}
	h.mustCall(t, a, "tools/list")

	idp.set(func(p *testIdP) {
		if len(p.exchanges) != 1 {
			t.Fatalf("%d token exchanges", len(p.exchanges))
		}
		f := p.exchanges[0]
		got := map[string]string{}
		for _, k := range []string{"grant_type", "requested_token_type", "subject_token_type", "audience", "resource", "client_id"} {
			got[k] = f.Get(k)
		}
		want := map[string]string{
			"grant_type": grantTokenExchange, "requested_token_type": tokenTypeIDJAG, "subject_token_type": tokenTypeIDToken,
			"audience": a.issuer(), "resource": a.resourceURL(), "client_id": idp.clientID,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("token exchange (-want +got):\n%s", diff)
		}
		if f.Get("subject_token") != idToken {
			t.Fatal("the ID token was not the subject token")
		}
	})
	a.set(func(a *testAS) {
		if len(a.tokenForms) != 1 || a.tokenForms[0].Get("grant_type") != grantJWTBearer {
			t.Fatalf("token requests %v", a.tokenForms)
		}
	})
	st, _ := h.svc.Status("test")
	if st.State != StateSignedIn || st.Kind != KindCrossApp {
		t.Fatalf("status %+v", st)
	}
	// Expiry: a new grant from the same ID token, no person needed.
	a.expireAccess()
	h.mustCall(t, a, "tools/list")
	if n := idp.count(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
	if n := len(h.browser.opened); n != 0 {
		t.Fatalf("%d browser windows", n)
	}
}

func (p *testIdP) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.exchanges)
}

func TestCrossAppRefusals(t *testing.T) {
	tests := []struct {
		name  string
		idp   func(p *testIdP)
		as    func(a *testAS)
		want  error
		grant bool // whether a jwt-bearer grant reached the authorization server
	}{
		{name: "grant for another audience", idp: func(p *testIdP) { p.jagAud = "https://other-as.example.com" }, want: ErrAudienceMismatch},
		{name: "grant for another resource", idp: func(p *testIdP) { p.jagResource = "https://other.example.com/mcp" }, want: ErrResourceMismatch},
		{name: "grant for another client", idp: func(p *testIdP) { p.jagClient = "someone-else" }, want: ErrAudienceMismatch},
		{name: "not an ID-JAG", idp: func(p *testIdP) { p.issuedType = "urn:ietf:params:oauth:token-type:access_token" }, want: errAny},
		{name: "wrong JOSE type", idp: func(p *testIdP) { p.jagTyp = "JWT" }, want: errAny},
		{name: "the IdP no longer honours the ID token", idp: func(p *testIdP) { p.refuse = true }, want: ErrSignInRequired},
		{name: "the authorization server does not offer the grant", as: func(a *testAS) {
			a.meta = map[string]any{"grant_types_supported": []string{"authorization_code"}}
		}, want: ErrGrantUnsupported},
		{name: "the authorization server refuses the client", as: func(a *testAS) { a.preClients["xaa-client"] = "other" }, want: ErrSignInRequired, grant: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, idp, h := crossAppHarness(t, func(o *Options) { o.AutoSignIn = false })
			if tt.idp != nil {
				idp.set(tt.idp)
			}
			if tt.as != nil {
				a.set(tt.as)
			}
			if err := h.svc.SetIDToken("test", idp.idToken(t, idp.clientID, time.Hour, "")); err != nil {
				t.Fatal(err)
			}
			_, err := h.call(t, a, "tools/list")
			if err == nil || (tt.want != errAny && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := a.count(func(a *testAS) int { return len(a.tokenForms) }) > 0; got != tt.grant {
				t.Fatalf("a grant reached the authorization server: %v, want %v", got, tt.grant)
			}
			if tt.want == ErrSignInRequired {
				st, _ := h.svc.Status("test")
				if st.State != StateSignInAgain {
					t.Fatalf("status %+v", st)
				}
			}
		})
	}
}

// errAny stands for any error in a table.
var errAny = errors.New("any error")

func TestSetIDTokenChecksItsClaims(t *testing.T) {
	_, idp, h := crossAppHarness(t, nil)
	other := newTestIdP(t, h.clock.Now)
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"for another client", idp.idToken(t, "someone-else", time.Hour, ""), ErrAudienceMismatch},
		{"from another IdP", other.idToken(t, idp.clientID, time.Hour, ""), ErrIssuerMismatch},
		{"expired", idp.idToken(t, idp.clientID, -time.Minute, ""), ErrSignInRequired},
		{"not a JWT", "opaque-token", errAny},
	}
	for _, tt := range tests {
		err := h.svc.SetIDToken("test", tt.tok)
		if err == nil || (tt.want != errAny && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.tok) {
			t.Errorf("%s: the error quotes the token", tt.name)
		}
	}
	if _, err := h.vault.Get(idTokenKey("test")); !isNotFound(err) {
		t.Fatal("a refused ID token was stored")
	}
}

func TestCrossAppSignsInAtTheIdP(t *testing.T) {
	a, idp, h := crossAppHarness(t, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatalf("sign-in: %v\n%s", err, h.logs)
	}
	page, code := h.browser.lastPage()
	if code != 200 || !strings.Contains(page, "Signed in to Test") {
		t.Fatalf("callback page %d %q", code, page)
	}
	idp.set(func(p *testIdP) {
		if len(p.authorizes) != 1 {
			t.Fatalf("%d IdP authorizations", len(p.authorizes))
		}
		q := p.authorizes[0]
		if q.Get("scope") != "openid" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" {
			t.Fatalf("IdP authorization request %v", q)
		}
	})
	stored, err := h.vault.Get(idTokenKey("test"))
	if err != nil {
		t.Fatalf("the ID token was not kept: %v", err)
	}
	if _, c, _ := decodeJWT(string(stored)); c.Subject != "alice" {
		t.Fatalf("stored ID token claims %+v", c)
	}
	h.mustCall(t, a, "tools/list")
	if n := len(h.browser.opened); n != 1 {
		t.Fatalf("%d browser windows, want 1: the MCP server's server shows no consent screen", n)
	}
	// Sign-out forgets the organisation sign-in and the credential too.
	if err := h.svc.SignOut(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{idTokenKey("test"), credentialKey("test"), sessionKey("test")} {
		if _, err := h.vault.Get(k); !isNotFound(err) {
			t.Errorf("%s survived sign-out", k)
		}
	}
}

// scanForSecrets fails when any file under dir or the log holds one of
// secrets, or its base64 (prefixes of 40 and 20 characters suffice).
func scanForSecrets(t *testing.T, when, dir, logs string, secrets []string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if strings.Contains(string(b), s[:min(len(s), 40)]) || strings.Contains(string(b), b64(s)[:min(len(b64(s)), 40)]) {
				t.Errorf("%s: %s holds a secret", when, p)
			}
		}
		return nil
	})
	for _, s := range secrets {
		if strings.Contains(logs, s[:min(len(s), 20)]) {
			t.Errorf("%s: the log holds a secret", when)
		}
	}
}

func TestNoClientSecretsOrKeysInFilesOrLogs(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072) // its PEM is large enough to be sealed
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pemKey(t, rsaKey)
	keyLines := strings.Split(keyPEM, "\n")

	t.Run("client credentials", func(t *testing.T) {
		a := newTestAS(t)
		a.set(func(a *testAS) {
			a.authMethods = []string{authKeyJWT}
			a.keyClients["m2m"] = rsaKey.Public()
			a.accessTTL = 600
		})
		h := newHarness(t, nil)
		h.registerMachine(t, a, nil, Credential{PrivateKeyPEM: keyPEM})
		h.mustCall(t, a, "tools/list")
		h.clock.Advance(590 * time.Second)
		h.mustCall(t, a, "tools/list") // renewed
		if sealed, _ := filepath.Glob(filepath.Join(h.dir, "*.sealed")); len(sealed) == 0 {
			t.Fatal("the key was not sealed: the test would prove nothing")
		}
		secrets := []string{keyLines[3], keyLines[10], strings.Join(keyLines[1:len(keyLines)-2], "")}
		a.set(func(a *testAS) {
			for tok := range a.access {
				secrets = append(secrets, tok)
			}
			for _, f := range a.tokenForms {
				secrets = append(secrets, f.Get("client_assertion"))
			}
		})
		scanForSecrets(t, "in use", h.dir, h.logs.String(), secrets)
		if err := h.svc.SignOut(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		scanForSecrets(t, "signed out", h.dir, h.logs.String(), secrets)
		if left, _ := filepath.Glob(filepath.Join(h.dir, "*.sealed")); len(left) != 0 {
			t.Fatalf("sign-out left %v", left)
		}
		if !strings.Contains(h.logs.String(), "client credential saved") {
			t.Fatal("nothing was logged: the scan would prove nothing")
		}
	})

	t.Run("cross-app access", func(t *testing.T) {
		a, idp, h := crossAppHarness(t, nil)
		if err := h.svc.SignIn(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		h.mustCall(t, a, "tools/list")
		idToken, _ := h.vault.Get(idTokenKey("test"))
		secrets := []string{"xaa-secret", string(idToken)}
		a.set(func(a *testAS) {
			for tok := range a.access {
				secrets = append(secrets, tok)
			}
			for _, f := range a.tokenForms {
				secrets = append(secrets, f.Get("assertion")) // the identity assertion grant
			}
		})
		idp.set(func(p *testIdP) {
			if len(p.exchanges) == 0 {
				t.Fatal("no exchange: the test would prove nothing")
			}
		})
		scanForSecrets(t, "in use", h.dir, h.logs.String(), secrets)
		if err := h.svc.SignOut(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		scanForSecrets(t, "signed out", h.dir, h.logs.String(), secrets)
	})
}
