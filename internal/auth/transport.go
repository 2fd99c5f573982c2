package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// refreshTimeout bounds a token refresh. The refresh runs on the Service's
// context, not the caller's: a caller that gives up must not leave the
// others to send a refresh token the server has already spent.
const refreshTimeout = 30 * time.Second

// refreshCall is a token refresh under way; callers that need it share it.
type refreshCall struct {
	done chan struct{}
	tok  string
	err  error
}

// roundTripper adds one server's credentials to requests for its origin.
//
// Before a request it refreshes a token that is about to expire. On a 401
// it refreshes once (unless another request already did) and retries; if
// that cannot help, it waits for a browser sign-in under way, starts one
// when Options.AutoSignIn is set, or else fails with a *SignInError. On a
// 403 insufficient_scope challenge asking for scopes beyond those granted
// (and within the catalog's), it re-authorizes with the union and retries
// once; otherwise the 403 is returned as is. A DPoP-bound token goes with
// the DPoP scheme and a fresh proof (dpop.go); a 401 use_dpop_nonce
// challenge is retried once with the server's nonce. Request bodies are
// replayed with GetBody, or buffered when there is none.
type roundTripper struct {
	s  *Service
	id string
}

// budget bounds what one request may do to recover, so no answer can make
// it loop.
type budget struct {
	retries   int
	refreshed bool
	signedIn  bool
	nonced    bool // retried once with a server's new DPoP nonce
}

// errKeepResponse means a 403 is to be handed back as it is.
var errKeepResponse = errors.New("keep the response")

func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	srv, err := s.lookup(t.id)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if srv.cfg.Kind == KindNone || originOf(req.URL) != originOf(srv.resource) {
		// Not this server's resource: its credentials stay off it.
		return s.o.Transport.RoundTrip(req)
	}
	if srv.aws != nil {
		return s.roundTripAWS(srv, req)
	}
	ctx := req.Context()
	body, err := replayable(req)
	if err != nil {
		return nil, err
	}
	send := func(tok string) (*http.Response, error) {
		r := req.Clone(ctx)
		if body != nil {
			rb, err := body()
			if err != nil {
				return nil, fmt.Errorf("replaying the request body: %w", err)
			}
			r.Body, r.GetBody = rb, body
		}
		r.Header.Del("DPoP")
		key, err := s.boundKey(srv, tok)
		switch {
		case err != nil:
			return nil, err
		case key != nil:
			// RFC 9449 §7.1: the DPoP scheme and a fresh proof per request.
			origin := originOf(r.URL)
			proof, err := key.proof(r.Method, r.URL, tok, s.dpopNonce(origin), s.now())
			if err != nil {
				return nil, fmt.Errorf("signing the DPoP proof: %w", err)
			}
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", proof)
			resp, err := s.o.Transport.RoundTrip(r)
			if err == nil {
				s.keepDPoPNonce(origin, resp.Header)
			}
			return resp, err
		case tok != "":
			r.Header.Set("Authorization", "Bearer "+tok)
		default:
			r.Header.Del("Authorization")
		}
		return s.o.Transport.RoundTrip(r)
	}

	tok, err := s.accessToken(ctx, srv)
	if err != nil {
		return nil, err
	}
	var b budget
	resp, err := send(tok)
	for err == nil {
		var next string
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			ch, _ := bearerChallenge(resp.Header)
			drain(resp)
			if !b.nonced && resp.Header.Get("DPoP-Nonce") != "" && wantsDPoPNonce(resp.Header) {
				// RFC 9449 §9: the server wants its nonce in the proof;
				// send kept it for the retry.
				b.nonced = true
				next = tok
				break
			}
			next, err = s.recover(ctx, srv, tok, ch, &b)
		case resp.StatusCode == http.StatusForbidden:
			ch, _ := bearerChallenge(resp.Header)
			if ch.Error != "insufficient_scope" {
				return resp, nil
			}
			next, err = s.stepUp(ctx, srv, ch, &b)
			if errors.Is(err, errKeepResponse) {
				return resp, nil
			}
			drain(resp)
		default:
			return resp, nil
		}
		if err != nil {
			break
		}
		tok = next
		resp, err = send(tok)
	}
	return nil, err
}

