package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Grant and token type identifiers.
const (
	grantClientCredentials = "client_credentials"
	// grantJWTBearer is RFC 7523 §2.1's JWT authorization grant.
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// grantTokenExchange is RFC 8693 token exchange.
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
	// tokenTypeIDJAG is the Identity Assertion JWT Authorization Grant
	// (draft-ietf-oauth-identity-assertion-authz-grant), and typIDJAG its
	// JOSE typ header.
	tokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"
	typIDJAG       = "oauth-id-jag+jwt"
)

// loadMachine checks a machine kind's configuration and loads its stored
// credential and ID token.
func (s *Service) loadMachine(srv *server) error {
	cfg := srv.cfg
	if cfg.ClientID == "" {
		return fmt.Errorf("server %s: a client ID is required", srv.id)
	}
	switch cfg.TokenEndpointAuthMethod {
	case "", authBasic, authPost, authKeyJWT:
	case authNone:
		if cfg.Kind == KindClientCredentials {
			return fmt.Errorf("server %s: the client_credentials grant needs client authentication, not %q", srv.id, authNone)
		}
	default:
		return fmt.Errorf("server %s: unknown token endpoint auth method %q", srv.id, cfg.TokenEndpointAuthMethod)
	}
	if cfg.Kind == KindCrossApp {
		idp := cfg.IdP
		if idp == nil || idp.Issuer == "" || idp.ClientID == "" {
			return fmt.Errorf("server %s: cross-app access needs the identity provider's issuer and client ID", srv.id)
		}
		if err := checkEndpoint(idp.Issuer); err != nil {
			return fmt.Errorf("server %s: identity provider: %w", srv.id, err)
		}
		if idp.TokenEndpoint != "" {
			if err := checkEndpoint(idp.TokenEndpoint); err != nil {
				return fmt.Errorf("server %s: identity provider: %w", srv.id, err)
			}
		}
		switch idp.AuthMethod {
		case "", authNone, authBasic, authPost:
		default:
			return fmt.Errorf("server %s: unknown identity provider auth method %q", srv.id, idp.AuthMethod)
		}
		b, err := s.o.Vault.Get(idTokenKey(srv.id))
		switch {
		case err == nil:
			srv.idToken = string(b)
		case !isNotFound(err):
			srv.reason = "the saved organisation sign-in could not be read: " + err.Error()
		}
	}
	b, err := s.o.Vault.Get(credentialKey(srv.id))
	switch {
	case err == nil:
		if json.Unmarshal(b, &srv.cred) != nil {
			srv.reason = "the saved client credential is corrupt: enter it again"
		}
	case isNotFound(err):
		switch cfg.Kind {
		case KindClientCredentials:
			srv.reason = "no client secret or private key has been stored"
		case KindWorkloadIdentity:
			srv.reason = "no workload identity token has been stored"
		}
	default:
		srv.reason = "the saved client credential could not be read: " + err.Error()
	}
	return nil
}

// SetCredential stores the client secret or private key of a
// KindClientCredentials or KindCrossApp server, or the workload token of
// a KindWorkloadIdentity one, in the vault. It checks the material (a key
// must parse and fit the configured method) and never logs it.
func (s *Service) SetCredential(id string, c Credential) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	if !srv.cfg.Kind.machine() {
		return fmt.Errorf("server %s does not take a client credential", id)
	}
	if err := checkCredential(srv.cfg, c); err != nil {
		return fmt.Errorf("the credential for %s: %w", srv.cfg.Name, err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	if err := s.o.Vault.Set(credentialKey(id), b); err != nil {
		return fmt.Errorf("saving the credential for %s: %w", srv.cfg.Name, err)
	}
	s.mu.Lock()
	srv.cred, srv.refused = c, ""
	if srv.sess == nil {
		s.setStateLocked(srv, StateSignedOut, "")
	}
	s.mu.Unlock()
	s.log.Info("client credential saved", "server", id)
	return nil
}

// checkCredential checks c is usable with cfg's authentication method.
func checkCredential(cfg ServerAuth, c Credential) error {
	for _, v := range []string{c.ClientSecret, c.IdPClientSecret} {
		if len(v) > 4096 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errors.New("a client secret is too long or holds control characters")
		}
	}
	if c.PrivateKeyPEM != "" {
		key, err := parsePrivateKey(c.PrivateKeyPEM)
		if err != nil {
			return err
		}
		if cfg.SigningAlgorithm != "" && !slices.Contains(keyAlgs(key), cfg.SigningAlgorithm) {
			return fmt.Errorf("the key cannot sign %s", cfg.SigningAlgorithm)
		}
	}
	switch cfg.TokenEndpointAuthMethod {
	case authBasic, authPost:
		if c.ClientSecret == "" {
			return errors.New("a client secret is required")
		}
	case authKeyJWT:
		if c.PrivateKeyPEM == "" {
			return errors.New("a private key is required")
		}
	case "":
		if c.ClientSecret == "" && c.PrivateKeyPEM == "" && cfg.Kind == KindClientCredentials {
			return errors.New("a client secret or a private key is required")
		}
	}
	if cfg.Kind == KindWorkloadIdentity {
		if c.WorkloadToken == "" {
			return errors.New("a workload identity token is required")
		}
		if len(c.WorkloadToken) > 16384 {
			return errors.New("the workload identity token is too long")
		}
		if _, _, err := decodeJWT(c.WorkloadToken); err != nil {
			return fmt.Errorf("the workload identity token is not a JWT: %w", err)
		}
	}
	if cfg.IdP != nil && cfg.IdP.AuthMethod != "" && cfg.IdP.AuthMethod != authNone && c.IdPClientSecret == "" {
		return errors.New("the identity provider needs a client secret")
	}
	return nil
}

