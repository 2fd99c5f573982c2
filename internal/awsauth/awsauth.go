// Package awsauth signs Countersign in to AWS through IAM Identity Center
// and signs every request to an AWS MCP endpoint with SigV4.
//
// Sign-in is the OAuth authorization-code flow with PKCE that IAM Identity
// Center offers public clients, as `aws sso login` does: Countersign
// registers itself (RegisterClient, grant types authorization_code and
// refresh_token, a loopback redirect), sends the person's browser to the
// Identity Center authorize page, and redeems the code with its verifier
// (CreateToken). The person then picks an account and a role from the AWS
// access portal (ListAccounts, ListAccountRoles), and Countersign fetches
// that role's short-lived credentials (GetRoleCredentials), renewing them
// before they expire with the portal token, itself refreshed with its
// refresh token. Nothing here holds a long-lived access key: credentials
// without a session token or an expiry are refused.
//
// Tokens and role credentials live only in the vault (the OS keychain) and
// in memory. Every AWS call goes through the AWS SDK for Go v2
// (service/ssooidc, service/sso) and signing through its aws/signer/v4.
//
// Every Session method may block on the keychain or the network: none may
// be called from a UI goroutine.
package awsauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sso"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"

	"github.com/countersign/countersign/internal/vault"
)

// Scope is the IAM Identity Center scope that lets a token reach the
// access portal's accounts and roles.
const Scope = "sso:account:access"

// ErrSignInRequired means the person must sign in (again) from Settings.
var ErrSignInRequired = errors.New("awsauth: sign in to AWS from Countersign's settings")

// ErrNoRole means the person signed in but has not chosen an account and role.
var ErrNoRole = errors.New("awsauth: choose an AWS account and role in Countersign's settings")

// Vault keeps secrets; *vault.Vault satisfies it.
type Vault interface {
	Get(name string) ([]byte, error)
	Set(name string, value []byte) error
	Delete(name string) error
}

// Settings say where the organisation's IAM Identity Center is.
type Settings struct {
	// StartURL is the AWS access portal URL, such as
	// https://d-1234567890.awsapps.com/start.
	StartURL string
	// Region is the Region IAM Identity Center runs in.
	Region string
	// OIDCEndpoint and PortalEndpoint replace the AWS endpoints; tests
	// point them at stand-ins. Empty means AWS's own for Region.
	OIDCEndpoint, PortalEndpoint string
}

var (
	regionPattern   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	startURLPattern = regexp.MustCompile(`^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$`)
)

// Validate says in plain words what is wrong with the settings, or nil.
func (s Settings) Validate() error {
	if !startURLPattern.MatchString(s.StartURL) {
		return errors.New("the AWS access portal address must be an https address, such as https://d-1234567890.awsapps.com/start")
	}
	if !regionPattern.MatchString(s.Region) {
		return errors.New("the IAM Identity Center Region must be a Region code, such as eu-west-1")
	}
	return nil
}

func (s Settings) oidcBase() string {
	if s.OIDCEndpoint != "" {
		return strings.TrimRight(s.OIDCEndpoint, "/")
	}
	return "https://oidc." + s.Region + ".amazonaws.com"
}

func (s Settings) portalBase() string {
	if s.PortalEndpoint != "" {
		return strings.TrimRight(s.PortalEndpoint, "/")
	}
	return "https://portal.sso." + s.Region + ".amazonaws.com"
}

