// Package auth signs Countersign in to each upstream MCP server and puts
// that server's credentials — and only that server's — on its requests.
//
// For OAuth servers it follows the MCP authorization spec (revisions
// 2025-03-26 through 2025-11-25): RFC 9728 protected resource metadata,
// RFC 8414 / OpenID Connect discovery with the spec's fallbacks, client
// registration in the order pre-registered client → Client ID Metadata
// Document → RFC 7591 dynamic registration (persisted and reused), the
// authorization code flow with PKCE S256 through the system browser and a
// one-shot loopback redirect listener, RFC 9207 issuer checks, RFC 8707
// resource indicators, least-privilege scopes with step-up, refresh with
// rotation, and RFC 7009 revocation on sign-out. Servers that take a
// bearer token the person enters (SonarQube Cloud) are supported too, and
// reported as a policy exception.
//
// Two kinds need no browser at the MCP server: machine-to-machine servers
// use the client_credentials grant (SEP-1046) with client_secret_basic,
// client_secret_post or private_key_jwt (RFC 7523 §2.2), and
// enterprise-managed servers use cross-app access (SEP-990): the
// organisation's identity provider exchanges the person's ID token for an
// identity assertion grant (RFC 8693), which the MCP server's
// authorization server turns into an access token (RFC 7523 §2.1).
// Signed-in servers are refreshed shortly before their tokens expire.
//
// Tokens, client secrets and private keys live only in the vault (the OS
// keychain, or sealed with a key kept there) and in memory; they are
// never logged.
//
// Every Service method may block — on the keychain, which can prompt, or
// on the network — so none may be called from a UI goroutine.
//
// Usage:
//
//	svc := auth.New(auth.Options{Vault: v, OpenURL: app.OpenURL})
//	svc.Register("github", auth.ServerAuth{Kind: auth.KindOAuth, Name: "GitHub",
//		ResourceURL: "https://api.githubcopilot.com/mcp/", ClientID: "…", Scopes: []string{"repo"}})
//	conn := transport.NewStreamableHTTP(transport.HTTPOptions{URL: url, Client: svc.Client("github")})
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/vault"
)

// Kind is how a server authenticates Countersign.
type Kind int

// The kinds of server authentication.
const (
	KindNone   Kind = iota // no credentials
	KindOAuth              // OAuth 2.1 sign-in in the browser
	KindBearer             // a token the person entered: a policy exception
	// KindClientCredentials is machine-to-machine: the client_credentials
	// grant with a client secret or private key an admin provisioned
	// (SetCredential). No person signs in.
	KindClientCredentials
	// KindCrossApp is enterprise-managed authorization: the person's ID
	// token from the organisation's identity provider (IdentityProvider)
	// is exchanged for an identity assertion grant, then for an access
	// token, without a consent screen at the MCP server.
	KindCrossApp
	// KindAWS signs every request with SigV4, using short-lived role
	// credentials from IAM Identity Center (package awsauth).
	KindAWS
	// KindWorkloadIdentity is workload identity federation (SEP-1933): a
	// JWT the workload's platform issued for the authorization server
	// (Credential.WorkloadToken) is presented with the RFC 7523 §2.1
	// jwt-bearer grant. No person signs in and no client secret is kept.
	KindWorkloadIdentity
)

// machine reports whether the kind gets its tokens from a grant that
// needs no browser at the MCP server's authorization server.
func (k Kind) machine() bool {
	return k == KindClientCredentials || k == KindCrossApp || k == KindWorkloadIdentity
}

// State is where a server's sign-in stands.
type State int

// The states a server's sign-in can be in.
const (
	StateNone        State = iota // the server needs no sign-in
	StateSignedOut                // not signed in (or no token entered)
	StateSigningIn                // a browser sign-in is under way
	StateSignedIn                 // credentials are held
	StateSignInAgain              // credentials were rejected or expired for good
)

