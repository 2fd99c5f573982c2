package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Token endpoint client authentication methods (RFC 7591 §2).
const (
	authNone  = "none"
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	// authKeyJWT is RFC 7523 §2.2 client authentication with a JWT the
	// client signs with its private key.
	authKeyJWT = "private_key_jwt"
)

// clientAssertionType is the client_assertion_type of private_key_jwt.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// client is an OAuth client identity at one authorization server.
type client struct {
	ID         string `json:"client_id"`
	Secret     string `json:"client_secret,omitempty"`
	AuthMethod string `json:"auth_method"`
	// RedirectURI is the loopback redirect URI registered with dynamic
	// registration, reused with the client.
	RedirectURI string `json:"redirect_uri,omitempty"`
	Issuer      string `json:"issuer"`
	Source      string `json:"source"` // "preregistered", "cimd", "dcr", "machine"
	// Alg is the JWS algorithm of private_key_jwt assertions.
	Alg string `json:"alg,omitempty"`
	// KeyID is the kid header of private_key_jwt assertions.
	KeyID string `json:"kid,omitempty"`

	// key signs private_key_jwt assertions. It comes from the vault for
	// each use and is never serialised.
	key crypto.Signer
	// dpop, when set, signs a DPoP proof for each token request, which
	// then asks for a DPoP-bound token. Never serialised either.
	dpop *dpopKey
}

// session is a signed-in server's tokens and what refreshing and revoking
// them needs. It is stored in the vault as JSON, never anywhere else.
type session struct {
	AccessToken        string    `json:"access_token"`
	RefreshToken       string    `json:"refresh_token,omitempty"`
	Expiry             time.Time `json:"expiry,omitzero"`
	IssuedAt           time.Time `json:"issued_at"`
	Scopes             []string  `json:"scopes,omitempty"`
	Resource           string    `json:"resource"`
	Issuer             string    `json:"issuer"`
	TokenEndpoint      string    `json:"token_endpoint"`
	RevocationEndpoint string    `json:"revocation_endpoint,omitempty"`
	Client             client    `json:"client"`
	// DPoP is set when the access token is DPoP-bound: it is sent with
	// the DPoP scheme and a proof signed with the server's DPoP key, and
	// refreshing it needs a proof too.
	DPoP bool `json:"dpop,omitempty"`
}