// Options configure a Session.
type Options struct {
	// ID names the server; vault entries are "aws/<ID>/…".
	ID       string
	Settings Settings
	Vault    Vault
	// HTTPClient reaches IAM Identity Center; nil means a client with a
	// 30-second timeout.
	HTTPClient *http.Client
	// OpenURL opens the person's browser.
	OpenURL func(string) error
	// ClientName is registered with IAM Identity Center; "" means "Countersign".
	ClientName string
	// ExpiryWindow is how long before they expire role credentials and
	// portal tokens are renewed; 0 means 5 minutes.
	ExpiryWindow time.Duration
	// SignInTimeout bounds a browser sign-in; 0 means 5 minutes.
	SignInTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Session is one server's IAM Identity Center sign-in, chosen role and
// role credentials. It is safe for concurrent use.
type Session struct {
	o    Options
	oidc *ssooidc.Client
	sso  *sso.Client

	mu    sync.Mutex // guards tok and role, and serialises renewals
	tok   *portalToken
	role  *roleCreds
	ready bool // tok and role were loaded from the vault
}

// portalToken is the IAM Identity Center sign-in: the client registration
// and the token that reaches the access portal.
type portalToken struct {
	ClientID      string    `json:"clientId"`
	ClientSecret  string    `json:"clientSecret"`
	ClientExpires time.Time `json:"clientExpires"`
	AccessToken   string    `json:"accessToken"`
	RefreshToken  string    `json:"refreshToken,omitempty"`
	Expires       time.Time `json:"expires"`
}

// roleCreds is the chosen account and role, with its current credentials.
type roleCreds struct {
	AccountID       string    `json:"accountId"`
	AccountName     string    `json:"accountName,omitempty"`
	RoleName        string    `json:"roleName"`
	AccessKeyID     string    `json:"accessKeyId,omitempty"`
	SecretAccessKey string    `json:"secretAccessKey,omitempty"`
	SessionToken    string    `json:"sessionToken,omitempty"`
	Expires         time.Time `json:"expires,omitzero"`
}

// New returns a Session; it reads nothing until first used.
func New(o Options) (*Session, error) {
	if err := o.Settings.Validate(); err != nil {
		return nil, err
	}
	if o.ID == "" || o.Vault == nil {
		return nil, errors.New("awsauth: a session needs an id and a vault")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.ClientName == "" {
		o.ClientName = "Countersign"
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = 5 * time.Minute
	}
	if o.SignInTimeout <= 0 {
		o.SignInTimeout = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg := aws.Config{Region: o.Settings.Region, HTTPClient: o.HTTPClient, Credentials: aws.AnonymousCredentials{}}
	oidcBase, portalBase := o.Settings.oidcBase(), o.Settings.portalBase()
	s := &Session{
		o:    o,
		oidc: ssooidc.NewFromConfig(cfg, func(op *ssooidc.Options) { op.BaseEndpoint = aws.String(oidcBase) }),
		sso:  sso.NewFromConfig(cfg, func(op *sso.Options) { op.BaseEndpoint = aws.String(portalBase) }),
	}
	return s, nil
}

func (s *Session) tokenKey() string { return "aws/" + s.o.ID + "/identity-center" }
func (s *Session) roleKey() string  { return "aws/" + s.o.ID + "/role" }

// loadLocked reads the stored sign-in and role once.
func (s *Session) loadLocked() error {
	if s.ready {
		return nil
	}
	var tok portalToken
	if ok, err := s.getJSON(s.tokenKey(), &tok); err != nil {
		return err
	} else if ok {
		s.tok = &tok
	}
	var rc roleCreds
	if ok, err := s.getJSON(s.roleKey(), &rc); err != nil {
		return err
	} else if ok {
		s.role = &rc
	}
	s.ready = true
	return nil
}

func (s *Session) getJSON(name string, v any) (bool, error) {
	b, err := s.o.Vault.Get(name)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading the AWS sign-in from the keychain: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, nil // unreadable: as if signed out
	}
	return true, nil
}

func (s *Session) putJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.o.Vault.Set(name, b); err != nil {
		return fmt.Errorf("keeping the AWS sign-in in the keychain: %w", err)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, vault.ErrNotFound) }

// Status is what Settings shows about the session.
type Status struct {
	SignedIn bool
	// AccountID, AccountName and RoleName are the chosen role, if any.
	AccountID, AccountName, RoleName string
	// Expires is when the current role credentials end (zero: none held).
	Expires time.Time
}

// Status reads the stored state; it may block on the keychain.
func (s *Session) Status() (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(); err != nil {
		return Status{}, err
	}
	var st Status
	st.SignedIn = s.tok != nil && s.tok.AccessToken != ""
	if s.role != nil {
		st.AccountID, st.AccountName, st.RoleName = s.role.AccountID, s.role.AccountName, s.role.RoleName
		if s.role.SessionToken != "" {
			st.Expires = s.role.Expires
		}
	}
	return st, nil
}

// SignIn runs the browser sign-in and keeps the portal token. It blocks
// until the person finishes, ctx ends or SignInTimeout passes.
func (s *Session) SignIn(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.SignInTimeout)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("awsauth: opening the sign-in return address: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/oauth/callback"
	reg, err := s.oidc.RegisterClient(ctx, &ssooidc.RegisterClientInput{
		ClientName:   aws.String(s.o.ClientName),
		ClientType:   aws.String("public"),
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		RedirectUris: []string{redirect},
		IssuerUrl:    aws.String(s.o.Settings.StartURL),
		Scopes:       []string{Scope},
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("awsauth: registering Countersign with IAM Identity Center: %w", err)
	}
	verifier, challenge := pkce()
	state := randomString(24)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {aws.ToString(reg.ClientId)},
		"redirect_uri":          {redirect},
		"state":                 {state},
		"code_challenge_method": {"S256"},
		"code_challenge":        {challenge},
		"scopes":                {Scope},
	}
	codes := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(state, codes), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if err := s.o.OpenURL(s.o.Settings.oidcBase() + "/authorize?" + q.Encode()); err != nil {
		return fmt.Errorf("awsauth: opening the browser: %w", err)
	}
	var cb callback
	select {
	case cb = <-codes:
	case <-ctx.Done():
		return fmt.Errorf("awsauth: the AWS sign-in did not finish: %w", ctx.Err())
	}
	if cb.err != "" {
		return fmt.Errorf("awsauth: IAM Identity Center refused the sign-in: %s", cb.err)
	}
	out, err := s.oidc.CreateToken(ctx, &ssooidc.CreateTokenInput{
		ClientId:     reg.ClientId,
		ClientSecret: reg.ClientSecret,
		GrantType:    aws.String("authorization_code"),
		Code:         aws.String(cb.code),
		CodeVerifier: aws.String(verifier),
		RedirectUri:  aws.String(redirect),
	})
	if err != nil {
		return fmt.Errorf("awsauth: redeeming the sign-in: %w", err)
	}
	now := s.o.Now()
	tok := &portalToken{
		ClientID: aws.ToString(reg.ClientId), ClientSecret: aws.ToString(reg.ClientSecret),
		AccessToken: aws.ToString(out.AccessToken), RefreshToken: aws.ToString(out.RefreshToken),
		Expires: now.Add(time.Duration(out.ExpiresIn) * time.Second),
	}
	if reg.ClientSecretExpiresAt > 0 {
		tok.ClientExpires = time.Unix(reg.ClientSecretExpiresAt, 0)
	}
	if tok.AccessToken == "" {
		return errors.New("awsauth: IAM Identity Center sent no token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(); err != nil {
		return err
	}
	if err := s.putJSON(s.tokenKey(), tok); err != nil {
		return err
	}
	s.tok = tok
	s.o.Logger.Info("signed in to IAM Identity Center", "server", s.o.ID)
	return nil
}

type callback struct{ code, err string }

// callbackHandler takes the first redirect whose state matches; it
// delivers exactly once.
func callbackHandler(state string, out chan<- callback) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/callback" || r.URL.Query().Get("state") != state {
			http.Error(w, "This page is not part of a Countersign sign-in.", http.StatusBadRequest)
			return
		}
		q := r.URL.Query()
		cb := callback{code: q.Get("code"), err: q.Get("error")}
		if cb.code == "" && cb.err == "" {
			cb.err = "no code was returned"
		}
		once.Do(func() { out <- cb })
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cb.err != "" {
			fmt.Fprintln(w, "AWS sign-in did not finish. You can close this tab and try again from Countersign.")
			return
		}
		fmt.Fprintln(w, "You are signed in to AWS. You can close this tab and return to Countersign.")
	})
}

func pkce() (verifier, challenge string) {
	verifier = randomString(48)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("awsauth: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignOut forgets the sign-in, the chosen role and its credentials.
func (s *Session) SignOut() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, k := range []string{s.tokenKey(), s.roleKey()} {
		if err := s.o.Vault.Delete(k); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	s.tok, s.role, s.ready = nil, nil, true
	return errors.Join(errs...)
}