// SetIDToken stores the person's ID token from the organisation's
// identity provider for a KindCrossApp server, for an app that obtained
// it itself (SignIn otherwise signs in at the IdP in the browser). The
// token must come from the configured IdP, for Countersign's client
// there, and not have expired.
func (s *Service) SetIDToken(id, idToken string) error {
	srv, err := s.lookup(id)
	if err != nil {
		return err
	}
	if srv.cfg.Kind != KindCrossApp {
		return fmt.Errorf("server %s does not use cross-app access", id)
	}
	if err := s.checkIDToken(idToken, srv.cfg.IdP, ""); err != nil {
		return err
	}
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	if err := s.o.Vault.Set(idTokenKey(id), []byte(idToken)); err != nil {
		return fmt.Errorf("saving the organisation sign-in for %s: %w", srv.cfg.Name, err)
	}
	s.mu.Lock()
	srv.idToken = idToken
	if srv.sess == nil {
		s.setStateLocked(srv, StateSignedOut, "")
	}
	s.mu.Unlock()
	s.log.Info("organisation sign-in saved", "server", id)
	return nil
}

// checkIDToken checks an ID token's claims (not its signature: the IdP
// that issued it checks that when it is exchanged).
func (s *Service) checkIDToken(tok string, idp *IdentityProvider, nonce string) error {
	_, c, err := decodeJWT(tok)
	if err != nil {
		return fmt.Errorf("the ID token: %w", err)
	}
	if strings.TrimSuffix(c.Issuer, "/") != strings.TrimSuffix(idp.Issuer, "/") {
		return fmt.Errorf("%w: the ID token comes from %q, not %s", ErrIssuerMismatch, printable(c.Issuer, 200), idp.Issuer)
	}
	if !slices.Contains(c.Audience, idp.ClientID) {
		return fmt.Errorf("%w: the ID token is not for Countersign's client %s", ErrAudienceMismatch, idp.ClientID)
	}
	if exp := c.expiry(); exp.IsZero() || !s.now().Before(exp) {
		return &SignInError{Server: "your organisation's account", Reason: "the ID token has expired"}
	}
	if nonce != "" && c.Nonce != nonce {
		return errors.New("the ID token's nonce does not match the sign-in")
	}
	return nil
}

// machineSignIn gets a token with a machine kind's grant after discovery,
// from SignIn (which may open the browser at the IdP).
func (s *Service) machineSignIn(ctx context.Context, srv *server, req challenge) (*session, error) {
	return s.machineGrant(ctx, srv, nil, req, true)
}

