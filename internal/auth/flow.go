package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errSignedOut is the cause of a sign-in cancelled by SignOut.
var errSignedOut = fmt.Errorf("%w: signed out", ErrSignInCanceled)

// errNoBrowser means the browser could not be opened for a sign-in.
var errNoBrowser = errors.New("opening the browser")

// flight is a browser sign-in under way. However many requests need it,
// there is one per server; they all wait on done.
type flight struct {
	done   chan struct{}
	err    error // set before done closes
	cancel context.CancelCauseFunc
}

// SignIn signs in to a server in the browser and waits until the person
// finishes, the sign-in times out, or ctx ends (which stops the waiting,
// not the sign-in: CancelSignIn does that). If a sign-in is already under
// way it waits for that one. For a server that takes an entered token it
// fails: use SetBearerToken. For KindClientCredentials it gets a token
// now, with no browser; for KindCrossApp it signs in at the identity
// provider in the browser only when no usable ID token is held.
func (s *Service) SignIn(ctx context.Context, id string) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	switch srv.cfg.Kind {
	case KindNone:
		return nil
	case KindBearer:
		return fmt.Errorf("%s takes a token, not a browser sign-in", srv.cfg.Name)
	case KindAWS:
		return s.signInAWS(ctx, srv)
	}
	s.mu.Lock()
	f := s.startFlightLocked(srv)
	s.mu.Unlock()
	return await(ctx, f)
}

// CancelSignIn stops a browser sign-in under way; its waiters get
// ErrSignInCanceled.
func (s *Service) CancelSignIn(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv := s.servers[id]; srv != nil && srv.flight != nil {
		srv.flight.cancel(ErrSignInCanceled)
	}
}

func await(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFlightLocked returns the server's sign-in under way, starting one
// if there is none. s.mu must be held.
func (s *Service) startFlightLocked(srv *server) *flight {
	if srv.flight != nil {
		return srv.flight
	}
	f := &flight{done: make(chan struct{})}
	if s.closed {
		f.err = ErrSignInCanceled
		close(f.done)
		return f
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, s.o.SignInTimeout, ErrSignInTimedOut)
	f.cancel = cancel
	srv.flight = f
	req := srv.pending
	before := srv.state
	s.setStateLocked(srv, StateSigningIn, "")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancelTimeout()
		defer cancel(nil)
		sess, err := s.signIn(ctx, srv, req)
		if err != nil && ctx.Err() != nil {
			err = signInCause(ctx)
		}
		if err == nil {
			err = s.install(ctx, srv, sess)
		}
		if errors.Is(err, errSignedOut) {
			// SignOut ran meanwhile: a registration saved by this
			// sign-in must go too.
			srv.storeMu.Lock()
			s.o.Vault.Delete(clientKey(srv.id))
			srv.storeMu.Unlock()
		}
		s.mu.Lock()
		srv.flight = nil
		f.err = err
		switch {
		case err == nil:
			s.log.Info("signed in", "server", srv.id)
		case errors.Is(err, errSignedOut):
		case srv.sess != nil:
			// A step-up that did not happen: the old sign-in still works.
			s.setStateLocked(srv, StateSignedIn, "more permissions were not granted. "+Explain(srv.cfg.Name, err))
		case before == StateSignInAgain:
			s.setStateLocked(srv, StateSignInAgain, Explain(srv.cfg.Name, err))
		default:
			s.setStateLocked(srv, StateSignedOut, Explain(srv.cfg.Name, err))
		}
		if err != nil && !errors.Is(err, errSignedOut) {
			s.log.Warn("sign-in failed", "server", srv.id, "err", err)
		}
		close(f.done)
		s.mu.Unlock()
	}()
	return f
}

// signInCause says why a sign-in's context ended.
func signInCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrSignInTimedOut), errors.Is(cause, ErrSignInCanceled):
		return cause
	}
	return ErrSignInCanceled // the Service closed
}

