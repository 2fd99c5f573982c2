// Package awstest has stand-ins for AWS that tests run in-process, so no
// test reaches AWS: IAM Identity Center's OIDC service and access portal
// (IdentityCenter), and a SigV4 check for an MCP endpoint (Verifier) that
// recomputes each request's signature with the AWS SDK's signer and
// rejects a changed body, a stale date, a wrong service or Region, an
// unknown key or an expired one.
package awstest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/countersign/countersign/internal/clocktest"
)

// OpenInBrowser is an OpenURL for tests: it fetches the sign-in page in
// the background, as the person's browser would, and the stand-in signs
// in at once.
func OpenInBrowser(u *url.URL) error {
	go func() {
		if resp, err := http.Get(u.String()); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return nil
}

// Account is an account in the stand-in portal, with its roles.
type Account struct {
	ID, Name string
	Roles    []string
}

// Issued is a set of role credentials the portal handed out.
type Issued struct {
	AccountID, Role                            string
	AccessKeyID, SecretAccessKey, SessionToken string
	Expires                                    time.Time
}

// IdentityCenter stands in for IAM Identity Center: OIDC (RegisterClient,
// the browser's authorize page, CreateToken with PKCE and refresh) and the
// access portal (ListAccounts, ListAccountRoles, GetRoleCredentials).
type IdentityCenter struct {
	*httptest.Server
	Clock    *clocktest.Clock
	Accounts []Account
	// TokenLife and CredentialLife are how long portal tokens and role
	// credentials last.
	TokenLife, CredentialLife time.Duration

	mu        sync.Mutex
	clients   map[string]client // by client id
	codes     map[string]grant  // authorization codes, used once
	tokens    map[string]time.Time
	refreshes map[string]string // refresh token → client id
	issued    []Issued
	// Registrations and Refreshes count calls, for tests.
	Registrations, TokenRefreshes int
}

type client struct {
	secret    string
	grants    []string
	redirects []string
	scopes    []string
	issuer    string
}

type grant struct {
	clientID, redirect, challenge string
}

// NewIdentityCenter starts the stand-in.
func NewIdentityCenter(clock *clocktest.Clock, accounts ...Account) *IdentityCenter {
	ic := &IdentityCenter{
		Clock: clock, Accounts: accounts, TokenLife: time.Hour, CredentialLife: 15 * time.Minute,
		clients: map[string]client{}, codes: map[string]grant{}, tokens: map[string]time.Time{}, refreshes: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /client/register", ic.register)
	mux.HandleFunc("GET /authorize", ic.authorize)
	mux.HandleFunc("POST /token", ic.token)
	mux.HandleFunc("GET /assignment/accounts", ic.accounts)
	mux.HandleFunc("GET /assignment/roles", ic.roles)
	mux.HandleFunc("GET /federation/credentials", ic.credentials)
	ic.Server = httptest.NewServer(mux)
	return ic
}

// Issued returns every set of role credentials handed out, oldest first.
func (ic *IdentityCenter) Issued() []Issued {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return append([]Issued(nil), ic.issued...)
}

// Lookup finds issued credentials by access key ID.
func (ic *IdentityCenter) Lookup(akid string) (Issued, bool) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for _, c := range ic.issued {
		if c.AccessKeyID == akid {
			return c, true
		}
	}
	return Issued{}, false
}

func random(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// awsError answers as AWS's REST-JSON services do.
func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": typ, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (ic *IdentityCenter) register(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientName   string   `json:"clientName"`
		ClientType   string   `json:"clientType"`
		GrantTypes   []string `json:"grantTypes"`
		RedirectUris []string `json:"redirectUris"`
		IssuerURL    string   `json:"issuerUrl"`
		Scopes       []string `json:"scopes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ClientName == "" || in.ClientType != "public" {
		awsError(w, 400, "InvalidClientMetadataException", "clientName and clientType public are required")
		return
	}
	for _, u := range in.RedirectUris {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "http" || pu.Hostname() != "127.0.0.1" {
			awsError(w, 400, "InvalidRedirectUriException", "redirect URIs must be loopback")
			return
		}
	}
	id, secret := random("client-", 8), random("secret-", 16)
	now := ic.Clock.Now()
	ic.mu.Lock()
	ic.clients[id] = client{secret: secret, grants: in.GrantTypes, redirects: in.RedirectUris, scopes: in.Scopes, issuer: in.IssuerURL}
	ic.Registrations++
	ic.mu.Unlock()
	writeJSON(w, map[string]any{
		"clientId": id, "clientSecret": secret, "clientIdIssuedAt": now.Unix(),
		"clientSecretExpiresAt": now.Add(90 * 24 * time.Hour).Unix(),
		"authorizationEndpoint": ic.URL + "/authorize", "tokenEndpoint": ic.URL + "/token",
	})
}

// authorize is the page the person's browser opens: the stand-in signs
// the person in at once and redirects back with a code.
func (ic *IdentityCenter) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ic.mu.Lock()
	c, ok := ic.clients[q.Get("client_id")]
	ic.mu.Unlock()
	redirect := q.Get("redirect_uri")
	switch {
	case !ok:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case !contains(c.redirects, redirect):
		http.Error(w, "redirect_uri was not registered", http.StatusBadRequest)
		return
	case !contains(c.grants, "authorization_code"):
		http.Error(w, "client may not use the authorization code grant", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43:
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	}
	code := random("code-", 8)
	ic.mu.Lock()
	ic.codes[code] = grant{clientID: q.Get("client_id"), redirect: redirect, challenge: q.Get("code_challenge")}
	ic.mu.Unlock()
	http.Redirect(w, r, redirect+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (ic *IdentityCenter) token(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		GrantType    string `json:"grantType"`
		Code         string `json:"code"`
		CodeVerifier string `json:"codeVerifier"`
		RedirectURI  string `json:"redirectUri"`
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsError(w, 400, "InvalidRequestException", "bad body")
		return
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	c, ok := ic.clients[in.ClientID]
	if !ok || c.secret != in.ClientSecret {
		awsError(w, 401, "InvalidClientException", "unknown client")
		return
	}
	if !contains(c.grants, in.GrantType) {
		awsError(w, 400, "UnauthorizedClientException", "grant type not registered")
		return
	}
	switch in.GrantType {
	case "authorization_code":
		g, ok := ic.codes[in.Code]
		delete(ic.codes, in.Code)
		sum := sha256.Sum256([]byte(in.CodeVerifier))
		if !ok || g.clientID != in.ClientID || g.redirect != in.RedirectURI ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			awsError(w, 400, "InvalidGrantException", "the code, redirect URI or code verifier does not match")
			return
		}
	case "refresh_token":
		if ic.refreshes[in.RefreshToken] != in.ClientID {
			awsError(w, 400, "InvalidGrantException", "unknown refresh token")
			return
		}
		delete(ic.refreshes, in.RefreshToken) // rotated
		ic.TokenRefreshes++
	default:
		awsError(w, 400, "UnsupportedGrantTypeException", in.GrantType)
		return
	}
	access, refresh := random("aoa-", 16), random("aor-", 16)
	ic.tokens[access] = ic.Clock.Now().Add(ic.TokenLife)
	ic.refreshes[refresh] = in.ClientID
	writeJSON(w, map[string]any{"accessToken": access, "tokenType": "Bearer", "expiresIn": int(ic.TokenLife / time.Second), "refreshToken": refresh})
}

// bearer checks the portal token the SDK sends in x-amz-sso_bearer_token.
func (ic *IdentityCenter) bearer(w http.ResponseWriter, r *http.Request) bool {
	tok := r.Header.Get("X-Amz-Sso_bearer_token")
	ic.mu.Lock()
	exp, ok := ic.tokens[tok]
	ic.mu.Unlock()
	if !ok || !ic.Clock.Now().Before(exp) {
		awsError(w, 401, "UnauthorizedException", "session token not found or invalid")
		return false
	}
	return true
}

func (ic *IdentityCenter) account(id string) (Account, bool) {
	for _, a := range ic.Accounts {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

func (ic *IdentityCenter) accounts(w http.ResponseWriter, r *http.Request) {
	if !ic.bearer(w, r) {
		return
	}
	// One account a page, so paging is exercised.
	i := 0
	fmt.Sscan(r.URL.Query().Get("next_token"), &i)
	out := map[string]any{"accountList": []any{}}
	if i < len(ic.Accounts) {
		a := ic.Accounts[i]
		out["accountList"] = []any{map[string]string{"accountId": a.ID, "accountName": a.Name, "emailAddress": strings.ToLower(a.Name) + "@example.org"}}
		if i+1 < len(ic.Accounts) {
			out["nextToken"] = fmt.Sprint(i + 1)
		}
	}
	writeJSON(w, out)
}

func (ic *IdentityCenter) roles(w http.ResponseWriter, r *http.Request) {
	if !ic.bearer(w, r) {
		return
	}
	a, ok := ic.account(r.URL.Query().Get("account_id"))
	if !ok {
		awsError(w, 404, "ResourceNotFoundException", "no such account")
		return
	}
	var list []any
	for _, role := range a.Roles {
		list = append(list, map[string]string{"accountId": a.ID, "roleName": role})
	}
	writeJSON(w, map[string]any{"roleList": list})
}

func (ic *IdentityCenter) credentials(w http.ResponseWriter, r *http.Request) {
	if !ic.bearer(w, r) {
		return
	}
	q := r.URL.Query()
	a, ok := ic.account(q.Get("account_id"))
	if !ok || !contains(a.Roles, q.Get("role_name")) {
		awsError(w, 403, "ForbiddenException", "no access to that role")
		return
	}
	c := Issued{
		AccountID: a.ID, Role: q.Get("role_name"),
		AccessKeyID: "ASIA" + strings.ToUpper(random("", 8)), SecretAccessKey: random("sk", 20),
		SessionToken: random("IQoJb3JpZ2luX2Vj", 40), Expires: ic.Clock.Now().Add(ic.CredentialLife),
	}
	ic.mu.Lock()
	ic.issued = append(ic.issued, c)
	ic.mu.Unlock()
	writeJSON(w, map[string]any{"roleCredentials": map[string]any{
		"accessKeyId": c.AccessKeyID, "secretAccessKey": c.SecretAccessKey, "sessionToken": c.SessionToken,
		"expiration": c.Expires.UnixMilli(),
	}})
}

// Verifier checks SigV4 signatures as AWS would, independently of the
// signer under test: it rebuilds the request from the signed headers and
// the body received and signs it again with the SDK's signer.
type Verifier struct {
	Service, Region string
	Clock           *clocktest.Clock
	// Lookup finds the credentials an access key belongs to.
	Lookup func(akid string) (Issued, bool)
	// Skew is how far the signing time may be from the clock; 0 means 5 minutes.
	Skew time.Duration
}

// Errors the verifier reports.
var (
	ErrUnsigned     = errors.New("the request is not signed")
	ErrStale        = errors.New("the signature's date is too far from now")
	ErrWrongScope   = errors.New("the signature is for another service or Region")
	ErrUnknownKey   = errors.New("the access key is not known")
	ErrExpiredKey   = errors.New("the credentials have expired")
	ErrBadToken     = errors.New("the session token does not belong to the access key")
	ErrBadSignature = errors.New("the signature does not match the request")
)

// Verify checks r, whose body has been read into body.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	authz := r.Header.Get("Authorization")
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(authz, alg) {
		return ErrUnsigned
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(authz, alg), ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = val
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return ErrUnsigned
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return ErrUnsigned
	}
	skew := v.Skew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	now := v.Clock.Now()
	if d := now.Sub(when); d > skew || d < -skew {
		return ErrStale
	}
	if cred[1] != when.Format("20060102") || cred[2] != v.Region || cred[3] != v.Service {
		return ErrWrongScope
	}
	issued, ok := v.Lookup(cred[0])
	if !ok {
		return ErrUnknownKey
	}
	if !now.Before(issued.Expires) {
		return ErrExpiredKey
	}
	if r.Header.Get("X-Amz-Security-Token") != issued.SessionToken {
		return ErrBadToken
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return ErrBadSignature
	}
	c, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return ErrBadSignature
	}
	c.Host = r.Host
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = int64(len(body))
		default:
			c.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: issued.AccessKeyID, SecretAccessKey: issued.SecretAccessKey, SessionToken: issued.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), v.Service, v.Region, when); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	_, want, _ := strings.Cut(c.Header.Get("Authorization"), "Signature=")
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return ErrBadSignature
	}
	return nil
}

// Handler wraps next: a request whose signature fails is answered 403
// with the reason, as AWS does, and never reaches next. Rejections are
// counted by reason.
func (v *Verifier) Handler(next http.Handler, rejected func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := v.Verify(r, body); err != nil {
			if rejected != nil {
				rejected(err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}
