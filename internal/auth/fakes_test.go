package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
	"github.com/zalando/go-keyring"
)

// testAS is an authorization server and a protected MCP resource on two
// httptest servers. It checks what a strict server checks — PKCE S256,
// redirect_uri, resource on every request, client authentication, single
// use of codes and rotated refresh tokens — and records what it saw.
type testAS struct {
	t   *testing.T
	as  *httptest.Server
	res *httptest.Server

	mu sync.Mutex
	// knobs, set before use
	meta          map[string]any    // overrides of the metadata document (nil value deletes)
	prm           map[string]any    // overrides of the protected resource metadata
	noPRM         bool              // serve no protected resource metadata
	prmInHeader   bool              // name the PRM URL in WWW-Authenticate
	challengeScp  string            // scope in the 401 challenge
	issParam      string            // "" correct issuer; "-" none; else this value
	denyAuthorize string            // answer authorize with this error
	accessTTL     int               // expires_in; 0 omits it
	rotate        bool              // issue a new refresh token on refresh
	tokenPad      int               // make access tokens this long
	needScope     map[string]string // JSON-RPC method → scope it needs
	authMethods   []string          // token_endpoint_auth_methods_supported
	regMethod     string            // token_endpoint_auth_method the registration answers with
	preClients    map[string]string // pre-registered client id → secret
	tokenDelay    time.Duration
	alwaysForbid  bool   // answer every authorized request 403 insufficient_scope
	tokenStatus   int    // answer token requests with this HTTP status: a broken server
	clientPrefix  string // registered client ids start with this (AWS Sign-In: an ARN)
	// keyClients are private_key_jwt clients: client id → public key.
	keyClients map[string]crypto.PublicKey
	// idp is the identity provider whose identity assertion grants the
	// jwt-bearer grant accepts.
	idp *testIdP
	// dpop makes the server advertise ES256 DPoP and bind its tokens
	// (dpop_fakes_test.go); dpopNonce, when set, is the nonce both the
	// token endpoint and the resource demand.
	dpop      bool
	dpopNonce string
	dpopState
	// workload, when set, is the key of the platform issuing workload
	// identity JWTs: the jwt-bearer grant takes those instead of
	// identity assertion grants; refuseWorkload refuses them.
	workload       *ecdsa.PublicKey
	refuseWorkload bool

	// records
	authorizes []url.Values
	registers  []map[string]any
	tokenForms []url.Values
	revoked    []string
	jtis       map[string]bool // client assertion IDs seen
	bodies     []string        // MCP request bodies that were authorized
	clients    map[string]testClient
	codes      map[string]testCode
	access     map[string][]string // access token → scopes
	refresh    map[string]testRefresh
}

type testClient struct {
	secret    string
	method    string
	redirects []string
}

type testCode struct {
	client, redirect, challenge, resource string
	scopes                                []string
}

type testRefresh struct {
	client, resource string
	scopes           []string
}

func newTestAS(t *testing.T) *testAS {
	a := &testAS{
		t: t, prmInHeader: true, accessTTL: 3600, rotate: true,
		clients: map[string]testClient{}, codes: map[string]testCode{},
		access: map[string][]string{}, refresh: map[string]testRefresh{},
		needScope: map[string]string{}, preClients: map[string]string{},
		keyClients: map[string]crypto.PublicKey{}, jtis: map[string]bool{},
		dpopState: dpopState{bound: map[string]string{}},
	}
	a.as = httptest.NewServer(http.HandlerFunc(a.serveAS))
	a.res = httptest.NewServer(http.HandlerFunc(a.serveResource))
	t.Cleanup(func() {
		a.as.Close()
		a.res.Close()
	})
	return a
}

func (a *testAS) resourceURL() string { return a.res.URL + "/mcp" }
func (a *testAS) issuer() string      { return a.as.URL }