// install saves a new session and makes it current, unless the sign-in
// was cancelled meanwhile.
func (s *Service) install(ctx context.Context, srv *server, sess *session) error {
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	if ctx.Err() != nil {
		return signInCause(ctx)
	}
	saveErr := s.saveSession(srv.id, sess)
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		if saveErr == nil {
			s.o.Vault.Delete(sessionKey(srv.id))
		}
		return signInCause(ctx)
	}
	srv.sess, srv.pending = sess, challenge{}
	srv.failures, srv.retryAt = 0, time.Time{}
	reason := ""
	if saveErr != nil {
		s.log.Warn("could not save the sign-in: it lasts until Countersign quits", "server", srv.id, "err", saveErr)
		reason = "the sign-in could not be saved, so it lasts until Countersign quits: " + saveErr.Error()
	}
	s.setStateLocked(srv, StateSignedIn, reason)
	s.mu.Unlock()
	s.wakeRefresher()
	return nil
}

// signIn runs one sign-in. For KindOAuth it is a browser sign-in:
// discovery, registration, the authorization request, the loopback
// redirect and the code exchange; the machine kinds get their tokens from
// their grants (see grant.go).
func (s *Service) signIn(ctx context.Context, srv *server, req challenge) (*session, error) {
	if srv.cfg.Kind.machine() {
		return s.machineSignIn(ctx, srv, req)
	}
	if s.o.OpenURL == nil {
		return nil, errNoBrowser
	}
	if req.ResourceMetadata == "" && len(req.Scopes) == 0 {
		req = s.probe(ctx, srv.resource)
	}
	d, err := s.discover(ctx, srv.resource, req, srv.cfg.AuthorizationServer)
	if err != nil {
		return nil, err
	}
	if err := checkAuthorizationCode(d.as, d.defaultEndpoints); err != nil {
		return nil, err
	}
	var granted []string
	if req.Error == "insufficient_scope" {
		s.mu.Lock()
		if srv.sess != nil && srv.sess.Issuer == d.as.Issuer {
			granted = srv.sess.Scopes
		}
		s.mu.Unlock()
	}
	scopes := selectScopes(req.Scopes, d, srv.cfg.Scopes, granted, srv.cfg.OfflineAccess)

	ln, cl, err := s.prepareClient(ctx, srv, d)
	if err != nil {
		return nil, err
	}
	if useDPoP(d, req) {
		if cl.dpop, err = s.dpopKeyFor(srv); err != nil {
			ln.Close()
			return nil, err
		}
	}
	params := url.Values{"resource": {d.resource}}
	if len(scopes) > 0 {
		params.Set("scope", strings.Join(scopes, " "))
	}
	s.log.Info("signing in: opening the browser", "server", srv.id, "issuer", d.as.Issuer, "client", cl.Source, "scopes", strings.Join(scopes, " "))
	ar, err := s.authorize(ctx, ln, d.as, cl, srv.cfg.Name, params)
	if err != nil {
		return nil, err
	}
	defer ar.cb.close()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {ar.code},
		"redirect_uri":  {ar.redirect},
		"code_verifier": {ar.verifier},
		"resource":      {d.resource},
	}
	tr, err := s.postToken(ctx, d.as.TokenEndpoint, cl, form)
	if err != nil {
		ar.cb.finish(false, "Countersign could not complete it")
		return nil, fmt.Errorf("exchanging the authorization code: %w", err)
	}
	sess := &session{
		Resource:           d.resource,
		Issuer:             d.as.Issuer,
		TokenEndpoint:      d.as.TokenEndpoint,
		RevocationEndpoint: d.as.RevocationEndpoint,
		Client:             cl,
	}
	sess.Client.dpop = nil // the vault holds the key; a refresh loads it
	sess.apply(tr, s.now(), scopes)
	ar.cb.finish(true, "")
	return sess, nil
}

// authorization is a browser authorization that returned a code. Its
// callback still waits to show the person how it ended: call cb.finish,
// then cb.close.
type authorization struct {
	code, redirect, verifier string
	cb                       *callback
}

