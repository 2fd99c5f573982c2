package auth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestBearerChallenge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   challenge
		ok     bool
	}{
		{name: "MCP 401 with resource metadata and scope",
			values: []string{`Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="repo read:org"`},
			want:   challenge{ResourceMetadata: "https://mcp.example/.well-known/oauth-protected-resource/mcp", Scopes: []string{"repo", "read:org"}}, ok: true},
		{name: "insufficient scope",
			values: []string{`Bearer error="insufficient_scope", scope="a b", error_description="Token has insufficient scope"`},
			want:   challenge{Error: "insufficient_scope", Scopes: []string{"a", "b"}}, ok: true},
		{name: "scheme is case-insensitive and tokens need no quotes",
			values: []string{`bearer error=invalid_token`},
			want:   challenge{Error: "invalid_token"}, ok: true},
		{name: "Bearer after another challenge",
			values: []string{`Basic realm="x", Bearer scope="s"`},
			want:   challenge{Scopes: []string{"s"}}, ok: true},
		{name: "Bearer after a token68 challenge",
			values: []string{`Negotiate abc==, Bearer error="invalid_token"`},
			want:   challenge{Error: "invalid_token"}, ok: true},
		{name: "second header line",
			values: []string{`Basic realm="x"`, `Bearer scope="s"`},
			want:   challenge{Scopes: []string{"s"}}, ok: true},
		{name: "escaped quotes",
			values: []string{`Bearer error_description="say \"hi\"", scope="a"`},
			want:   challenge{Scopes: []string{"a"}}, ok: true},
		{name: "parameter names are case-insensitive",
			values: []string{`Bearer Scope="a", RESOURCE_METADATA="https://x/m"`},
			want:   challenge{Scopes: []string{"a"}, ResourceMetadata: "https://x/m"}, ok: true},
		{name: "bare Bearer", values: []string{`Bearer`}, want: challenge{}, ok: true},
		{name: "no Bearer", values: []string{`Basic realm="x"`}},
		{name: "no header"},
		{name: "garbage", values: []string{`,,, "=" ,`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("WWW-Authenticate", v)
			}
			got, ok := bearerChallenge(h)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x/y", scope="a b"`,
		`Basic realm="x", Bearer error="insufficient_scope"`,
		`Negotiate abc==, Bearer`,
		`Bearer a="unterminated`,
		`Bearer a="\`,
		`=,=,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ch := range parseChallenges([]string{s}) {
			if ch.scheme == "" {
				t.Fatal("empty scheme")
			}
		}
	})
}

func TestServerMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://auth.example.com", []string{
			"https://auth.example.com/.well-known/oauth-authorization-server",
			"https://auth.example.com/.well-known/openid-configuration",
		}},
		{"https://auth.example.com/tenant1/", []string{
			"https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
			"https://auth.example.com/.well-known/openid-configuration/tenant1",
			"https://auth.example.com/tenant1/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, serverMetadataURLs(tt.issuer)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.issuer, diff)
		}
	}
}

func TestResourceMatches(t *testing.T) {
	r, _ := url.Parse("https://mcp.example.com/v1/mcp")
	tests := []struct {
		declared string
		want     bool
	}{
		{"https://mcp.example.com/v1/mcp", true},
		{"https://MCP.example.com/v1/mcp/", true},
		{"https://mcp.example.com", true},
		{"https://mcp.example.com/v1", true},
		{"https://mcp.example.com/v", false},
		{"https://mcp.example.com/v1/mcp/more", false},
		{"https://evil.example.com/v1/mcp", false},
		{"http://mcp.example.com/v1/mcp", false},
		{"https://mcp.example.com:8443/v1/mcp", false},
		{"https://mcp.example.com/v1/mcp#frag", false},
	}
	for _, tt := range tests {
		if got := resourceMatches(tt.declared, r); got != tt.want {
			t.Errorf("resourceMatches(%q) = %v, want %v", tt.declared, got, tt.want)
		}
	}
}

