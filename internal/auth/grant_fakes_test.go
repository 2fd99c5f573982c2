package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifyJWS checks a compact JWS's signature with pub, independently of
// the code under test, and returns its header and claims.
func verifyJWS(tok string, pub crypto.PublicKey) (map[string]any, map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not a JWS")
	}
	var h, c map[string]any
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3, json.Unmarshal(hb, &h), json.Unmarshal(cb, &c)); err != nil {
		return nil, nil, err
	}
	input := []byte(parts[0] + "." + parts[1])
	alg, _ := h["alg"].(string)
	if alg == "EdDSA" {
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, input, sig) {
			return nil, nil, errors.New("bad EdDSA signature")
		}
		return h, c, nil
	}
	if len(alg) != 5 {
		return nil, nil, errors.New("unknown alg")
	}
	hf := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
	if hf == 0 {
		return nil, nil, errors.New("unknown alg")
	}
	hh := hf.New()
	hh.Write(input)
	digest := hh.Sum(nil)
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		ok = alg[:2] == "ES" && ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			ok = rsa.VerifyPKCS1v15(k, hf, digest, sig) == nil
		case "PS":
			ok = rsa.VerifyPSS(k, hf, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	}
	if !ok {
		return nil, nil, errors.New("bad signature")
	}
	return h, c, nil
}

// checkClientAssertion authenticates a private_key_jwt client the way a
// strict server does (RFC 7523 §3, rfc7523bis): a known key's signature,
// iss and sub the client, aud the issuer identifier alone, a short
// lifetime and a fresh jti.
func (a *testAS) checkClientAssertion(f url.Values) (string, bool) {
	if f.Get("client_assertion_type") != clientAssertionType {
		return "", false
	}
	tok := f.Get("client_assertion")
	_, unverified, err := decodeJWT(tok)
	if err != nil {
		return "", false
	}
	id := unverified.Issuer
	pub := a.keyClients[id]
	if pub == nil {
		return id, false
	}
	_, c, err := verifyJWS(tok, pub)
	if err != nil {
		return id, false
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	jti, _ := c["jti"].(string)
	if c["sub"] != id || c["aud"] != a.issuer() || exp <= iat || exp-iat > 300 || jti == "" || a.jtis[jti] {
		return id, false
	}
	if cid := f.Get("client_id"); cid != "" && cid != id {
		return id, false
	}
	a.jtis[jti] = true
	return id, true
}

// pemKey is key as a PKCS #8 PEM.
func pemKey(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testIdP is an organisation's identity provider: OpenID Connect sign-in
// (PKCE S256, nonce) and RFC 8693 token exchange of its ID tokens for
// identity assertion grants, checked as strictly as a real one.
type testIdP struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	clientID string
	now      func() time.Time

	mu sync.Mutex
	// knobs
	jagAud, jagResource, jagTyp string // override the grant's claims
	jagClient                   string // client_id claim; "xaa-client" unless set
	issuedType                  string // override issued_token_type
	refuse                      bool   // answer token exchange invalid_grant
	// records
	authorizes []url.Values
	exchanges  []url.Values
	codes      map[string]url.Values // code → its authorization request
}

func newTestIdP(t *testing.T, now func() time.Time) *testIdP {
	p := &testIdP{key: ecKey(t, elliptic.P256()), clientID: "idp-client", now: now, codes: map[string]url.Values{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testIdP) issuer() string { return p.srv.URL }

func (p *testIdP) set(f func(p *testIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// idToken is an ID token the IdP signed, for aud, valid for ttl.
func (p *testIdP) idToken(t *testing.T, aud string, ttl time.Duration, nonce string) string {
	t.Helper()
	claims := map[string]any{"iss": p.issuer(), "sub": "alice", "aud": aud, "iat": p.now().Unix(), "exp": p.now().Add(ttl).Unix()}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	tok, err := signJWT(p.key, "ES256", "", "JWT", claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (p *testIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, 200, map[string]any{
			"issuer":                           p.issuer(),
			"authorization_endpoint":           p.issuer() + "/authorize",
			"token_endpoint":                   p.issuer() + "/token",
			"code_challenge_methods_supported": []string{"S256"},
			"grant_types_supported":            []string{"authorization_code", grantTokenExchange},
		})
	case "/authorize":
		q := r.URL.Query()
		p.authorizes = append(p.authorizes, q)
		back, _ := url.Parse(q.Get("redirect_uri"))
		if q.Get("client_id") != p.clientID || back == nil || back.Hostname() != "127.0.0.1" {
			http.Error(w, "unknown client", 400)
			return
		}
		code := randHex(8)
		p.codes[code] = q
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	case "/token":
		r.ParseForm()
		f := r.PostForm
		if f.Get("client_id") != p.clientID {
			oauthErr(w, 401, "invalid_client")
			return
		}
		switch f.Get("grant_type") {
		case "authorization_code":
			q, ok := p.codes[f.Get("code")]
			delete(p.codes, f.Get("code"))
			if !ok || s256(f.Get("code_verifier")) != q.Get("code_challenge") || f.Get("redirect_uri") != q.Get("redirect_uri") {
				oauthErr(w, 400, "invalid_grant")
				return
			}
			tok, _ := signJWT(p.key, "ES256", "", "JWT", map[string]any{
				"iss": p.issuer(), "sub": "alice", "aud": p.clientID, "nonce": q.Get("nonce"),
				"iat": p.now().Unix(), "exp": p.now().Add(time.Hour).Unix(),
			})
			writeJSON(w, 200, map[string]any{"access_token": "idp-at-" + randHex(8), "token_type": "Bearer", "id_token": tok, "expires_in": 3600})
		case grantTokenExchange:
			p.exchange(w, f)
		default:
			oauthErr(w, 400, "unsupported_grant_type")
		}
	default:
		http.NotFound(w, r)
	}
}

func (p *testIdP) exchange(w http.ResponseWriter, f url.Values) {
	p.exchanges = append(p.exchanges, f)
	if f.Get("subject_token_type") != tokenTypeIDToken || f.Get("requested_token_type") != tokenTypeIDJAG || f.Get("audience") == "" || f.Get("resource") == "" {
		oauthErr(w, 400, "invalid_request")
		return
	}
	_, c, err := verifyJWS(f.Get("subject_token"), &p.key.PublicKey)
	if err != nil || p.refuse || c["iss"] != p.issuer() || c["aud"] != p.clientID {
		oauthErr(w, 400, "invalid_grant")
		return
	}
	pick := func(override, v string) string {
		if override != "" {
			return override
		}
		return v
	}
	claims := map[string]any{
		"iss": p.issuer(), "sub": c["sub"], "aud": pick(p.jagAud, f.Get("audience")),
		"resource": pick(p.jagResource, f.Get("resource")), "client_id": pick(p.jagClient, "xaa-client"),
		"iat": p.now().Unix(), "exp": p.now().Add(5 * time.Minute).Unix(), "jti": randHex(8),
	}
	jag, _ := signJWT(p.key, "ES256", "", pick(p.jagTyp, typIDJAG), claims)
	writeJSON(w, 200, map[string]any{"access_token": jag, "issued_token_type": pick(p.issuedType, tokenTypeIDJAG), "token_type": "N_A", "expires_in": 300})
}

// handlerTransport serves requests in memory with the fake servers'
// handlers, so tests inside a synctest bubble touch no network.
type handlerTransport struct{ a *testAS }

func (h handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.URL.Host == strings.TrimPrefix(h.a.as.URL, "http://") {
		h.a.serveAS(rec, r)
	} else {
		h.a.serveResource(rec, r)
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