func (a *testAS) set(f func(a *testAS)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

func (a *testAS) count(f func(a *testAS) int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return f(a)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthErr(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": code + " (test server)"})
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *testAS) metadata() map[string]any {
	m := map[string]any{
		"issuer":                                a.issuer(),
		"authorization_endpoint":                a.issuer() + "/authorize",
		"token_endpoint":                        a.issuer() + "/token",
		"registration_endpoint":                 a.issuer() + "/register",
		"revocation_endpoint":                   a.issuer() + "/revoke",
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": a.authMethods,
		"scopes_supported":                      []string{"read", "write", "admin"},
	}
	if a.authMethods == nil {
		m["token_endpoint_auth_methods_supported"] = []string{"none", "client_secret_basic"}
	}
	if a.dpop {
		m["dpop_signing_alg_values_supported"] = []string{"ES256"}
	}
	for k, v := range a.meta {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func (a *testAS) serveAS(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// AWS Sign-In serves its endpoints under /v1, and only there.
	path := r.URL.Path
	if a.clientPrefix != "" && strings.HasPrefix(path, "/v1/") {
		path = strings.TrimPrefix(path, "/v1")
	} else if a.clientPrefix != "" && path != "/.well-known/oauth-authorization-server" {
		path = "/not-served"
	}
	switch path {
	case "/.well-known/oauth-authorization-server":
		writeJSON(w, 200, a.metadata())
	case "/authorize":
		a.authorize(w, r)
	case "/token":
		a.token(w, r)
	case "/register":
		a.register(w, r)
	case "/revoke":
		r.ParseForm()
		a.revoked = append(a.revoked, r.PostForm.Get("token"))
		delete(a.access, r.PostForm.Get("token"))
		delete(a.refresh, r.PostForm.Get("token"))
		w.WriteHeader(200)
	default:
		http.NotFound(w, r)
	}
}

func (a *testAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.authorizes = append(a.authorizes, q)
	cid, redirect := q.Get("client_id"), q.Get("redirect_uri")
	c, known := a.clients[cid]
	if _, pre := a.preClients[cid]; pre {
		known, c.redirects = true, []string{redirect}
	}
	if strings.HasPrefix(cid, "https://") { // a Client ID Metadata Document URL
		known, c.redirects = true, []string{redirect}
	}
	if !known || !slices.Contains(c.redirects, redirect) {
		http.Error(w, "unknown client or redirect_uri", 400) // never redirect then
		return
	}
	back, _ := url.Parse(redirect)
	bq := url.Values{"state": {q.Get("state")}}
	switch a.issParam {
	case "":
		bq.Set("iss", a.issuer())
	case "-":
	default:
		bq.Set("iss", a.issParam)
	}
	switch {
	case a.denyAuthorize != "":
		bq.Set("error", a.denyAuthorize)
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("response_type") != "code":
		bq.Set("error", "invalid_request")
	case q.Get("resource") != a.resourceURL():
		bq.Set("error", "invalid_target")
	default:
		code := randHex(16)
		a.codes[code] = testCode{client: cid, redirect: redirect, challenge: q.Get("code_challenge"), resource: q.Get("resource"), scopes: strings.Fields(q.Get("scope"))}
		bq.Set("code", code)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// clientAuth identifies the client of a token or revocation request.
func (a *testAS) clientAuth(r *http.Request) (string, bool) {
	if r.PostForm.Get("client_assertion_type") != "" {
		return a.checkClientAssertion(r.PostForm)
	}
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if s, pre := a.preClients[id]; pre {
			return id, s == secret
		}
		c, ok := a.clients[id]
		return id, ok && c.secret == secret && c.method == authBasic
	}
	id := r.PostForm.Get("client_id")
	if s, pre := a.preClients[id]; pre {
		return id, s == r.PostForm.Get("client_secret")
	}
	if strings.HasPrefix(id, "https://") {
		return id, true
	}
	c, ok := a.clients[id]
	if !ok {
		return id, false
	}
	switch c.method {
	case authNone:
		return id, true
	case authPost:
		return id, c.secret == r.PostForm.Get("client_secret")
	}
	return id, false
}

func (a *testAS) token(w http.ResponseWriter, r *http.Request) {
	if a.tokenDelay > 0 {
		a.mu.Unlock()
		time.Sleep(a.tokenDelay)
		a.mu.Lock()
	}
	r.ParseForm()
	f := r.PostForm
	a.tokenForms = append(a.tokenForms, f)
	if a.tokenStatus != 0 {
		http.Error(w, "broken", a.tokenStatus)
		return
	}
	cid, ok := a.clientAuth(r)
	if !ok {
		oauthErr(w, 401, "invalid_client")
		return
	}
	jkt := ""
	if a.dpop {
		if jkt, ok = a.tokenProof(w, r); !ok {
			return
		}
	}
	var scopes []string
	var resource string
	switch f.Get("grant_type") {
	case "authorization_code":
		c, ok := a.codes[f.Get("code")]
		delete(a.codes, f.Get("code"))
		if !ok || c.client != cid || c.redirect != f.Get("redirect_uri") {
			oauthErr(w, 400, "invalid_grant")
			return
		}
		if s256(f.Get("code_verifier")) != c.challenge {
			oauthErr(w, 400, "invalid_grant") // PKCE verifier mismatch
			return
		}
		scopes, resource = c.scopes, c.resource
	case "refresh_token":
		rt, ok := a.refresh[f.Get("refresh_token")]
		if !ok || rt.client != cid {
			oauthErr(w, 400, "invalid_grant")
			return
		}
		if a.rotate {
			delete(a.refresh, f.Get("refresh_token"))
		}
		scopes, resource = rt.scopes, rt.resource
	case grantClientCredentials:
		if _, known := a.preClients[cid]; !known && a.keyClients[cid] == nil {
			oauthErr(w, 400, "unauthorized_client")
			return
		}
		scopes, resource = strings.Fields(f.Get("scope")), a.resourceURL()
	case grantJWTBearer:
		if a.workload != nil {
			_, c, err := verifyJWS(f.Get("assertion"), a.workload)
			if err != nil || c["aud"] != a.issuer() || a.refuseWorkload {
				oauthErr(w, 400, "invalid_grant")
				return
			}
			scopes, resource = strings.Fields(f.Get("scope")), a.resourceURL()
			break
		}
		if a.idp == nil {
			oauthErr(w, 400, "unsupported_grant_type")
			return
		}
		h, c, err := verifyJWS(f.Get("assertion"), &a.idp.key.PublicKey)
		if err != nil || h["typ"] != typIDJAG || c["aud"] != a.issuer() || c["client_id"] != cid || c["resource"] != a.resourceURL() {
			oauthErr(w, 400, "invalid_grant")
			return
		}
		scopes, resource = strings.Fields(f.Get("scope")), a.resourceURL()
	default:
		oauthErr(w, 400, "unsupported_grant_type")
		return
	}
	if f.Get("resource") != resource {
		oauthErr(w, 400, "invalid_target")
		return
	}
	access := "at-" + randHex(16)
	if a.tokenPad > len(access) {
		access += strings.Repeat("x", a.tokenPad-len(access))
	}
	a.access[access] = scopes
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "scope": strings.Join(scopes, " ")}
	if jkt != "" {
		a.bound[access] = jkt
		resp["token_type"] = "DPoP"
	}
	if a.accessTTL > 0 {
		resp["expires_in"] = a.accessTTL
	}
	if g := f.Get("grant_type"); g == "authorization_code" || g == "refresh_token" && a.rotate {
		rt := "rt-" + randHex(16)
		a.refresh[rt] = testRefresh{client: cid, resource: resource, scopes: scopes}
		resp["refresh_token"] = rt
	}
	writeJSON(w, 200, resp)
}

func (a *testAS) register(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		oauthErr(w, 400, "invalid_client_metadata")
		return
	}
	a.registers = append(a.registers, m)
	var redirects []string
	for _, u := range m["redirect_uris"].([]any) {
		redirects = append(redirects, u.(string))
	}
	method, _ := m["token_endpoint_auth_method"].(string)
	if a.regMethod != "" {
		method = a.regMethod
	}
	c := testClient{method: method, redirects: redirects}
	id := "client-" + randHex(4)
	if a.clientPrefix != "" {
		id = a.clientPrefix + randHex(16)
	}
	resp := map[string]any{"client_id": id, "redirect_uris": redirects, "token_endpoint_auth_method": method}
	if method != authNone {
		c.secret = "secret-" + randHex(8)
		resp["client_secret"] = c.secret
	}
	a.clients[id] = c
	writeJSON(w, 201, resp)
}

func (a *testAS) serveResource(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prmPath := "/.well-known/oauth-protected-resource/mcp"
	switch {
	case r.URL.Path == prmPath && !a.noPRM:
		m := map[string]any{
			"resource":              a.resourceURL(),
			"authorization_servers": []string{a.issuer()},
			"scopes_supported":      []string{"read", "write"},
		}
		for k, v := range a.prm {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		writeJSON(w, 200, m)
		return
	case r.URL.Path != "/mcp":
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
	}
	json.Unmarshal(body, &msg)
	challenge := `Bearer error="invalid_token"`
	if a.prmInHeader && !a.noPRM {
		challenge += `, resource_metadata="` + a.res.URL + prmPath + `"`
	}
	if a.challengeScp != "" {
		challenge += `, scope="` + a.challengeScp + `"`
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if a.dpop {
		if tok, ok = a.resourceProof(w, r); !ok {
			return
		}
	}
	scopes, valid := a.access[tok]
	if !ok || !valid {
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if a.alwaysForbid {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+a.challengeScp+`"`)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if need := a.needScope[msg.Method]; need != "" && !slices.Contains(scopes, need) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+need+`"`)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	a.bodies = append(a.bodies, string(body))
	writeJSON(w, 200, map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{"ok": true}})
}

// expireAccess makes every access token invalid, as a server does when
// tokens expire or are revoked.
func (a *testAS) expireAccess() {
	a.set(func(a *testAS) { a.access = map[string][]string{} })
}

// memKeyring is an in-memory keychain.
type memKeyring struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *memKeyring) Get(s, u string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[s+"/"+u]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *memKeyring) Set(s, u, p string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[s+"/"+u] = p
	return nil
}

func (k *memKeyring) Delete(s, u string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[s+"/"+u]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, s+"/"+u)
	return nil
}

// browser is the scripted person: it follows the authorization redirect
// to the callback and keeps the page it got.
type browser struct {
	mu     sync.Mutex
	opened []*url.URL
	pages  []string
	codes  []int
	wg     sync.WaitGroup
	// tamper, if set, changes the redirect before it is followed.
	tamper func(*url.URL)
	// idle makes the browser open nothing (the person walked away).
	idle bool
}

func (b *browser) open(u *url.URL) error {
	b.mu.Lock()
	b.opened = append(b.opened, u)
	idle := b.idle
	b.mu.Unlock()
	if idle {
		return nil
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		c := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if b.tamper != nil && req.URL.Path == "/callback" {
				b.tamper(req.URL)
			}
			return nil
		}}
		resp, err := c.Get(u.String())
		if err != nil {
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.mu.Lock()
		b.pages = append(b.pages, string(body))
		b.codes = append(b.codes, resp.StatusCode)
		b.mu.Unlock()
	}()
	return nil
}

func (b *browser) lastPage() (string, int) {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pages) == 0 {
		return "", 0
	}
	return b.pages[len(b.pages)-1], b.codes[len(b.codes)-1]
}

