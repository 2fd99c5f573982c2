package auth

import (
	"crypto/elliptic"
	"strings"
	"testing"
	"time"
)

// TestWorkloadIdentityGrant: a KindWorkloadIdentity server gets its token
// with the jwt-bearer grant and the stored workload JWT, with no client
// secret; a refused JWT is not sent again, nor another grant tried, until
// a new one is stored.
func TestWorkloadIdentityGrant(t *testing.T) {
	platform := ecKey(t, elliptic.P256())
	a := newTestAS(t)
	workloadJWT := func(aud string) string {
		now := time.Now()
		tok, err := signJWT(platform, "ES256", "", "JWT", map[string]any{
			"iss": "https://platform.example", "sub": "build-agent", "aud": aud,
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a.set(func(a *testAS) {
		a.workload = &platform.PublicKey
		a.clients["wl"] = testClient{method: authNone}
		a.meta = map[string]any{"grant_types_supported": []string{grantJWTBearer}, "token_endpoint_auth_methods_supported": []string{authNone}}
	})
	h := newHarness(t, nil)
	first := workloadJWT(a.issuer())
	h.registerMachine(t, a, func(c *ServerAuth) { c.Kind, c.ClientID = KindWorkloadIdentity, "wl" }, Credential{WorkloadToken: first})
	if err := h.svc.SetCredential("test", Credential{WorkloadToken: "not a jwt"}); err == nil {
		t.Fatal("a token that is no JWT was stored")
	}
	h.mustCall(t, a, "tools/list")
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if len(a.tokenForms) != 1 {
			t.Fatalf("%d token requests, want 1", len(a.tokenForms))
		}
		f := a.tokenForms[0]
		if f.Get("grant_type") != grantJWTBearer || f.Get("assertion") != first || f.Get("client_id") != "wl" || f.Get("resource") != a.resourceURL() || f.Has("client_secret") {
			t.Fatalf("token request %v", f)
		}
		a.refuseWorkload = true
	})

	a.expireAccess()
	if resp, err := h.call(t, a, "tools/list"); err == nil {
		t.Fatalf("HTTP %d after the workload token was refused", resp.StatusCode)
	}
	if resp, err := h.call(t, a, "tools/list"); err == nil {
		t.Fatalf("HTTP %d after the workload token was refused", resp.StatusCode)
	}
	a.set(func(a *testAS) {
		if len(a.tokenForms) != 2 {
			t.Fatalf("%d token requests, want one refused: a refused token is not sent again", len(a.tokenForms))
		}
		for _, f := range a.tokenForms {
			if f.Get("grant_type") != grantJWTBearer {
				t.Fatalf("fell back to %s", f.Get("grant_type"))
			}
		}
		a.refuseWorkload = false
	})
	if st, _ := h.svc.Status("test"); st.State != StateSignInAgain {
		t.Fatalf("status %v %q", st.State, st.Reason)
	}
	if !strings.Contains(h.logs.String(), "refused the workload identity token: store a new one") {
		t.Fatal("the log does not say the workload token must be replaced")
	}

	if err := h.svc.SetCredential("test", Credential{WorkloadToken: workloadJWT(a.issuer())}); err != nil {
		t.Fatal(err)
	}
	h.mustCall(t, a, "tools/list")
}
