package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxDocument caps the metadata and token documents read from a server.
const maxDocument = 1 << 20

// resourceMetadata is RFC 9728 protected resource metadata.
type resourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
	// DPoPSigningAlgValuesSupported and DPoPBoundAccessTokensRequired say
	// the resource accepts DPoP-bound tokens (RFC 9728 §2).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	DPoPBoundAccessTokensRequired bool     `json:"dpop_bound_access_tokens_required"`
}

// serverMetadata is RFC 8414 authorization server metadata (or the OpenID
// Connect discovery document, which shares these fields).
type serverMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// TokenEndpointAuthSigningAlgValuesSupported lists the JWS algorithms
	// accepted for private_key_jwt.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	// ClientIDMetadataDocumentSupported advertises Client ID Metadata
	// Documents (draft-ietf-oauth-client-id-metadata-document).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported"`
	// AuthorizationResponseIssParameterSupported advertises RFC 9207.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// DPoPSigningAlgValuesSupported lists the DPoP proof algorithms the
	// server accepts (RFC 9449 §5.1); see dpop.go.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

// discovered is everything discovery learned about where and how to sign in.
type discovered struct {
	resource string            // RFC 8707 resource indicator to send
	prm      *resourceMetadata // nil when the server publishes none (2025-03-26)
	as       serverMetadata
	// defaultEndpoints is set when the server published no metadata at all
	// and the 2025-03-26 default endpoints (/authorize, /token, /register
	// on the server's origin) are used.
	defaultEndpoints bool
}

// discover finds the protected resource metadata and the authorization
// server metadata for r, starting from the server's challenge when there
// is one, with the MCP authorization spec's fallbacks.
func (s *Service) discover(ctx context.Context, r *url.URL, ch challenge, pinnedIssuer string) (*discovered, error) {
	prm, err := s.fetchResourceMetadata(ctx, r, ch.ResourceMetadata)
	if err != nil {
		return nil, err
	}
	d := &discovered{resource: canonicalResource(r), prm: prm}
	if prm == nil {
		// 2025-03-26: no protected resource metadata; the server's origin
		// is the authorization server, with metadata at the root, or else
		// the default endpoints.
		origin := originOf(r)
		as, found, err := s.fetchServerMetadata(ctx, []string{origin + "/.well-known/oauth-authorization-server"})
		if err != nil {
			return nil, err
		}
		if !found {
			as = serverMetadata{
				Issuer:                origin,
				AuthorizationEndpoint: origin + "/authorize",
				TokenEndpoint:         origin + "/token",
				RegistrationEndpoint:  origin + "/register",
			}
			d.defaultEndpoints = true
		}
		d.as = as
	} else {
		if prm.Resource != "" {
			if !resourceMatches(prm.Resource, r) {
				return nil, fmt.Errorf("%w: the server's metadata names %q, not %s", ErrResourceMismatch, prm.Resource, canonicalResource(r))
			}
			d.resource = prm.Resource
		}
		issuer, err := chooseIssuer(prm.AuthorizationServers, pinnedIssuer)
		if err != nil {
			return nil, err
		}
		as, found, err := s.fetchServerMetadata(ctx, serverMetadataURLs(issuer))
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: none found for %s", ErrMetadataMissing, issuer)
		}
		if strings.TrimSuffix(as.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
			return nil, fmt.Errorf("%w: metadata fetched for %s declares issuer %q", ErrIssuerMismatch, issuer, as.Issuer)
		}
		d.as = as
	}
	for _, e := range []string{d.as.AuthorizationEndpoint, d.as.TokenEndpoint, d.as.RegistrationEndpoint, d.as.RevocationEndpoint} {
		if e == "" {
			continue
		}
		if err := checkEndpoint(e); err != nil {
			return nil, err
		}
	}
	if d.as.TokenEndpoint == "" {
		return nil, fmt.Errorf("%w: it lacks a token endpoint", ErrMetadataMissing)
	}
	return d, nil
}

// checkAuthorizationCode refuses an authorization server the
// authorization code flow cannot safely use: one without an authorization
// endpoint, or without PKCE S256.
func checkAuthorizationCode(as serverMetadata, defaultEndpoints bool) error {
	if as.AuthorizationEndpoint == "" {
		return fmt.Errorf("%w: it lacks an authorization endpoint", ErrMetadataMissing)
	}
	if !defaultEndpoints && !slices.Contains(as.CodeChallengeMethodsSupported, "S256") {
		return fmt.Errorf("%w (it lists %q)", ErrPKCEUnsupported, as.CodeChallengeMethodsSupported)
	}
	return nil
}