// String names the state as the settings window shows it.
func (s State) String() string {
	switch s {
	case StateNone:
		return "no sign-in needed"
	case StateSignedOut:
		return "signed out"
	case StateSigningIn:
		return "signing in"
	case StateSignedIn:
		return "signed in"
	case StateSignInAgain:
		return "sign in again"
	}
	return "unknown"
}

// Sentinel errors callers branch on.
var (
	// ErrSignInRequired means the person must sign in (or enter a token)
	// in Countersign's settings before the server can be used.
	ErrSignInRequired = errors.New("sign-in required")
	// ErrSignInCanceled means the sign-in was cancelled, by CancelSignIn,
	// SignOut or Close.
	ErrSignInCanceled = errors.New("sign-in canceled")
	// ErrSignInTimedOut means the person did not finish signing in in time.
	ErrSignInTimedOut = errors.New("sign-in timed out")
	// ErrUnknownServer means the server id was never registered.
	ErrUnknownServer = errors.New("unknown server")
	// ErrPKCEUnsupported means the authorization server does not advertise
	// PKCE with S256, so signing in to it is refused.
	ErrPKCEUnsupported = errors.New("the authorization server does not support PKCE with S256")
	// ErrIssuerMismatch means an authorization server's issuer differs
	// from the one expected (RFC 8414 §3.3, RFC 9207).
	ErrIssuerMismatch = errors.New("authorization server issuer mismatch")
	// ErrResourceMismatch means the server's protected resource metadata
	// names another resource (RFC 9728 §3.3).
	ErrResourceMismatch = errors.New("protected resource mismatch")
	// ErrNoRegistration means there is no way to identify Countersign to
	// the authorization server: no client ID configured, no Client ID
	// Metadata Document support and no dynamic registration.
	ErrNoRegistration = errors.New("no way to register with the authorization server")
	// ErrGrantUnsupported means the authorization server's metadata does
	// not list the grant the server is configured for.
	ErrGrantUnsupported = errors.New("the authorization server does not offer this grant")
	// ErrAuthMethodUnsupported means the authorization server does not
	// accept the configured client authentication method or algorithm.
	ErrAuthMethodUnsupported = errors.New("the authorization server does not accept this client authentication")
	// ErrAudienceMismatch means an identity token or assertion was issued
	// for another party than the one it is meant for.
	ErrAudienceMismatch = errors.New("token audience mismatch")
)

// SignInError is a request that failed because the person must sign in.
// It matches ErrSignInRequired with errors.Is.
type SignInError struct {
	Server string // display name
	Reason string // why, in plain words; may be empty
}

// Error reads "sign in to GitHub in Countersign settings (why)".
func (e *SignInError) Error() string {
	msg := "sign in to " + e.Server + " in Countersign settings"
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrSignInRequired) true.
func (e *SignInError) Is(target error) bool { return target == ErrSignInRequired }