// harness is a Service on a memory keychain and a temporary data
// directory, with a scripted browser, a settable clock and a log buffer.
type harness struct {
	svc     *Service
	vault   *vault.Vault
	kr      *memKeyring
	dir     string
	browser *browser
	clock   *clocktest.Clock
	logs    *testenv.LockedBuffer
}

func newHarness(t *testing.T, tweak func(*Options)) *harness {
	h := &harness{
		kr:      &memKeyring{m: map[string]string{}},
		dir:     t.TempDir(),
		browser: &browser{},
		clock:   clocktest.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)),
		logs:    &testenv.LockedBuffer{},
	}
	h.vault = vault.Open(vault.Options{Keyring: h.kr, Dir: h.dir})
	o := Options{
		Vault:         h.vault,
		OpenURL:       h.browser.open,
		Logger:        slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           h.clock.Now,
		SignInTimeout: 10 * time.Second,
		AutoSignIn:    true,
	}
	if tweak != nil {
		tweak(&o)
	}
	h.svc = New(o)
	t.Cleanup(func() {
		h.svc.Close()
		h.browser.wg.Wait()
	})
	return h
}

func (h *harness) register(t *testing.T, a *testAS, tweak func(*ServerAuth)) {
	t.Helper()
	cfg := ServerAuth{Kind: KindOAuth, Name: "Test", ResourceURL: a.resourceURL()}
	if tweak != nil {
		tweak(&cfg)
	}
	if err := h.svc.Register("test", cfg); err != nil {
		t.Fatal(err)
	}
}

// call POSTs a JSON-RPC request through the server's client.
func (h *harness) call(t *testing.T, a *testAS, method string) (*http.Response, error) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `"}`
	req, _ := http.NewRequest(http.MethodPost, a.resourceURL(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.svc.Client("test").Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

// mustCall is call that must get a 200.
func (h *harness) mustCall(t *testing.T, a *testAS, method string) {
	t.Helper()
	resp, err := h.call(t, a, method)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
}

func (h *harness) storedSession(t *testing.T) *session {
	t.Helper()
	b, err := h.vault.Get(sessionKey("test"))
	if err != nil {
		return nil
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// b64 is the standard base64 of s, to look for encoded leaks.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