// authorize sends the person's browser to as's authorization endpoint as
// client cl with PKCE S256, state and the extra params, and waits on the
// loopback listener ln (which it takes over) for the redirect.
func (s *Service) authorize(ctx context.Context, ln net.Listener, as serverMetadata, cl client, name string, params url.Values) (*authorization, error) {
	redirect := "http://" + ln.Addr().String() + "/callback"
	verifier := randomString()
	state := randomString()
	authURL, err := url.Parse(as.AuthorizationEndpoint)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("invalid authorization endpoint: %w", err)
	}
	q := authURL.Query()
	q.Set("response_type", "code")
	q.Set("client_id", cl.ID)
	q.Set("redirect_uri", redirect)
	q.Set("state", state)
	q.Set("code_challenge", s256(verifier))
	q.Set("code_challenge_method", "S256")
	for k, v := range params {
		q[k] = v
	}
	authURL.RawQuery = q.Encode()

	cb := startCallback(ln, state, as, name)
	if err := s.o.OpenURL(authURL); err != nil {
		cb.close()
		return nil, fmt.Errorf("%w: %w", errNoBrowser, err)
	}
	select {
	case r := <-cb.result:
		if r.err != nil {
			cb.finish(false, r.err.Error())
			cb.close()
			return nil, r.err
		}
		return &authorization{code: r.code, redirect: redirect, verifier: verifier, cb: cb}, nil
	case <-ctx.Done():
		cb.finish(false, "the sign-in was cancelled or took too long")
		cb.close()
		return nil, signInCause(ctx)
	}
}