// chooseIssuer picks the authorization server: the pinned one, which must
// be listed, or else the first listed.
func chooseIssuer(listed []string, pinned string) (string, error) {
	if len(listed) == 0 {
		return "", fmt.Errorf("%w: the protected resource metadata lists no authorization server", ErrMetadataMissing)
	}
	if pinned == "" {
		if err := checkEndpoint(listed[0]); err != nil {
			return "", err
		}
		return listed[0], nil
	}
	for _, l := range listed {
		if strings.TrimSuffix(l, "/") == strings.TrimSuffix(pinned, "/") {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w: the server names %q, not the configured %s", ErrIssuerMismatch, listed, pinned)
}

// fetchResourceMetadata gets the protected resource metadata from the
// challenge's resource_metadata URL, or else from the well-known URIs
// (path-suffixed first). It returns nil, nil when the server has none.
func (s *Service) fetchResourceMetadata(ctx context.Context, r *url.URL, advertised string) (*resourceMetadata, error) {
	var urls []string
	if advertised != "" {
		u, err := url.Parse(advertised)
		if err != nil || originOf(u) != originOf(r) {
			return nil, fmt.Errorf("the server's resource_metadata URL %q is not on its own origin", advertised)
		}
		urls = []string{u.String()}
	} else {
		origin := originOf(r)
		if p := strings.TrimSuffix(r.EscapedPath(), "/"); p != "" {
			urls = append(urls, origin+"/.well-known/oauth-protected-resource"+p)
		}
		urls = append(urls, origin+"/.well-known/oauth-protected-resource")
	}
	for _, u := range urls {
		var m resourceMetadata
		found, err := s.getJSON(ctx, u, &m)
		if err != nil {
			return nil, fmt.Errorf("reading protected resource metadata: %w", err)
		}
		if found {
			return &m, nil
		}
	}
	if advertised != "" {
		return nil, fmt.Errorf("%w: the server's resource_metadata URL %s has none", ErrMetadataMissing, advertised)
	}
	return nil, nil
}

// serverMetadataURLs lists where an issuer's metadata may be, in the MCP
// spec's order: RFC 8414 path-inserted, OIDC path-inserted, OIDC appended
// (for an issuer with a path); RFC 8414 then OIDC (without).
func serverMetadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	origin := originOf(u)
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}
}

func (s *Service) fetchServerMetadata(ctx context.Context, urls []string) (serverMetadata, bool, error) {
	for _, u := range urls {
		var m serverMetadata
		found, err := s.getJSON(ctx, u, &m)
		if err != nil {
			return serverMetadata{}, false, fmt.Errorf("reading authorization server metadata: %w", err)
		}
		if found {
			return m, true, nil
		}
	}
	return serverMetadata{}, false, nil
}

// getJSON fetches a metadata document. found is false for a 4xx answer,
// which the discovery order treats as "try the next location".
func (s *Service) getJSON(ctx context.Context, u string, into any) (found bool, err error) {
	if err := checkEndpoint(u); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", u, err)
	}
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("GET %s: %w", u, &StatusError{Status: resp.StatusCode})
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(into); err != nil {
		return false, fmt.Errorf("GET %s: invalid JSON: %w", u, err)
	}
	return true, nil
}

// originOf is scheme://host[:port], lowercased.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// canonicalResource is the MCP server's canonical URI (RFC 8707 §2): the
// configured URL with lowercase scheme and host and no fragment or query.
func canonicalResource(u *url.URL) string {
	c := *u
	c.Scheme = strings.ToLower(c.Scheme)
	c.Host = strings.ToLower(c.Host)
	c.Fragment, c.RawFragment, c.RawQuery = "", "", ""
	return c.String()
}

// resourceMatches reports whether a protected resource metadata document's
// resource identifier covers the server at r: same origin, and a path that
// is r's path or a segment-wise prefix of it (a server at /mcp may declare
// its origin).
func resourceMatches(declared string, r *url.URL) bool {
	d, err := url.Parse(declared)
	if err != nil || d.Fragment != "" || originOf(d) != originOf(r) {
		return false
	}
	dp := strings.TrimSuffix(d.EscapedPath(), "/")
	rp := strings.TrimSuffix(r.EscapedPath(), "/")
	return dp == "" || dp == rp || strings.HasPrefix(rp, dp+"/")
}

// checkEndpoint allows https URLs, and http only to a loopback host.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid endpoint URL %q", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("refusing endpoint %s: only https, or http on this computer, is allowed", raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