// machineGrant runs a machine kind's grant: for stale, with what stale's
// sign-in discovered; else after discovery, starting from req. Only
// browser may open the browser (to sign in at the IdP).
func (s *Service) machineGrant(ctx context.Context, srv *server, stale *session, req challenge, browser bool) (*session, error) {
	var tmpl session
	if stale != nil {
		tmpl = *stale
		tmpl.Scopes = slices.Clone(stale.Scopes)
		c, err := s.withCredential(srv, stale.Client, nil)
		if err != nil {
			return nil, err
		}
		if stale.DPoP {
			if c.dpop, err = s.dpopKeyFor(srv); err != nil {
				return nil, err
			}
		}
		tmpl.Client = c
	} else {
		if req.ResourceMetadata == "" && len(req.Scopes) == 0 {
			req = s.probe(ctx, srv.resource)
		}
		d, err := s.discover(ctx, srv.resource, req, srv.cfg.AuthorizationServer)
		if err != nil {
			return nil, err
		}
		grant := grantClientCredentials
		if srv.cfg.Kind == KindCrossApp || srv.cfg.Kind == KindWorkloadIdentity {
			grant = grantJWTBearer
		}
		if len(d.as.GrantTypesSupported) > 0 && !slices.Contains(d.as.GrantTypesSupported, grant) {
			return nil, fmt.Errorf("%w: %s lists %q, not %s", ErrGrantUnsupported, d.as.Issuer, d.as.GrantTypesSupported, grant)
		}
		var granted []string
		if req.Error == "insufficient_scope" {
			s.mu.Lock()
			if srv.sess != nil && srv.sess.Issuer == d.as.Issuer {
				granted = srv.sess.Scopes
			}
			s.mu.Unlock()
		}
		// No offline_access: these grants are repeated, not refreshed.
		scopes := slices.DeleteFunc(selectScopes(req.Scopes, d, srv.cfg.Scopes, granted, false), func(sc string) bool { return sc == "offline_access" })
		c, err := s.machineClient(srv, d.as)
		if err != nil {
			return nil, err
		}
		if useDPoP(d, req) {
			if c.dpop, err = s.dpopKeyFor(srv); err != nil {
				return nil, err
			}
		}
		tmpl = session{
			Resource:           d.resource,
			Issuer:             d.as.Issuer,
			TokenEndpoint:      d.as.TokenEndpoint,
			RevocationEndpoint: d.as.RevocationEndpoint,
			Scopes:             scopes,
			Client:             c,
		}
	}
	var tr *tokenResponse
	var err error
	switch srv.cfg.Kind {
	case KindCrossApp:
		tr, err = s.crossApp(ctx, srv, &tmpl, browser)
	case KindWorkloadIdentity:
		tr, err = s.workloadGrant(ctx, srv, &tmpl)
	default:
		tr, err = s.clientCredentials(ctx, srv, &tmpl)
	}
	if err != nil {
		return nil, err
	}
	sess := tmpl
	sess.Client.Secret, sess.Client.key, sess.Client.dpop = "", nil, nil // the vault holds them
	sess.RefreshToken = ""
	sess.apply(tr, s.now(), tmpl.Scopes)
	return &sess, nil
}

// machineClient is the client identity of a machine kind at as, with its
// credential: the configured method, or the one the credential and the
// server's metadata allow.
func (s *Service) machineClient(srv *server, as serverMetadata) (client, error) {
	s.mu.Lock()
	cred := srv.cred
	s.mu.Unlock()
	cfg := srv.cfg
	supported := as.TokenEndpointAuthMethodsSupported
	if len(supported) == 0 {
		supported = []string{authBasic} // RFC 8414 §2's default
	}
	method := cfg.TokenEndpointAuthMethod
	if method == "" {
		switch {
		case cred.PrivateKeyPEM != "" && (cred.ClientSecret == "" || slices.Contains(supported, authKeyJWT)):
			method = authKeyJWT
		case cred.ClientSecret != "":
			method = authBasic
			if !slices.Contains(supported, authBasic) && slices.Contains(supported, authPost) {
				method = authPost
			}
		case cfg.Kind == KindCrossApp || cfg.Kind == KindWorkloadIdentity:
			method = authNone
		default:
			return client{}, &SignInError{Server: cfg.Name, Reason: "no client secret or private key has been stored"}
		}
	}
	if !slices.Contains(supported, method) {
		return client{}, fmt.Errorf("%w: %s accepts %s, not %s", ErrAuthMethodUnsupported, as.Issuer, strings.Join(supported, ", "), method)
	}
	c := client{ID: cfg.ClientID, AuthMethod: method, Issuer: as.Issuer, Source: "machine", KeyID: cfg.KeyID}
	return s.withCredential(srv, c, as.TokenEndpointAuthSigningAlgValuesSupported)
}