// ServerAuth is how one server authenticates; the catalog and admin policy
// supply it.
type ServerAuth struct {
	Kind Kind
	// Name is shown to the person: "Sign in to GitHub".
	Name string
	// ResourceURL is the server's MCP endpoint. Credentials are only ever
	// sent to this origin.
	ResourceURL string
	// ClientID (and for confidential clients ClientSecret) is a client
	// pre-registered with the server's authorization server. It wins over
	// every other way of registering. KindClientCredentials and
	// KindCrossApp require ClientID and ignore ClientSecret: their secret
	// or key comes from the vault (SetCredential).
	ClientID     string
	ClientSecret string
	// TokenEndpointAuthMethod is how a pre-registered client authenticates
	// ("none", "client_secret_basic", "client_secret_post", and for
	// KindClientCredentials and KindCrossApp also "private_key_jwt");
	// empty picks one the authorization server lists that fits the stored
	// credential.
	TokenEndpointAuthMethod string
	// SigningAlgorithm is the JWS algorithm of private_key_jwt assertions
	// ("ES256", "PS256", …); empty picks one that fits the key and the
	// authorization server's token_endpoint_auth_signing_alg_values_supported.
	SigningAlgorithm string
	// KeyID is the kid header of private_key_jwt assertions, for servers
	// that hold several of the client's keys; may be empty.
	KeyID string
	// IdP is the organisation's identity provider of a KindCrossApp server.
	IdP *IdentityProvider
	// RedirectPort fixes the loopback redirect port for pre-registered
	// clients whose redirect URI includes one; 0 picks a free port.
	RedirectPort int
	// CIMDURL is the https URL of Countersign's Client ID Metadata
	// Document, used as client_id where the server supports it.
	CIMDURL string
	// Scopes, when not nil, is the most Countersign may ask for (least
	// privilege): scopes the server asks for beyond it are not requested.
	Scopes []string
	// AuthorizationServer, when set, is the only issuer accepted.
	AuthorizationServer string
	// OfflineAccess asks for offline_access even when the authorization
	// server does not list it: Microsoft Entra ID issues a refresh token
	// only when it is asked for, and without one a sign-in lasts an hour.
	OfflineAccess bool
	// AWS configures a KindAWS server.
	AWS *AWSSettings
}

// IdentityProvider is the organisation's identity provider (IdP) that a
// KindCrossApp server's authorization server trusts. Countersign signs the
// person in to it in the browser (OpenID Connect, PKCE S256) — or is given
// an ID token with SetIDToken — and exchanges the ID token there for an
// identity assertion grant (ID-JAG) for the MCP server.
type IdentityProvider struct {
	// Issuer is the IdP's issuer identifier; its OpenID configuration is
	// read from it.
	Issuer string
	// ClientID is Countersign's client at the IdP: the ID token's audience.
	ClientID string
	// TokenEndpoint, when set, is used instead of the discovered one.
	TokenEndpoint string
	// AuthMethod is how Countersign authenticates at the IdP: "none"
	// (default), "client_secret_basic" or "client_secret_post" with
	// Credential.IdPClientSecret.
	AuthMethod string
	// Scopes are asked for at the IdP sign-in besides "openid".
	Scopes []string
	// RedirectPort fixes the loopback redirect port registered at the IdP;
	// 0 picks a free port.
	RedirectPort int
}

// Credential is the secret material of a confidential client: provisioned
// by an admin or entered in settings, kept only in the vault, never in
// settings, policy files or logs.
type Credential struct {
	// ClientSecret authenticates with client_secret_basic or
	// client_secret_post.
	ClientSecret string
	// PrivateKeyPEM signs private_key_jwt assertions: a PKCS #8, SEC 1 or
	// PKCS #1 PEM key (EC P-256/384/521, RSA of 2048 bits or more, Ed25519).
	PrivateKeyPEM string
	// IdPClientSecret authenticates Countersign at the identity provider
	// of a KindCrossApp server, when that client is confidential.
	IdPClientSecret string
	// WorkloadToken is a KindWorkloadIdentity server's workload identity
	// JWT, its audience the authorization server: the jwt-bearer grant's
	// assertion. A refused one must be replaced; it is never retried.
	WorkloadToken string
}

// Status is a server's sign-in state, for the tray and settings.
type Status struct {
	Server string
	Name   string
	Kind   Kind
	State  State
	// Scopes are those granted (OAuth).
	Scopes []string
	// Expiry is when the access token expires; zero when unknown.
	Expiry time.Time
	// Reason explains StateSignInAgain or a problem, in plain words.
	Reason string
	// PolicyException is set for a person-entered token: the organisation
	// asks for OAuth, so the UI marks it.
	PolicyException bool
}