func TestSelectScopes(t *testing.T) {
	prm := &resourceMetadata{ScopesSupported: []string{"read", "write", "admin"}}
	tests := []struct {
		name       string
		challenged []string
		prm        *resourceMetadata
		asScopes   []string
		allow      []string
		granted    []string
		offline    bool
		want       []string
	}{
		{name: "challenge scope wins", challenged: []string{"read"}, prm: prm, want: []string{"read"}},
		{name: "else scopes_supported", prm: prm, want: []string{"read", "write", "admin"}},
		{name: "else nothing", prm: &resourceMetadata{}},
		{name: "the catalog narrows the challenge", challenged: []string{"read", "admin"}, allow: []string{"read"}, want: []string{"read"}},
		{name: "the catalog narrows scopes_supported", prm: prm, allow: []string{"write", "other"}, want: []string{"write"}},
		{name: "the catalog's own scopes when the server lists none", prm: &resourceMetadata{}, allow: []string{"repo"}, want: []string{"repo"}},
		{name: "step-up keeps what was granted", challenged: []string{"write"}, granted: []string{"read"}, want: []string{"read", "write"}},
		{name: "offline_access when the server lists it", challenged: []string{"read"}, asScopes: []string{"read", "offline_access"}, want: []string{"read", "offline_access"}},
		{name: "no offline_access when it does not", challenged: []string{"read"}, asScopes: []string{"read"}, want: []string{"read"}},
		{name: "offline_access when the server is known to need it", challenged: []string{"read"}, asScopes: []string{"read"}, offline: true, want: []string{"read", "offline_access"}},
		{name: "offline_access once", challenged: []string{"read", "offline_access"}, asScopes: []string{"offline_access"}, offline: true, want: []string{"read", "offline_access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &discovered{prm: tt.prm, as: serverMetadata{ScopesSupported: tt.asScopes}}
			got := selectScopes(tt.challenged, d, tt.allow, tt.granted, tt.offline)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshDue(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration
		at   time.Duration
		want bool
	}{
		{"hour-long token, 2 minutes left", time.Hour, 58 * time.Minute, false},
		{"hour-long token, 30 s left", time.Hour, 59*time.Minute + 30*time.Second, true},
		{"short token, a fifth left", 10 * time.Second, 8 * time.Second, true},
		{"short token, half left", 10 * time.Second, 5 * time.Second, false},
		{"expired", time.Minute, 2 * time.Minute, true},
	}
	for _, tt := range tests {
		s := &session{IssuedAt: t0, Expiry: t0.Add(tt.life)}
		if got := s.refreshDue(t0.Add(tt.at)); got != tt.want {
			t.Errorf("%s: refreshDue = %v", tt.name, got)
		}
	}
	if (&session{}).refreshDue(t0) {
		t.Error("a token without expiry is never due")
	}
}

func TestCheckEndpoint(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://as.example.com/token": true,
		"http://127.0.0.1:9/token":     true,
		"http://localhost:9/token":     true,
		"http://[::1]:9/token":         true,
		"http://as.example.com/token":  false,
		"javascript:alert(1)":          false,
		"file:///etc/passwd":           false,
	} {
		if err := checkEndpoint(raw); (err == nil) != ok {
			t.Errorf("checkEndpoint(%q) = %v", raw, err)
		}
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}`,
		`{"access_token":"jag","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","token_type":"N_A"}`,
		`{"access_token":"at","id_token":"a.b.c","expires_in":"60"}`,
		`{"error":"invalid_grant","error_description":"gone\nforged line"}`,
		`{"access_token":""}`, `[]`, `null`, `{"expires_in":1e400}`, "",
	} {
		f.Add(200, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tr, err := parseTokenResponse(status, body)
		switch {
		case err == nil && (tr == nil || tr.AccessToken == "" || status < 200 || status > 299):
			t.Fatalf("accepted %d %q", status, body)
		case err != nil && tr != nil:
			t.Fatal("a response with an error")
		}
		var oe *OAuthError
		if errors.As(err, &oe) && strings.ContainsFunc(oe.Error(), func(r rune) bool { return r < 0x20 }) {
			t.Fatalf("control characters in %q", oe.Error())
		}
		if err == nil {
			expiresIn(tr.ExpiresIn)
		}
	})
}

func FuzzDecodeJWT(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJFUzI1NiIsInR5cCI6Im9hdXRoLWlkLWphZytqd3QifQ.eyJhdWQiOlsiYSIsImIiXSwiZXhwIjoxLjVlOX0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJhdWQiOiJhIn0.",
		"a.b.c", "..", "", "eyJ9.eyJ9.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		h, c, err := decodeJWT(tok)
		if err != nil {
			if tok != "" && len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Fatal("the error quotes the token")
			}
			return
		}
		if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
			t.Fatalf("accepted an unsigned token: %+v", h)
		}
		c.expiry()
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBi0YVlh2Ee3Vd0n0Cg7U5cI7d2d5oD5VnYy3oS5XyXk\n-----END PRIVATE KEY-----\n")
	f.Add("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	f.Add("not a key")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := parsePrivateKey(s)
		if err == nil && len(keyAlgs(key)) == 0 {
			t.Fatalf("accepted a key that can sign nothing: %T", key)
		}
		if err != nil && len(s) > 16 && strings.Contains(err.Error(), s) {
			t.Fatal("the error quotes the key")
		}
	})
}