// tokenResponse is a token endpoint's answer (RFC 6749 §5.1, §5.2), with
// the fields of token exchange (RFC 8693 §2.2.1) and OpenID Connect.
type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	RefreshToken     string          `json:"refresh_token"`
	Scope            string          `json:"scope"`
	IssuedTokenType  string          `json:"issued_token_type"`
	IDToken          string          `json:"id_token"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// OAuthError is an error answer from an authorization server's token,
// registration or authorization endpoint.
type OAuthError struct {
	Code        string // "invalid_grant", "access_denied", …
	Description string
	Status      int // HTTP status, 0 for an authorization response
}

// Error describes the answer; it never holds a token.
func (e *OAuthError) Error() string {
	msg := "the authorization server answered " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// permanent reports whether a refresh failing with e means the grant is
// gone and the person must sign in again, rather than a passing failure.
func (e *OAuthError) permanent() bool {
	switch e.Code {
	case "invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type":
		return true
	}
	return e.Status == http.StatusBadRequest || e.Status == http.StatusUnauthorized
}

// postToken sends a token request and parses the answer, which must
// carry a bearer access token, or a DPoP-bound one when c signs proofs.
func (s *Service) postToken(ctx context.Context, endpoint string, c client, form url.Values) (*tokenResponse, error) {
	tr, err := s.tokenRequest(ctx, endpoint, c, form)
	if err != nil {
		return nil, err
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") && !(c.dpop != nil && tr.dpop()) {
		return nil, fmt.Errorf("the authorization server issued a %q token; only bearer and DPoP tokens are supported", printable(tr.TokenType, 64))
	}
	return tr, nil
}

// dpop reports whether the token is DPoP-bound (RFC 9449 §5).
func (tr *tokenResponse) dpop() bool { return strings.EqualFold(tr.TokenType, "DPoP") }

// tokenRequest sends a token request and parses the answer, of whatever
// token type. With a DPoP key, a use_dpop_nonce answer is retried once
// with the server's nonce (RFC 9449 §8).
func (s *Service) tokenRequest(ctx context.Context, endpoint string, c client, form url.Values) (*tokenResponse, error) {
	for attempt := 0; ; attempt++ {
		req, err := s.clientRequest(ctx, endpoint, c, form)
		if err != nil {
			return nil, err
		}
		resp, err := s.o.HTTPClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("token request: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the token response: %w", err)
		}
		tr, err := parseTokenResponse(resp.StatusCode, body)
		if c.dpop == nil {
			return tr, err
		}
		fresh := s.keepDPoPNonce(originOf(req.URL), resp.Header)
		var oe *OAuthError
		if attempt == 0 && fresh && errors.As(err, &oe) && oe.Code == errUseDPoPNonce {
			s.log.Debug("the authorization server asks for a DPoP nonce; retrying", "issuer", c.Issuer)
			continue
		}
		return tr, err
	}
}

// parseTokenResponse reads a token endpoint's answer. Its input comes
// from the network: it never panics, and its errors never hold a token.
func parseTokenResponse(status int, body []byte) (*tokenResponse, error) {
	var tr tokenResponse
	jerr := json.Unmarshal(body, &tr)
	if tr.Error != "" {
		return nil, &OAuthError{Code: printable(tr.Error, 64), Description: printable(tr.ErrorDescription, 256), Status: status}
	}
	if status < 200 || status > 299 {
		return nil, &OAuthError{Code: "http_" + strconv.Itoa(status), Status: status}
	}
	if jerr != nil {
		return nil, errors.New("the token response is not a JSON object")
	}
	if tr.AccessToken == "" {
		return nil, errors.New("the token response holds no access token")
	}
	return &tr, nil
}

// printable keeps at most n bytes of s's printable ASCII, so a server's
// error text cannot forge log lines or fill the settings window.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// clientRequest builds a form POST authenticated as c.
func (s *Service) clientRequest(ctx context.Context, endpoint string, c client, form url.Values) (*http.Request, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	switch c.AuthMethod {
	case authPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case authBasic:
	case authKeyJWT:
		assertion, err := clientAssertion(c, s.now())
		if err != nil {
			return nil, err
		}
		form.Set("client_id", c.ID)
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", c.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.dpop != nil {
		proof, err := c.dpop.proof(http.MethodPost, req.URL, "", s.dpopNonce(originOf(req.URL)), s.now())
		if err != nil {
			return nil, fmt.Errorf("signing the DPoP proof: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	if c.AuthMethod == authBasic {
		// RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return req, nil
}

// expiresIn reads expires_in, which some servers send as a string.
func expiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 10*365*24*3600)) * time.Second
}

// apply updates sess from a token response received at now.
func (sess *session) apply(tr *tokenResponse, now time.Time, requested []string) {
	sess.AccessToken = tr.AccessToken
	sess.DPoP = tr.dpop()
	if tr.RefreshToken != "" {
		sess.RefreshToken = tr.RefreshToken // rotation: the old one is spent
	}
	sess.IssuedAt = now
	sess.Expiry = time.Time{}
	if d := expiresIn(tr.ExpiresIn); d > 0 {
		sess.Expiry = now.Add(d)
	}
	if tr.Scope != "" {
		sess.Scopes = strings.Fields(tr.Scope)
	} else if requested != nil {
		sess.Scopes = requested
	}
}

// refreshDue reports whether sess should be refreshed before use at now:
// within a minute of expiry, or a fifth of its lifetime for short ones.
func (sess *session) refreshDue(now time.Time) bool {
	if sess.Expiry.IsZero() {
		return false
	}
	margin := time.Minute
	if life := sess.Expiry.Sub(sess.IssuedAt); life > 0 && life/5 < margin {
		margin = life / 5
	}
	return !now.Before(sess.Expiry.Add(-margin))
}

// revoke asks the authorization server to revoke token (RFC 7009). Errors
// are reported for logging; sign-out goes ahead regardless.
func (s *Service) revoke(ctx context.Context, sess *session, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := s.clientRequest(ctx, sess.RevocationEndpoint, sess.Client, form)
	if err != nil {
		return err
	}
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation answered HTTP %d", resp.StatusCode)
	}
	return nil
}