// Options configure a Service.
type Options struct {
	// Vault stores tokens and registrations; required.
	Vault *vault.Vault
	// OpenURL shows a URL in the person's browser: the UI passes Fyne's
	// App.OpenURL. Never a shell. It must return once the browser is asked,
	// without waiting for the page: the sign-in answers the page.
	OpenURL func(*url.URL) error
	// HTTPClient is used for discovery, registration and token requests;
	// nil means a client with a 30-second timeout.
	HTTPClient *http.Client
	// Transport carries the MCP requests of Client; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClientName is sent in dynamic registration; "" means "Countersign".
	ClientName string
	// SignInTimeout bounds a browser sign-in; 0 means 5 minutes.
	SignInTimeout time.Duration
	// AutoSignIn makes a request that needs a sign-in (or more scopes)
	// open the browser itself, and wait for it, instead of failing with
	// ErrSignInRequired until the person signs in from settings.
	AutoSignIn bool
}

// Service holds every server's credentials and sign-in state.
type Service struct {
	o      Options
	log    *slog.Logger
	now    func() time.Time
	ctx    context.Context // ends with Close; bounds sign-ins
	cancel context.CancelFunc
	wg     sync.WaitGroup // sign-in and refresh goroutines
	wake   chan struct{}  // buffered(1): a session changed; see refreshLoop

	mu      sync.Mutex
	servers map[string]*server
	subs    map[chan struct{}]struct{}
	nonces  map[string]string // DPoP nonces by server origin
	closed  bool
}

// server is one registered server.
type server struct {
	id       string
	cfg      ServerAuth
	resource *url.URL
	// storeMu serialises this server's vault writes with the decisions
	// behind them (lock order: storeMu, then Service.mu).
	storeMu sync.Mutex

	// guarded by Service.mu
	cred       Credential // the machine kinds
	refused    string     // KindWorkloadIdentity: the workload token the server refused
	idToken    string     // KindCrossApp: the person's ID token at the IdP
	retryAt    time.Time  // proactive refresh: not before this, after a failure
	failures   int        // proactive refresh failures in a row
	sess       *session
	bearer     string
	state      State
	reason     string
	pending    challenge    // the last challenge seen: what a sign-in should ask for
	flight     *flight      // the browser sign-in under way
	refreshing *refreshCall // the token refresh under way
	aws        *awsServer   // KindAWS: set at Register, then read-only
	dpop       *dpopKey     // the DPoP proof key, once loaded or created
}

// New returns a Service and starts its proactive refresher; call Close
// when done.
func New(o Options) *Service {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClientName == "" {
		o.ClientName = "Countersign"
	}
	if o.SignInTimeout <= 0 {
		o.SignInTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		o: o, log: o.Logger, now: o.Now, ctx: ctx, cancel: cancel,
		wake:    make(chan struct{}, 1),
		servers: make(map[string]*server),
		subs:    make(map[chan struct{}]struct{}),
	}
	s.wg.Add(1)
	go s.refreshLoop()
	return s
}

// Close cancels sign-ins and refreshes under way, stops the proactive
// refresher and waits for them to end.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// wakeRefresher tells the proactive refresher that a session changed.
func (s *Service) wakeRefresher() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// entry names in the vault
func sessionKey(id string) string { return "auth/" + id + "/session" }
func clientKey(id string) string  { return "auth/" + id + "/client" }
func bearerKey(id string) string  { return "auth/" + id + "/bearer" }
func credentialKey(id string) string {
	return "auth/" + id + "/credential"
}
func idTokenKey(id string) string { return "auth/" + id + "/id-token" }