// probe asks the server for its challenge with an unauthenticated ping,
// for a sign-in started from settings before any request hit a 401. A
// server that does not answer with a Bearer challenge gives the zero
// challenge, and discovery falls back to the well-known locations.
func (s *Service) probe(ctx context.Context, r *url.URL) challenge {
	body := `{"jsonrpc":"2.0","id":"countersign-auth-probe","method":"ping"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.String(), strings.NewReader(body))
	if err != nil {
		return challenge{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return challenge{}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return challenge{}
	}
	ch, _ := bearerChallenge(resp.Header)
	return ch
}

// selectScopes picks the scopes to request, per the MCP spec's strategy:
// the challenge's scope, else the resource's scopes_supported, else none —
// kept within allow when the catalog sets it (least privilege). A step-up
// adds the scopes already granted. offline_access is added when the
// authorization server lists it, so a refresh token is issued (SEP-2207),
// or when offline is set because the server is known to need it.
func selectScopes(challenged []string, d *discovered, allow, granted []string, offline bool) []string {
	var want []string
	switch {
	case len(challenged) > 0:
		want = challenged
	case d.prm != nil && len(d.prm.ScopesSupported) > 0:
		want = d.prm.ScopesSupported
	case allow != nil:
		want = allow
	}
	if allow != nil {
		kept := restrict(want, allow)
		if len(kept) == 0 && len(challenged) == 0 {
			kept = allow
		}
		want = kept
	}
	want = union(granted, want)
	if offline || slices.Contains(d.as.ScopesSupported, "offline_access") {
		want = union(want, []string{"offline_access"})
	}
	return want
}

// restrict keeps the scopes of want that allow permits; a nil allow
// permits everything.
func restrict(want, allow []string) []string {
	if allow == nil {
		return want
	}
	var out []string
	for _, w := range want {
		if slices.Contains(allow, w) {
			out = append(out, w)
		}
	}
	return out
}

// union is a then b's scopes not in a, without duplicates.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, x := range slices.Concat(a, b) {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// prepareClient opens the loopback redirect listener and works out the
// client identity: pre-registered, then Client ID Metadata Document, then
// a stored dynamic registration (on its registered port), then a new
// dynamic registration.
func (s *Service) prepareClient(ctx context.Context, srv *server, d *discovered) (net.Listener, client, error) {
	cfg := srv.cfg
	issuer := d.as.Issuer
	switch {
	case cfg.ClientID != "":
		ln, err := listenLoopback(cfg.RedirectPort)
		if err != nil {
			return nil, client{}, err
		}
		return ln, client{
			ID: cfg.ClientID, Secret: cfg.ClientSecret, Issuer: issuer, Source: "preregistered",
			AuthMethod: pickAuthMethod(cfg.TokenEndpointAuthMethod, d.as.TokenEndpointAuthMethodsSupported, cfg.ClientSecret != ""),
		}, nil
	case cfg.CIMDURL != "" && d.as.ClientIDMetadataDocumentSupported:
		ln, err := listenLoopback(0)
		if err != nil {
			return nil, client{}, err
		}
		return ln, client{ID: cfg.CIMDURL, AuthMethod: authNone, Issuer: issuer, Source: "cimd"}, nil
	}
	if stored, err := s.loadClient(srv.id); err != nil {
		s.log.Warn("could not read the saved registration", "server", srv.id, "err", err)
	} else if stored != nil && stored.Issuer == issuer && stored.Source == "dcr" {
		port := 0
		if u, err := url.Parse(stored.RedirectURI); err == nil {
			port, _ = strconv.Atoi(u.Port())
		}
		if ln, err := listenLoopback(port); err == nil && port != 0 {
			return ln, *stored, nil
		}
		s.log.Info("the registered redirect port is busy: registering again", "server", srv.id)
	}
	if d.as.RegistrationEndpoint == "" {
		return nil, client{}, fmt.Errorf("%w: %s offers no dynamic registration and no client ID is configured", ErrNoRegistration, issuer)
	}
	ln, err := listenLoopback(0)
	if err != nil {
		return nil, client{}, err
	}
	cl, err := s.registerClient(ctx, d, "http://"+ln.Addr().String()+"/callback")
	if err != nil {
		ln.Close()
		return nil, client{}, err
	}
	srv.storeMu.Lock()
	if b, err := json.Marshal(cl); err == nil {
		if err := s.o.Vault.Set(clientKey(srv.id), b); err != nil {
			s.log.Warn("could not save the registration: it will be repeated", "server", srv.id, "err", err)
		}
	}
	srv.storeMu.Unlock()
	return ln, cl, nil
}

func (s *Service) loadClient(id string) (*client, error) {
	b, err := s.o.Vault.Get(clientKey(id))
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	var c client
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return nil, errors.New("the saved registration is corrupt")
	}
	return &c, nil
}

func listenLoopback(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("opening the sign-in redirect listener: %w", err)
	}
	return ln, nil
}

// pickAuthMethod chooses how a pre-registered client authenticates.
func pickAuthMethod(configured string, supported []string, hasSecret bool) string {
	switch {
	case configured != "":
		return configured
	case !hasSecret:
		return authNone
	case slices.Contains(supported, authBasic) || len(supported) == 0:
		return authBasic
	case slices.Contains(supported, authPost):
		return authPost
	}
	return authBasic
}

// registerClient registers Countersign with RFC 7591 dynamic registration
// as a native public client, or as the confidential client the server
// insists on when it accepts no public clients.
func (s *Service) registerClient(ctx context.Context, d *discovered, redirect string) (client, error) {
	method := authNone
	if sup := d.as.TokenEndpointAuthMethodsSupported; len(sup) > 0 && !slices.Contains(sup, authNone) {
		method = pickAuthMethod("", sup, true)
	}
	meta := map[string]any{
		"client_name":                s.o.ClientName,
		"redirect_uris":              []string{redirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": method,
		"application_type":           "native",
	}
	body, _ := json.Marshal(meta)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.as.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return client{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return client{}, fmt.Errorf("registering with the authorization server: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return client{}, fmt.Errorf("reading the registration answer: %w", err)
	}
	var r struct {
		ClientID                string `json:"client_id"`
		ClientSecret            string `json:"client_secret"`
		TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
		Error                   string `json:"error"`
		ErrorDescription        string `json:"error_description"`
	}
	json.Unmarshal(rb, &r)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || r.ClientID == "" {
		if r.Error == "" {
			r.Error = "http_" + strconv.Itoa(resp.StatusCode)
		}
		return client{}, fmt.Errorf("registering with the authorization server: %w",
			&OAuthError{Code: r.Error, Description: r.ErrorDescription, Status: resp.StatusCode})
	}
	c := client{ID: r.ClientID, Secret: r.ClientSecret, AuthMethod: r.TokenEndpointAuthMethod, RedirectURI: redirect, Issuer: d.as.Issuer, Source: "dcr"}
	if c.AuthMethod == "" {
		c.AuthMethod = authNone
		if c.Secret != "" {
			c.AuthMethod = pickAuthMethod("", d.as.TokenEndpointAuthMethodsSupported, true)
		}
	}
	return c, nil
}

// callback is the one-shot loopback redirect listener of a sign-in.
type callback struct {
	srv    *http.Server
	served chan struct{}
	state  string
	as     serverMetadata
	name   string

	result chan callbackResult // the first valid redirect; buffered(1)
	page   chan string         // the page to answer it with; buffered(1)
	mu     sync.Mutex
	taken  bool
}

type callbackResult struct {
	code string
	err  error
}

func startCallback(ln net.Listener, state string, as serverMetadata, name string) *callback {
	cb := &callback{
		served: make(chan struct{}),
		state:  state, as: as, name: name,
		result: make(chan callbackResult, 1),
		page:   make(chan string, 1),
	}
	cb.srv = &http.Server{Handler: cb, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(cb.served)
		cb.srv.Serve(ln)
	}()
	return cb
}

// finish sets the page the browser sees for the accepted redirect.
func (cb *callback) finish(ok bool, reason string) {
	p := failurePage(cb.name, reason)
	if ok {
		p = successPage(cb.name)
	}
	select {
	case cb.page <- p:
	default:
	}
}

// close stops listening, after letting the accepted redirect get its page.
func (cb *callback) close() {
	cb.finish(false, "the sign-in ended")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cb.srv.Shutdown(ctx) != nil {
		cb.srv.Close()
	}
	<-cb.served
}

func (cb *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if r.URL.Path != "/callback" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(cb.state)) != 1 {
		// Not our request (a stale tab, or someone else's): refuse it and
		// keep waiting for the real one.
		writePage(w, http.StatusBadRequest, failurePage(cb.name, "this is not the sign-in Countersign is waiting for"))
		return
	}
	cb.mu.Lock()
	taken := cb.taken
	cb.taken = true
	cb.mu.Unlock()
	if taken {
		writePage(w, http.StatusConflict, failurePage(cb.name, "this sign-in was already completed"))
		return
	}
	cb.result <- cb.check(q)
	select {
	case p := <-cb.page:
		writePage(w, http.StatusOK, p)
	case <-r.Context().Done():
	case <-time.After(time.Minute):
		writePage(w, http.StatusOK, failurePage(cb.name, "Countersign did not finish in time"))
	}
}

// check validates an authorization response whose state matched.
func (cb *callback) check(q url.Values) callbackResult {
	iss := q.Get("iss")
	switch {
	case iss != "" && iss != cb.as.Issuer:
		return callbackResult{err: fmt.Errorf("%w: the response came from %q, not %q", ErrIssuerMismatch, iss, cb.as.Issuer)}
	case iss == "" && cb.as.AuthorizationResponseIssParameterSupported:
		return callbackResult{err: fmt.Errorf("%w: the response lacks the iss parameter its server promises", ErrIssuerMismatch)}
	}
	if e := q.Get("error"); e != "" {
		return callbackResult{err: &OAuthError{Code: e, Description: q.Get("error_description")}}
	}
	code := q.Get("code")
	if code == "" {
		return callbackResult{err: errors.New("the authorization response holds no code")}
	}
	return callbackResult{code: code}
}

func writePage(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, page)
}

const pageTemplate = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Countersign</title>
<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:36em;padding:0 1em}</style>
</head><body><p>%s</p></body></html>
`

func successPage(name string) string {
	return fmt.Sprintf(pageTemplate, "Signed in to "+html.EscapeString(name)+" — you can close this tab.")
}

func failurePage(name, reason string) string {
	msg := "Signing in to " + html.EscapeString(name) + " did not work"
	if reason != "" {
		msg += ": " + html.EscapeString(reason)
	}
	return fmt.Sprintf(pageTemplate, msg+". You can close this tab and try again in Countersign.")
}