// withCredential adds the stored secret or key c's method needs, choosing
// the signing algorithm among algs when c has none yet.
func (s *Service) withCredential(srv *server, c client, algs []string) (client, error) {
	s.mu.Lock()
	cred := srv.cred
	s.mu.Unlock()
	return attachCredential(c, cred, srv.cfg, algs)
}

func attachCredential(c client, cred Credential, cfg ServerAuth, algs []string) (client, error) {
	switch c.AuthMethod {
	case authBasic, authPost:
		if cred.ClientSecret == "" {
			return client{}, &SignInError{Server: cfg.Name, Reason: "no client secret has been stored"}
		}
		c.Secret = cred.ClientSecret
	case authKeyJWT:
		if cred.PrivateKeyPEM == "" {
			return client{}, &SignInError{Server: cfg.Name, Reason: "no private key has been stored"}
		}
		key, err := parsePrivateKey(cred.PrivateKeyPEM)
		if err != nil {
			return client{}, fmt.Errorf("the stored private key: %w", err)
		}
		if c.Alg == "" {
			if c.Alg, err = chooseAlg(key, cfg.SigningAlgorithm, algs); err != nil {
				return client{}, err
			}
		}
		c.key = key
	}
	return c, nil
}

// clientCredentials runs the client_credentials grant (RFC 6749 §4.4,
// SEP-1046) for tmpl's resource and scopes.
func (s *Service) clientCredentials(ctx context.Context, srv *server, tmpl *session) (*tokenResponse, error) {
	form := url.Values{"grant_type": {grantClientCredentials}, "resource": {tmpl.Resource}}
	if len(tmpl.Scopes) > 0 {
		form.Set("scope", strings.Join(tmpl.Scopes, " "))
	}
	s.log.Info("requesting a token with client credentials", "server", srv.id, "issuer", tmpl.Issuer, "auth", tmpl.Client.AuthMethod)
	tr, err := s.postToken(ctx, tmpl.TokenEndpoint, tmpl.Client, form)
	if err != nil {
		return nil, fmt.Errorf("client credentials grant at %s: %w", tmpl.Issuer, err)
	}
	return tr, nil
}

// workloadGrant runs workload identity federation (SEP-1933): the stored
// workload JWT is the assertion of the jwt-bearer grant (RFC 7523 §2.1)
// for tmpl's resource and scopes. A refusal is final: the same token is
// never sent again, nor another grant tried, until SetCredential stores
// a new one.
func (s *Service) workloadGrant(ctx context.Context, srv *server, tmpl *session) (*tokenResponse, error) {
	s.mu.Lock()
	assertion, refused := srv.cred.WorkloadToken, srv.refused
	s.mu.Unlock()
	switch assertion {
	case "":
		return nil, &SignInError{Server: srv.cfg.Name, Reason: "no workload identity token has been stored"}
	case refused:
		return nil, &SignInError{Server: srv.cfg.Name, Reason: "the authorization server refused the workload identity token: store a new one"}
	}
	form := url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}, "resource": {tmpl.Resource}}
	if len(tmpl.Scopes) > 0 {
		form.Set("scope", strings.Join(tmpl.Scopes, " "))
	}
	s.log.Info("requesting a token with the workload identity", "server", srv.id, "issuer", tmpl.Issuer)
	tr, err := s.postToken(ctx, tmpl.TokenEndpoint, tmpl.Client, form)
	var oe *OAuthError
	if errors.As(err, &oe) && oe.permanent() {
		s.mu.Lock()
		srv.refused = assertion
		s.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("workload identity grant at %s: %w", tmpl.Issuer, err)
	}
	return tr, nil
}