// boundKey returns the DPoP key to present tok with, or nil when tok is
// not DPoP-bound (a bearer token, or none).
func (s *Service) boundKey(srv *server, tok string) (*dpopKey, error) {
	if tok == "" {
		return nil, nil
	}
	s.mu.Lock()
	bound := srv.sess != nil && srv.sess.AccessToken == tok && srv.sess.DPoP
	s.mu.Unlock()
	if !bound {
		return nil, nil
	}
	return s.dpopKeyFor(srv)
}

// replayable returns a function giving a fresh copy of req's body, or nil
// when it has none. The original body is closed (RoundTrip must close it)
// and every attempt reads a copy.
func replayable(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		req.Body.Close()
		return req.GetBody, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// accessToken returns the token to send, refreshing one about to expire.
// "" means none: the request goes without, and its 401 leads to sign-in.
func (s *Service) accessToken(ctx context.Context, srv *server) (string, error) {
	s.mu.Lock()
	if srv.cfg.Kind == KindBearer {
		tok := srv.bearer
		s.mu.Unlock()
		return tok, nil
	}
	sess := srv.sess
	s.mu.Unlock()
	if sess == nil {
		return "", nil
	}
	now := s.now()
	renewable := sess.RefreshToken != "" || srv.cfg.Kind.machine()
	if !renewable || !sess.refreshDue(now) {
		return sess.AccessToken, nil
	}
	tok, err := s.refresh(ctx, srv, sess)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, ErrSignInRequired):
		return "", nil
	case now.Before(sess.Expiry):
		s.log.Warn("early refresh failed; using the current token", "server", srv.id, "err", err)
		return sess.AccessToken, nil
	}
	return "", err
}

// recover handles a 401 to a request sent with sent (maybe "").
func (s *Service) recover(ctx context.Context, srv *server, sent string, ch challenge, b *budget) (string, error) {
	if b.retries++; b.retries > 3 {
		return "", &SignInError{Server: srv.cfg.Name, Reason: "the server keeps refusing the sign-in"}
	}
	s.mu.Lock()
	if srv.cfg.Kind == KindBearer {
		defer s.mu.Unlock()
		if srv.bearer != sent && srv.bearer != "" {
			return srv.bearer, nil // the person entered a new token meanwhile
		}
		reason := "no token has been entered"
		if sent != "" {
			reason = "the server rejected the token: enter a new one"
			s.setStateLocked(srv, StateSignInAgain, reason)
		}
		return "", &SignInError{Server: srv.cfg.Name, Reason: reason}
	}
	srv.pending = ch
	cur := srv.sess
	machine := srv.cfg.Kind.machine()
	ended := srv.state == StateSignInAgain
	s.mu.Unlock()
	if cur != nil && cur.AccessToken != sent {
		return cur.AccessToken, nil // refreshed or signed in meanwhile
	}
	if machine {
		// No person is needed to get a token: ask for one, once, unless
		// the server already refused the credential for good.
		if !ended && !b.refreshed {
			b.refreshed = true
			tok, err := s.refresh(ctx, srv, cur)
			if err == nil {
				return tok, nil
			}
			if !errors.Is(err, ErrSignInRequired) {
				return "", err
			}
		}
		return s.interactive(ctx, srv, b, "")
	}
	if cur != nil && cur.RefreshToken != "" && !b.refreshed {
		b.refreshed = true
		tok, err := s.refresh(ctx, srv, cur)
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, ErrSignInRequired) {
			return "", err // a passing failure: keep the sign-in
		}
	} else if cur != nil {
		s.dropSession(srv, cur, "the server no longer accepts the sign-in")
	}
	return s.interactive(ctx, srv, b, "")
}