// Register adds or replaces a server and loads its stored credentials. It
// reads the keychain, so it may block.
func (s *Service) Register(id string, cfg ServerAuth) error {
	if id == "" {
		return errors.New("auth: empty server id")
	}
	if cfg.Name == "" {
		cfg.Name = id
	}
	s.mu.Lock()
	same := s.servers[id] != nil && reflect.DeepEqual(s.servers[id].cfg, cfg)
	s.mu.Unlock()
	if same {
		// Settings were saved without changing this server's sign-in: keep
		// its state, so a refresh in flight saves its rotated token where
		// the next request looks for it.
		return nil
	}
	srv := &server{id: id, cfg: cfg, state: StateNone}
	if cfg.Kind != KindNone {
		u, err := url.Parse(cfg.ResourceURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("server %s: invalid URL %q", id, cfg.ResourceURL)
		}
		if err := checkEndpoint(cfg.ResourceURL); err != nil {
			return fmt.Errorf("server %s: %w", id, err)
		}
		srv.resource = u
		srv.state = StateSignedOut
	}
	switch cfg.Kind {
	case KindOAuth, KindClientCredentials, KindCrossApp, KindWorkloadIdentity:
		if cfg.Kind.machine() {
			if err := s.loadMachine(srv); err != nil {
				return err
			}
		}
		sess, err := s.loadSession(id)
		if err != nil {
			s.log.Warn("could not read the saved sign-in", "server", id, "err", err)
			srv.reason = "the saved sign-in could not be read: " + err.Error()
		}
		if sess != nil && sess.Resource != "" && !resourceMatches(sess.Resource, srv.resource) {
			// The server moved: its old token must not go to the new URL.
			sess = nil
			s.o.Vault.Delete(sessionKey(id))
		}
		if sess != nil {
			srv.sess, srv.state = sess, StateSignedIn
		}
	case KindBearer:
		b, err := s.o.Vault.Get(bearerKey(id))
		switch {
		case err == nil:
			srv.bearer, srv.state = string(b), StateSignedIn
		case !errors.Is(err, vault.ErrNotFound):
			srv.reason = "the saved token could not be read: " + err.Error()
		}
	case KindAWS:
		if err := s.registerAWS(srv); err != nil {
			return err
		}
	case KindNone:
	default:
		return fmt.Errorf("server %s: unknown kind %d", id, cfg.Kind)
	}
	s.mu.Lock()
	if old := s.servers[id]; old != nil && old.flight != nil {
		old.flight.cancel(ErrSignInCanceled)
	}
	s.servers[id] = srv
	s.mu.Unlock()
	s.notify()
	s.wakeRefresher()
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, vault.ErrNotFound) }

func (s *Service) loadSession(id string) (*session, error) {
	b, err := s.o.Vault.Get(sessionKey(id))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sess session
	if err := json.Unmarshal(b, &sess); err != nil || sess.AccessToken == "" {
		return nil, errors.New("the saved sign-in is corrupt")
	}
	return &sess, nil
}

func (s *Service) saveSession(id string, sess *session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.o.Vault.Set(sessionKey(id), b)
}

func (s *Service) lookup(id string) (*server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.servers[id]
	if srv == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownServer, id)
	}
	return srv, nil
}

// Status reports a server's sign-in state.
func (s *Service) Status(id string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.servers[id]
	if srv == nil {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownServer, id)
	}
	return srv.statusLocked(), nil
}

// Statuses reports every server's state, ordered by id.
func (s *Service) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.servers))
	for _, srv := range s.servers {
		out = append(out, srv.statusLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}

func (srv *server) statusLocked() Status {
	st := Status{Server: srv.id, Name: srv.cfg.Name, Kind: srv.cfg.Kind, State: srv.state, Reason: srv.reason}
	if srv.sess != nil {
		st.Scopes = slices.Clone(srv.sess.Scopes)
		st.Expiry = srv.sess.Expiry
	}
	st.PolicyException = srv.cfg.Kind == KindBearer
	return st
}

// Subscribe returns a channel that receives a value whenever any server's
// status may have changed (read Statuses then), and a function that ends
// the subscription. Notifications coalesce: a slow reader misses none of
// the final state, only intermediate ones.
func (s *Service) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Service) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyLocked()
}