// crossApp runs cross-app access (SEP-990): the person's ID token is
// exchanged at the IdP for an identity assertion grant for tmpl's
// authorization server and resource (RFC 8693), which that server's token
// endpoint turns into an access token (RFC 7523 §2.1).
func (s *Service) crossApp(ctx context.Context, srv *server, tmpl *session, browser bool) (*tokenResponse, error) {
	idp := srv.cfg.IdP
	idToken, err := s.idTokenFor(ctx, srv, browser)
	if err != nil {
		return nil, err
	}
	endpoint, err := s.idpTokenEndpoint(ctx, idp)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	idpClient := client{ID: idp.ClientID, AuthMethod: idp.AuthMethod, Secret: srv.cred.IdPClientSecret, Issuer: idp.Issuer}
	s.mu.Unlock()
	if idpClient.AuthMethod == "" {
		idpClient.AuthMethod = authNone
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"requested_token_type": {tokenTypeIDJAG},
		"audience":             {tmpl.Issuer},
		"resource":             {tmpl.Resource},
		"subject_token":        {idToken},
		"subject_token_type":   {tokenTypeIDToken},
	}
	if len(tmpl.Scopes) > 0 {
		form.Set("scope", strings.Join(tmpl.Scopes, " "))
	}
	s.log.Info("exchanging the organisation sign-in for an identity assertion", "server", srv.id, "idp", idp.Issuer, "audience", tmpl.Issuer)
	tr, err := s.tokenRequest(ctx, endpoint, idpClient, form)
	if err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) && oe.Code == "invalid_grant" {
			// The IdP no longer honours the ID token: the person must
			// sign in to the organisation again.
			s.forgetIDToken(srv, idToken)
			return nil, &SignInError{Server: srv.cfg.Name, Reason: "your organisation's sign-in has ended (" + oe.Code + ")"}
		}
		return nil, fmt.Errorf("token exchange at the identity provider %s: %w", idp.Issuer, err)
	}
	if tr.IssuedTokenType != tokenTypeIDJAG {
		return nil, fmt.Errorf("the identity provider issued a %q token, not an identity assertion grant", printable(tr.IssuedTokenType, 100))
	}
	if err := s.checkIDJAG(tr.AccessToken, tmpl, srv.cfg.ClientID); err != nil {
		return nil, err
	}
	form = url.Values{"grant_type": {grantJWTBearer}, "assertion": {tr.AccessToken}, "resource": {tmpl.Resource}}
	if len(tmpl.Scopes) > 0 {
		form.Set("scope", strings.Join(tmpl.Scopes, " "))
	}
	at, err := s.postToken(ctx, tmpl.TokenEndpoint, tmpl.Client, form)
	if err != nil {
		return nil, fmt.Errorf("identity assertion grant at %s: %w", tmpl.Issuer, err)
	}
	return at, nil
}

// checkIDJAG checks the identity assertion grant the IdP issued is for
// the authorization server, resource and client it will be presented as,
// so a misissued grant fails here, clearly, and is never sent elsewhere.
func (s *Service) checkIDJAG(jag string, tmpl *session, clientID string) error {
	h, c, err := decodeJWT(jag)
	if err != nil {
		return fmt.Errorf("the identity assertion grant: %w", err)
	}
	if !strings.EqualFold(h.Typ, typIDJAG) {
		return fmt.Errorf("the identity assertion grant has type %q, not %s", printable(h.Typ, 100), typIDJAG)
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(tmpl.Issuer, "/") }) {
		return fmt.Errorf("%w: the identity assertion grant is for %q, not %s", ErrAudienceMismatch, printable(strings.Join(c.Audience, " "), 200), tmpl.Issuer)
	}
	if c.Resource != "" && c.Resource != tmpl.Resource {
		return fmt.Errorf("%w: the identity assertion grant is for %q, not %s", ErrResourceMismatch, printable(c.Resource, 200), tmpl.Resource)
	}
	if c.ClientID != "" && c.ClientID != clientID {
		return fmt.Errorf("%w: the identity assertion grant is for the client %q, not %s", ErrAudienceMismatch, printable(c.ClientID, 200), clientID)
	}
	if exp := c.expiry(); !exp.IsZero() && !s.now().Before(exp) {
		return errors.New("the identity assertion grant has already expired")
	}
	return nil
}

// idTokenFor returns the person's current ID token, signing in at the IdP
// in the browser when there is none (or it expired) and browser allows.
func (s *Service) idTokenFor(ctx context.Context, srv *server, browser bool) (string, error) {
	s.mu.Lock()
	tok := srv.idToken
	s.mu.Unlock()
	if tok != "" {
		err := s.checkIDToken(tok, srv.cfg.IdP, "")
		if err == nil {
			return tok, nil
		}
		s.log.Info("the organisation sign-in is no longer usable", "server", srv.id, "err", err)
		s.forgetIDToken(srv, tok)
	}
	if !browser || s.o.OpenURL == nil {
		return "", &SignInError{Server: srv.cfg.Name, Reason: "sign in with your organisation's account"}
	}
	tok, err := s.idpSignIn(ctx, srv)
	if err != nil {
		return "", fmt.Errorf("signing in at the identity provider: %w", err)
	}
	srv.storeMu.Lock()
	if err := s.o.Vault.Set(idTokenKey(srv.id), []byte(tok)); err != nil {
		s.log.Warn("could not save the organisation sign-in", "server", srv.id, "err", err)
	}
	srv.storeMu.Unlock()
	s.mu.Lock()
	srv.idToken = tok
	s.mu.Unlock()
	return tok, nil
}