// stepUp handles a 403 insufficient_scope challenge.
func (s *Service) stepUp(ctx context.Context, srv *server, ch challenge, b *budget) (string, error) {
	if srv.cfg.Kind != KindOAuth {
		return "", errKeepResponse
	}
	s.mu.Lock()
	if srv.sess == nil {
		s.mu.Unlock()
		return "", errKeepResponse
	}
	granted := srv.sess.Scopes
	extra := restrict(ch.Scopes, srv.cfg.Scopes)
	if len(ch.Scopes) > len(extra) {
		s.log.Warn("the server asks for scopes the catalog does not allow", "server", srv.id, "asked", strings.Join(ch.Scopes, " "))
	}
	if isSubset(extra, granted) || b.signedIn {
		s.mu.Unlock()
		return "", errKeepResponse // nothing more that may be asked for
	}
	srv.pending = challenge{Error: ch.Error, Scopes: extra, ResourceMetadata: ch.ResourceMetadata, DPoP: ch.DPoP || srv.sess.DPoP}
	s.mu.Unlock()
	return s.interactive(ctx, srv, b, srv.cfg.Name+" needs more permissions ("+strings.Join(extra, " ")+")")
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// interactive waits for a browser sign-in: the one under way, or a new
// one when AutoSignIn is set. Otherwise the person is asked, through the
// server's state, to sign in from settings.
func (s *Service) interactive(ctx context.Context, srv *server, b *budget, reason string) (string, error) {
	if b.signedIn {
		return "", &SignInError{Server: srv.cfg.Name, Reason: "the server refused the new sign-in"}
	}
	s.mu.Lock()
	f := srv.flight
	if f == nil && s.o.AutoSignIn {
		f = s.startFlightLocked(srv)
	}
	if f == nil {
		if reason != "" || srv.state == StateSignedIn {
			if reason == "" {
				reason = "the sign-in has ended"
			}
			s.setStateLocked(srv, StateSignInAgain, reason)
		}
		if reason == "" && srv.state == StateSignInAgain {
			reason = srv.reason
		}
		s.mu.Unlock()
		return "", &SignInError{Server: srv.cfg.Name, Reason: reason}
	}
	s.mu.Unlock()
	b.signedIn = true
	if err := await(ctx, f); err != nil {
		return "", fmt.Errorf("signing in to %s: %w", srv.cfg.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv.sess == nil {
		return "", &SignInError{Server: srv.cfg.Name}
	}
	return srv.sess.AccessToken, nil
}

// refresh returns a refreshed token for stale, sharing one refresh among
// all callers. A grant the server has ended gives a *SignInError and the
// "sign in again" state.
func (s *Service) refresh(ctx context.Context, srv *server, stale *session) (string, error) {
	s.mu.Lock()
	if srv.sess != stale {
		cur := srv.sess
		s.mu.Unlock()
		if cur == nil {
			return "", &SignInError{Server: srv.cfg.Name}
		}
		return cur.AccessToken, nil
	}
	call := srv.refreshing
	if call == nil {
		call = &refreshCall{done: make(chan struct{})}
		srv.refreshing = call
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			tok, err := s.doRefresh(srv, stale)
			s.mu.Lock()
			srv.refreshing = nil
			call.tok, call.err = tok, err
			close(call.done)
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.tok, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// doRefresh renews stale: with its refresh token, or for the machine
// kinds by repeating their grant (stale may then be nil: the first token).
func (s *Service) doRefresh(srv *server, stale *session) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, refreshTimeout)
	defer cancel()
	var next *session
	if stale == nil || stale.RefreshToken == "" {
		s.mu.Lock()
		req := srv.pending
		s.mu.Unlock()
		sess, err := s.machineGrant(ctx, srv, stale, req, false)
		if err != nil {
			return "", s.refreshFailed(srv, stale, err)
		}
		next = sess
	} else {
		c := stale.Client
		if srv.cfg.Kind.machine() {
			var err error
			if c, err = s.withCredential(srv, c, nil); err != nil {
				return "", s.refreshFailed(srv, stale, err)
			}
		}
		if stale.DPoP {
			// RFC 9449 §5.2: a public client's refresh token is bound
			// to the key too.
			var err error
			if c.dpop, err = s.dpopKeyFor(srv); err != nil {
				return "", fmt.Errorf("refreshing the sign-in to %s: %w", srv.cfg.Name, err)
			}
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {stale.RefreshToken}}
		if stale.Resource != "" {
			form.Set("resource", stale.Resource)
		}
		tr, err := s.postToken(ctx, stale.TokenEndpoint, c, form)
		if err != nil {
			return "", s.refreshFailed(srv, stale, err)
		}
		n := *stale
		n.Scopes = slices.Clone(stale.Scopes)
		n.apply(tr, s.now(), stale.Scopes)
		next = &n
	}

	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	s.mu.Lock()
	current := srv.sess == stale
	s.mu.Unlock()
	if !current {
		// Signed out or signed in again meanwhile: keep that outcome.
		return next.AccessToken, nil
	}
	// Persist before use: with rotation the old refresh token is spent.
	saveErr := s.saveSession(srv.id, next)
	reason := ""
	if saveErr != nil {
		s.log.Warn("could not save the refreshed sign-in", "server", srv.id, "err", saveErr)
		reason = "the renewed sign-in could not be saved, so it lasts until Countersign quits: " + saveErr.Error()
	}
	s.mu.Lock()
	if srv.sess == stale {
		srv.sess = next
		srv.failures, srv.retryAt = 0, time.Time{}
		s.setStateLocked(srv, StateSignedIn, reason)
	}
	s.mu.Unlock()
	s.wakeRefresher()
	rotated := stale != nil && next.RefreshToken != stale.RefreshToken
	s.log.Debug("refreshed", "server", srv.id, "rotated", rotated)
	return next.AccessToken, nil
}

// refreshFailed handles a failed renewal: a grant the server has ended
// (or a credential that is gone) means "sign in again"; anything else is
// a passing failure, reported as it is.
func (s *Service) refreshFailed(srv *server, stale *session, err error) error {
	var oe *OAuthError
	var se *SignInError
	switch {
	case errors.As(err, &oe) && oe.permanent():
		reason := "the sign-in has ended (" + oe.Code + ")"
		switch srv.cfg.Kind {
		case KindClientCredentials:
			reason = "the authorization server refused the client credentials (" + oe.Code + ")"
		case KindWorkloadIdentity:
			reason = "the authorization server refused the workload identity token (" + oe.Code + "): store a new one"
		}
		s.dropSession(srv, stale, reason)
		s.log.Info("refresh refused: sign in again", "server", srv.id, "error", oe.Code)
		return &SignInError{Server: srv.cfg.Name, Reason: reason}
	case errors.As(err, &se):
		s.dropSession(srv, stale, se.Reason)
		return err
	}
	if stale == nil {
		// The first token of a machine kind: show why it failed.
		s.mu.Lock()
		if srv.sess == nil {
			s.setStateLocked(srv, srv.state, err.Error())
		}
		s.mu.Unlock()
	}
	return fmt.Errorf("refreshing the sign-in to %s: %w", srv.cfg.Name, err)
}

// dropSession forgets a session the server no longer honours, unless a
// newer one replaced it meanwhile.
func (s *Service) dropSession(srv *server, stale *session, reason string) {
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	s.mu.Lock()
	if srv.sess != stale {
		s.mu.Unlock()
		return
	}
	srv.sess = nil
	s.setStateLocked(srv, StateSignInAgain, reason)
	s.mu.Unlock()
	if err := s.o.Vault.Delete(sessionKey(srv.id)); err != nil {
		s.log.Warn("could not delete the ended sign-in", "server", srv.id, "err", err)
	}
}