func (s *Service) notifyLocked() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// setState records a server's state and tells subscribers.
func (s *Service) setStateLocked(srv *server, st State, reason string) {
	if srv.state == st && srv.reason == reason {
		return
	}
	srv.state, srv.reason = st, reason
	s.notifyLocked()
}

// SetBearerToken stores a token the person entered for a KindBearer server.
func (s *Service) SetBearerToken(id, token string) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	if srv.cfg.Kind != KindBearer {
		return fmt.Errorf("server %s does not take a token", id)
	}
	if !validBearer(token) {
		return errors.New("that does not look like a token: it is empty or holds spaces or unusual characters")
	}
	if err := s.o.Vault.Set(bearerKey(id), []byte(token)); err != nil {
		return fmt.Errorf("saving the token for %s: %w", srv.cfg.Name, err)
	}
	s.mu.Lock()
	srv.bearer = token
	s.setStateLocked(srv, StateSignedIn, "")
	s.mu.Unlock()
	s.log.Info("token saved", "server", id)
	return nil
}

// validBearer checks RFC 6750's b64token syntax.
func validBearer(t string) bool {
	if t == "" || len(t) > 16<<10 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
		if !ok {
			return false
		}
	}
	return true
}

// SignOut forgets a server's credentials: it cancels a sign-in under way,
// revokes the tokens where the authorization server offers revocation,
// and deletes tokens, registration and any entered token from the vault.
func (s *Service) SignOut(ctx context.Context, id string) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	sess, cred := srv.sess, srv.cred
	if srv.flight != nil {
		srv.flight.cancel(errSignedOut)
	}
	srv.sess, srv.bearer, srv.pending = nil, "", challenge{}
	srv.cred, srv.idToken, srv.dpop = Credential{}, "", nil
	if srv.cfg.Kind != KindNone {
		s.setStateLocked(srv, StateSignedOut, "")
	}
	s.mu.Unlock()
	if srv.aws != nil {
		if err := srv.aws.sess.SignOut(); err != nil {
			return fmt.Errorf("signing out of %s: %w", srv.cfg.Name, err)
		}
		s.log.Info("signed out", "server", id)
		return nil
	}

	if sess != nil && sess.RevocationEndpoint != "" && srv.cfg.Kind.machine() {
		// The session holds no secret or key: the vault's credential does.
		if c, err := attachCredential(sess.Client, cred, srv.cfg, nil); err == nil {
			cp := *sess
			cp.Client = c
			sess = &cp
		}
	}
	if sess != nil && sess.RevocationEndpoint != "" {
		if sess.RefreshToken != "" {
			if err := s.revoke(ctx, sess, sess.RefreshToken, "refresh_token"); err != nil {
				s.log.Warn("revoking the refresh token failed", "server", id, "err", err)
			}
		}
		if err := s.revoke(ctx, sess, sess.AccessToken, "access_token"); err != nil {
			s.log.Warn("revoking the access token failed", "server", id, "err", err)
		}
	}
	var errs []error
	srv.storeMu.Lock()
	for _, k := range []string{sessionKey(id), clientKey(id), bearerKey(id), credentialKey(id), idTokenKey(id), dpopKeyKey(id)} {
		if err := s.o.Vault.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	srv.storeMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("signing out of %s: %w", srv.cfg.Name, err)
	}
	s.log.Info("signed out", "server", id)
	return nil
}

// Client returns an HTTP client for the server's MCP transport: it adds
// the server's credentials to requests for the server's own origin, and
// handles refresh, step-up and sign-in as described on RoundTripper.
func (s *Service) Client(id string) *http.Client {
	return &http.Client{Transport: s.RoundTripper(id)}
}

// RoundTripper returns the server's credential-adding round tripper (see
// Client). A request for an unregistered server fails with
// ErrUnknownServer.
func (s *Service) RoundTripper(id string) http.RoundTripper {
	return &roundTripper{s: s, id: id}
}