// forgetIDToken drops an ID token that can no longer be used, unless it
// was replaced meanwhile.
func (s *Service) forgetIDToken(srv *server, tok string) {
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	s.mu.Lock()
	if srv.idToken != tok {
		s.mu.Unlock()
		return
	}
	srv.idToken = ""
	s.mu.Unlock()
	if err := s.o.Vault.Delete(idTokenKey(srv.id)); err != nil && !isNotFound(err) {
		s.log.Warn("could not delete the ended organisation sign-in", "server", srv.id, "err", err)
	}
}

// idpMetadata reads the IdP's OpenID configuration (or RFC 8414
// metadata) and checks its issuer and endpoints.
func (s *Service) idpMetadata(ctx context.Context, idp *IdentityProvider) (serverMetadata, error) {
	as, found, err := s.fetchServerMetadata(ctx, serverMetadataURLs(idp.Issuer))
	if err != nil {
		return as, fmt.Errorf("identity provider: %w", err)
	}
	if !found {
		return as, fmt.Errorf("no OpenID configuration found for the identity provider %s", idp.Issuer)
	}
	if strings.TrimSuffix(as.Issuer, "/") != strings.TrimSuffix(idp.Issuer, "/") {
		return as, fmt.Errorf("%w: the identity provider's configuration declares %q, not %s", ErrIssuerMismatch, as.Issuer, idp.Issuer)
	}
	for _, e := range []string{as.AuthorizationEndpoint, as.TokenEndpoint} {
		if e == "" {
			continue
		}
		if err := checkEndpoint(e); err != nil {
			return as, err
		}
	}
	if idp.TokenEndpoint != "" {
		as.TokenEndpoint = idp.TokenEndpoint
	}
	if as.TokenEndpoint == "" {
		return as, errors.New("the identity provider's configuration lacks a token endpoint")
	}
	return as, nil
}

func (s *Service) idpTokenEndpoint(ctx context.Context, idp *IdentityProvider) (string, error) {
	if idp.TokenEndpoint != "" {
		return idp.TokenEndpoint, nil
	}
	as, err := s.idpMetadata(ctx, idp)
	if err != nil {
		return "", err
	}
	return as.TokenEndpoint, nil
}

// idpSignIn signs the person in at the organisation's IdP in the browser
// (OpenID Connect authorization code flow with PKCE S256 and a nonce) and
// returns the ID token.
func (s *Service) idpSignIn(ctx context.Context, srv *server) (string, error) {
	idp := srv.cfg.IdP
	as, err := s.idpMetadata(ctx, idp)
	if err != nil {
		return "", err
	}
	if err := checkAuthorizationCode(as, false); err != nil {
		return "", err
	}
	ln, err := listenLoopback(idp.RedirectPort)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	cl := client{ID: idp.ClientID, AuthMethod: idp.AuthMethod, Secret: srv.cred.IdPClientSecret, Issuer: as.Issuer}
	s.mu.Unlock()
	if cl.AuthMethod == "" {
		cl.AuthMethod = authNone
	}
	nonce := randomString()
	params := url.Values{"scope": {strings.Join(union([]string{"openid"}, idp.Scopes), " ")}, "nonce": {nonce}}
	s.log.Info("signing in at the identity provider: opening the browser", "server", srv.id, "idp", idp.Issuer)
	ar, err := s.authorize(ctx, ln, as, cl, srv.cfg.Name, params)
	if err != nil {
		return "", err
	}
	defer ar.cb.close()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {ar.code},
		"redirect_uri":  {ar.redirect},
		"code_verifier": {ar.verifier},
	}
	tr, err := s.tokenRequest(ctx, as.TokenEndpoint, cl, form)
	if err == nil && tr.IDToken == "" {
		err = errors.New("the identity provider issued no ID token")
	}
	if err == nil {
		err = s.checkIDToken(tr.IDToken, idp, nonce)
	}
	if err != nil {
		ar.cb.finish(false, "Countersign could not complete it")
		return "", err
	}
	ar.cb.finish(true, "")
	return tr.IDToken, nil
}
