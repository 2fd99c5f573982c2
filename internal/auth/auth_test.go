package auth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSignInDiscoversRegistersAndUsesTheToken(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	changed, stop := h.svc.Subscribe()
	defer stop()

	h.mustCall(t, a, "tools/list")

	page, code := h.browser.lastPage()
	if code != 200 || !strings.Contains(page, "Signed in to Test — you can close this tab.") {
		t.Fatalf("callback page %d %q", code, page)
	}
	st, _ := h.svc.Status("test")
	want := Status{Server: "test", Name: "Test", Kind: KindOAuth, State: StateSignedIn, Scopes: []string{"read", "write"}, Expiry: h.clock.Now().Add(time.Hour)}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("status (-want +got):\n%s", diff)
	}
	select {
	case <-changed:
	default:
		t.Fatal("no change notification")
	}
	a.set(func(a *testAS) {
		if len(a.registers) != 1 || len(a.authorizes) != 1 {
			t.Fatalf("%d registrations, %d authorizations; want 1 each", len(a.registers), len(a.authorizes))
		}
		q := a.authorizes[0]
		if q.Get("resource") != a.resourceURL() || q.Get("code_challenge_method") != "S256" || q.Get("scope") != "read write" {
			t.Fatalf("authorization request %v", q)
		}
		if !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") || !strings.HasSuffix(q.Get("redirect_uri"), "/callback") {
			t.Fatalf("redirect_uri %q", q.Get("redirect_uri"))
		}
		if got := a.tokenForms[0].Get("resource"); got != a.resourceURL() {
			t.Fatalf("token request resource %q", got)
		}
		reg := a.registers[0]
		if reg["token_endpoint_auth_method"] != "none" || reg["client_name"] != "Countersign" {
			t.Fatalf("registration %v", reg)
		}
	})
	// Nothing listens on the redirect port once the sign-in is over.
	ru, _ := url.Parse(h.browser.opened[0].Query().Get("redirect_uri"))
	if c, err := net.DialTimeout("tcp", ru.Host, time.Second); err == nil {
		c.Close()
		t.Fatalf("the redirect listener %s is still open", ru.Host)
	}
	// The token is used without a new sign-in.
	h.mustCall(t, a, "tools/list")
	if n := a.count(func(a *testAS) int { return len(a.authorizes) }); n != 1 {
		t.Fatalf("%d authorizations", n)
	}
}

func TestSignInRefusals(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(a *testAS)
		tamper    func(u *url.URL)
		want      error
		authorize bool // whether the browser may reach the authorization endpoint
	}{
		{name: "no S256 in code_challenge_methods_supported", setup: func(a *testAS) { a.meta = map[string]any{"code_challenge_methods_supported": []string{"plain"}} }, want: ErrPKCEUnsupported},
		{name: "no code_challenge_methods_supported at all", setup: func(a *testAS) { a.meta = map[string]any{"code_challenge_methods_supported": nil} }, want: ErrPKCEUnsupported},
		{name: "metadata declares another issuer", setup: func(a *testAS) { a.meta = map[string]any{"issuer": "https://evil.example.com"} }, want: ErrIssuerMismatch},
		{name: "protected resource names another resource", setup: func(a *testAS) { a.prm = map[string]any{"resource": "https://evil.example.com/mcp"} }, want: ErrResourceMismatch},
		{name: "iss parameter from another issuer", setup: func(a *testAS) { a.issParam = "https://evil.example.com" }, want: ErrIssuerMismatch, authorize: true},
		{name: "iss parameter missing though advertised", setup: func(a *testAS) {
			a.issParam = "-"
			a.meta = map[string]any{"authorization_response_iss_parameter_supported": true}
		}, want: ErrIssuerMismatch, authorize: true},
		{name: "the person declines", setup: func(a *testAS) { a.denyAuthorize = "access_denied" }, want: &OAuthError{}, authorize: true},
		{name: "a callback with the wrong state is not accepted", tamper: func(u *url.URL) {
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
		}, want: ErrSignInTimedOut, authorize: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			if tt.setup != nil {
				a.set(tt.setup)
			}
			h := newHarness(t, func(o *Options) { o.SignInTimeout = time.Second })
			h.browser.tamper = tt.tamper
			h.register(t, a, nil)
			err := h.svc.SignIn(context.Background(), "test")
			var oe *OAuthError
			if _, isOAuth := tt.want.(*OAuthError); isOAuth {
				if !errors.As(err, &oe) || oe.Code != "access_denied" {
					t.Fatalf("err = %v, want access_denied", err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			n := a.count(func(a *testAS) int { return len(a.authorizes) })
			if tt.authorize != (n > 0) {
				t.Fatalf("%d authorization requests; want any: %v", n, tt.authorize)
			}
			if n := a.count(func(a *testAS) int { return len(a.tokenForms) }); n != 0 {
				t.Fatalf("%d token requests after a refusal", n)
			}
			if h.storedSession(t) != nil {
				t.Fatal("a session was stored")
			}
			st, _ := h.svc.Status("test")
			if st.State != StateSignedOut || st.Reason == "" {
				t.Fatalf("status %+v, want signed out with a reason", st)
			}
			if tt.tamper != nil {
				page, code := h.browser.lastPage()
				if code != 400 || !strings.Contains(page, "not the sign-in Countersign is waiting for") {
					t.Fatalf("forged callback got %d %q", code, page)
				}
			}
		})
	}
}

func TestAccessDeniedShowsAnErrorPage(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.denyAuthorize = "access_denied" })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.svc.SignIn(context.Background(), "test")
	page, code := h.browser.lastPage()
	if code != 200 || !strings.Contains(page, "Signing in to Test did not work") || !strings.Contains(page, "access_denied") {
		t.Fatalf("page %d %q", code, page)
	}
}

func TestStepUpAsksForTheUnionOfScopes(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.challengeScp = "read"
		a.needScope["tools/call"] = "write"
	})
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if len(a.authorizes) != 2 {
			t.Fatalf("%d authorizations, want 2", len(a.authorizes))
		}
		if got := a.authorizes[1].Get("scope"); got != "read write" {
			t.Fatalf("step-up asked for %q, want the union %q", got, "read write")
		}
		if len(a.registers) != 1 {
			t.Fatalf("%d registrations: the step-up should reuse the client", len(a.registers))
		}
	})
	st, _ := h.svc.Status("test")
	if diff := cmp.Diff([]string{"read", "write"}, st.Scopes); diff != "" {
		t.Fatal(diff)
	}
}

func TestStepUpStaysWithinTheCatalogScopes(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.challengeScp = "read"
		a.needScope["tools/call"] = "admin"
	})
	h := newHarness(t, nil)
	h.register(t, a, func(c *ServerAuth) { c.Scopes = []string{"read", "write"} })
	h.mustCall(t, a, "tools/list")
	resp, err := h.call(t, a, "tools/call")
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("got %v, %v; want the 403 handed back", resp, err)
	}
	if n := a.count(func(a *testAS) int { return len(a.authorizes) }); n != 1 {
		t.Fatalf("%d authorizations: a scope outside the catalog must not be asked for", n)
	}
}

func TestRepeated403DoesNotLoop(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.challengeScp = "admin"
		a.alwaysForbid = true // "insufficient_scope: admin", whatever is granted
	})
	h := newHarness(t, nil)
	h.register(t, a, nil)
	for range 3 {
		resp, err := h.call(t, a, "tools/list")
		if err == nil && resp.StatusCode != 403 {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
	// One sign-in, then at most one step-up per request, never repeated
	// for the same scopes.
	if n := a.count(func(a *testAS) int { return len(a.authorizes) }); n != 1 {
		t.Fatalf("%d authorizations for a scope that will never be granted", n)
	}
}

func TestStepUpWithoutAutoSignInAsksThePerson(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.challengeScp = "read"
		a.needScope["tools/call"] = "write"
	})
	h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	_, err := h.call(t, a, "tools/call")
	if !errors.Is(err, ErrSignInRequired) || !strings.Contains(err.Error(), "sign in to Test in Countersign settings") {
		t.Fatalf("err = %v", err)
	}
	st, _ := h.svc.Status("test")
	if st.State != StateSignInAgain || !strings.Contains(st.Reason, "write") {
		t.Fatalf("status %+v", st)
	}
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	h.mustCall(t, a, "tools/call")
	if got := a.count(func(a *testAS) int { return len(a.authorizes) }); got != 2 {
		t.Fatalf("%d authorizations", got)
	}
}

func TestRefreshBeforeExpiryRotatesAndPersists(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.accessTTL = 600 })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	first := h.storedSession(t)

	h.clock.Advance(590 * time.Second) // inside the refresh margin
	h.mustCall(t, a, "tools/list")
	second := h.storedSession(t)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("the rotated tokens were not persisted")
	}
	if !second.Expiry.Equal(h.clock.Now().Add(600 * time.Second)) {
		t.Fatalf("expiry %v", second.Expiry)
	}
	a.set(func(a *testAS) {
		last := a.tokenForms[len(a.tokenForms)-1]
		if last.Get("grant_type") != "refresh_token" || last.Get("resource") != a.resourceURL() {
			t.Fatalf("refresh request %v", last)
		}
		if _, ok := a.refresh[first.RefreshToken]; ok {
			t.Fatal("the old refresh token is still good")
		}
	})
	// A new Service (the app restarted) uses the persisted tokens.
	h2 := &harness{vault: h.vault}
	h2.svc = New(Options{Vault: h.vault, Now: h.clock.Now, OpenURL: func(*url.URL) error { t.Error("a browser was opened"); return nil }})
	defer h2.svc.Close()
	h2.register(t, a, nil)
	h2.mustCall(t, a, "tools/list")
}

func TestRefreshOn401AndRetryOnce(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/call")
	a.expireAccess()
	h.mustCall(t, a, "tools/call")
	a.set(func(a *testAS) {
		if len(a.authorizes) != 1 {
			t.Fatalf("%d authorizations: a refresh should have fixed the 401", len(a.authorizes))
		}
		if len(a.bodies) != 2 || a.bodies[0] != a.bodies[1] {
			t.Fatalf("request bodies %q: the retry must replay the body", a.bodies)
		}
	})
}

func TestRefreshFailureMeansSignInAgain(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	changed, stop := h.svc.Subscribe()
	defer stop()
	a.set(func(a *testAS) {
		a.access = map[string][]string{}
		a.refresh = map[string]testRefresh{} // the grant was revoked
	})
	_, err := h.call(t, a, "tools/list")
	var se *SignInError
	if !errors.As(err, &se) || !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("err = %v, want a SignInError", err)
	}
	st, _ := h.svc.Status("test")
	if st.State != StateSignInAgain || !strings.Contains(st.Reason, "invalid_grant") {
		t.Fatalf("status %+v", st)
	}
	select {
	case <-changed:
	default:
		t.Fatal("no change notification")
	}
	if h.storedSession(t) != nil {
		t.Fatal("the dead session is still stored")
	}
	// The next call fails the same way, without a browser.
	if _, err := h.call(t, a, "tools/list"); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("err = %v", err)
	}
	if n := len(h.browser.opened); n != 1 {
		t.Fatalf("%d browser windows", n)
	}
}

func TestConcurrent401sStartOneSignIn(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.tokenDelay = 100 * time.Millisecond })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.call(t, a, "tools/list")
			if err == nil && resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	a.set(func(a *testAS) {
		if len(a.authorizes) != 1 || len(a.registers) != 1 {
			t.Fatalf("%d authorizations, %d registrations; want exactly 1", len(a.authorizes), len(a.registers))
		}
	})
	if n := len(h.browser.opened); n != 1 {
		t.Fatalf("%d browser windows, want 1", n)
	}
}

func TestConcurrentExpiryRefreshesOnce(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.tokenDelay = 50 * time.Millisecond })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	a.expireAccess()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := h.call(t, a, "tools/list"); err != nil || resp.StatusCode != 200 {
				t.Errorf("%v %v", resp, err)
			}
		}()
	}
	wg.Wait()
	refreshes := 0
	a.set(func(a *testAS) {
		for _, f := range a.tokenForms {
			if f.Get("grant_type") == "refresh_token" {
				refreshes++
			}
		}
	})
	if refreshes != 1 {
		t.Fatalf("%d refreshes, want 1: a rotated refresh token is single-use", refreshes)
	}
}

func TestDynamicRegistrationIsPersistedAndReused(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	stored, err := h.svc.loadClient("test")
	if err != nil || stored == nil || stored.Source != "dcr" {
		t.Fatalf("stored registration %+v, %v", stored, err)
	}
	// The app restarts and the person signs in again.
	svc2 := New(Options{Vault: h.vault, OpenURL: h.browser.open, Now: h.clock.Now})
	defer svc2.Close()
	if err := svc2.Register("test", ServerAuth{Kind: KindOAuth, Name: "Test", ResourceURL: a.resourceURL()}); err != nil {
		t.Fatal(err)
	}
	if err := svc2.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	a.set(func(a *testAS) {
		if len(a.registers) != 1 {
			t.Fatalf("%d registrations, want the first reused", len(a.registers))
		}
		if a.authorizes[1].Get("client_id") != stored.ID || a.authorizes[1].Get("redirect_uri") != stored.RedirectURI {
			t.Fatalf("second sign-in used %v", a.authorizes[1])
		}
	})
}

func TestRegisteredPortBusyRegistersAgain(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	stored, _ := h.svc.loadClient("test")
	u, _ := url.Parse(stored.RedirectURI)
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Skipf("cannot occupy %s: %v", u.Host, err)
	}
	defer ln.Close()
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if n := a.count(func(a *testAS) int { return len(a.registers) }); n != 2 {
		t.Fatalf("%d registrations, want a new one for the new port", n)
	}
}

func TestClientIDMetadataDocument(t *testing.T) {
	const cimd = "https://countersign.example/oauth/client.json"
	tests := []struct {
		name      string
		supported bool
		wantID    string
		wantRegs  int
	}{
		{name: "used when the server supports it", supported: true, wantID: cimd},
		{name: "dynamic registration when it does not", supported: false, wantRegs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			if tt.supported {
				a.set(func(a *testAS) { a.meta = map[string]any{"client_id_metadata_document_supported": true} })
			}
			h := newHarness(t, nil)
			h.register(t, a, func(c *ServerAuth) { c.CIMDURL = cimd })
			h.mustCall(t, a, "tools/list")
			a.set(func(a *testAS) {
				id := a.authorizes[0].Get("client_id")
				if tt.wantID != "" && id != tt.wantID {
					t.Fatalf("client_id %q", id)
				}
				if len(a.registers) != tt.wantRegs {
					t.Fatalf("%d registrations", len(a.registers))
				}
			})
		})
	}
}

func TestPreRegisteredClient(t *testing.T) {
	tests := []struct {
		name, method string
		check        func(t *testing.T, f url.Values)
	}{
		{name: "client_secret_basic when the server lists it", method: authBasic, check: func(t *testing.T, f url.Values) {
			if f.Get("client_secret") != "" {
				t.Fatal("the secret went in the body")
			}
		}},
		{name: "client_secret_post when that is all it lists", method: authPost, check: func(t *testing.T, f url.Values) {
			if f.Get("client_secret") != "s3cret/+&" {
				t.Fatalf("body secret %q", f.Get("client_secret"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			a.set(func(a *testAS) {
				a.preClients["countersign-app"] = "s3cret/+&"
				a.authMethods = []string{tt.method}
				a.meta = map[string]any{"registration_endpoint": nil}
			})
			h := newHarness(t, nil)
			h.register(t, a, func(c *ServerAuth) {
				c.ClientID, c.ClientSecret = "countersign-app", "s3cret/+&"
			})
			h.mustCall(t, a, "tools/list")
			a.set(func(a *testAS) {
				if len(a.registers) != 0 {
					t.Fatal("registered although a client ID was given")
				}
				tt.check(t, a.tokenForms[0])
			})
		})
	}
}

func TestNoWayToRegisterIsAClearError(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.meta = map[string]any{"registration_endpoint": nil} })
	h := newHarness(t, nil)
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); !errors.Is(err, ErrNoRegistration) {
		t.Fatalf("err = %v", err)
	}
}

func TestSignOutRevokesAndForgets(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	sess := h.storedSession(t)
	if err := h.svc.SignOut(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	a.set(func(a *testAS) {
		if diff := cmp.Diff([]string{sess.RefreshToken, sess.AccessToken}, a.revoked); diff != "" {
			t.Fatalf("revoked (-want +got):\n%s", diff)
		}
	})
	if h.storedSession(t) != nil {
		t.Fatal("tokens still stored")
	}
	if c, _ := h.svc.loadClient("test"); c != nil {
		t.Fatal("registration still stored")
	}
	if len(h.kr.m) > 1 { // only the vault's data key may remain
		t.Fatalf("keychain still holds %v", keys(h.kr.m))
	}
	st, _ := h.svc.Status("test")
	if st.State != StateSignedOut {
		t.Fatalf("state %v", st.State)
	}
	if _, err := h.call(t, a, "tools/list"); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("err = %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSignInTimeoutAndCancel(t *testing.T) {
	for _, tt := range []struct {
		name   string
		act    func(h *harness)
		want   error
		expiry time.Duration
	}{
		{name: "times out", want: ErrSignInTimedOut, expiry: 300 * time.Millisecond},
		{name: "cancelled by the person", want: ErrSignInCanceled, expiry: time.Minute, act: func(h *harness) { h.svc.CancelSignIn("test") }},
		{name: "cancelled by sign-out", want: ErrSignInCanceled, expiry: time.Minute, act: func(h *harness) { h.svc.SignOut(context.Background(), "test") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			h := newHarness(t, func(o *Options) { o.SignInTimeout = tt.expiry })
			h.browser.idle = true
			h.register(t, a, nil)
			done := make(chan error, 1)
			go func() { done <- h.svc.SignIn(context.Background(), "test") }()
			for h.openedCount() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if st, _ := h.svc.Status("test"); st.State != StateSigningIn {
				t.Fatalf("state %v while waiting", st.State)
			}
			if tt.act != nil {
				tt.act(h)
			}
			if err := <-done; !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			ru, _ := url.Parse(h.browser.opened[0].Query().Get("redirect_uri"))
			if c, err := net.DialTimeout("tcp", ru.Host, time.Second); err == nil {
				c.Close()
				t.Fatal("the redirect listener is still open")
			}
			if st, _ := h.svc.Status("test"); st.State != StateSignedOut {
				t.Fatalf("state %v after", st.State)
			}
		})
	}
}

func (h *harness) openedCount() int {
	h.browser.mu.Lock()
	defer h.browser.mu.Unlock()
	return len(h.browser.opened)
}

func TestCallbackListenerAnswersOnlyTheCallback(t *testing.T) {
	ln, err := listenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	cb := startCallback(ln, "the-state", serverMetadata{Issuer: "https://as.example"}, "Git<Hub>")
	defer cb.close()
	base := "http://" + ln.Addr().String()
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/", 404},
		{"/favicon.ico", 404},
		{"/callback?state=wrong&code=x", 400},
	} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %d, want %d", tt.path, resp.StatusCode, tt.code)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: no Referrer-Policy", tt.path)
		}
	}
	if p := successPage("Git<Hub>"); !strings.Contains(p, "Signed in to Git&lt;Hub&gt; — you can close this tab.") {
		t.Fatalf("page not escaped: %s", p)
	}
}

func TestCredentialsOnlyGoToTheServersOrigin(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	var got string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer other.Close()
	resp, err := h.svc.Client("test").Get(other.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "" {
		t.Fatalf("another origin got Authorization %q", got)
	}
}

func TestBearerTokenIsAPolicyException(t *testing.T) {
	var mu sync.Mutex
	seen := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Get("Authorization")
		mu.Unlock()
		if seen != "Bearer squ_good" {
			w.WriteHeader(401)
		}
	}))
	defer srv.Close()
	h := newHarness(t, nil)
	if err := h.svc.Register("sonar", ServerAuth{Kind: KindBearer, Name: "SonarQube Cloud", ResourceURL: srv.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	client := h.svc.Client("sonar")
	if _, err := client.Get(srv.URL + "/mcp"); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("without a token: %v", err)
	}
	if err := h.svc.SetBearerToken("sonar", "has space"); err == nil {
		t.Fatal("accepted a malformed token")
	}
	if err := h.svc.SetBearerToken("sonar", "squ_good"); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL + "/mcp")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	st, _ := h.svc.Status("sonar")
	if st.State != StateSignedIn || !st.PolicyException {
		t.Fatalf("status %+v", st)
	}
	h.svc.SetBearerToken("sonar", "squ_revoked")
	if _, err := client.Get(srv.URL + "/mcp"); !errors.Is(err, ErrSignInRequired) {
		t.Fatalf("rejected token: %v", err)
	}
	if st, _ := h.svc.Status("sonar"); st.State != StateSignInAgain {
		t.Fatalf("state %v", st.State)
	}
	// The token survives a restart, through the vault.
	svc2 := New(Options{Vault: h.vault})
	defer svc2.Close()
	svc2.Register("sonar", ServerAuth{Kind: KindBearer, Name: "SonarQube Cloud", ResourceURL: srv.URL + "/mcp"})
	if st, _ := svc2.Status("sonar"); st.State != StateSignedIn {
		t.Fatalf("after restart: %v", st.State)
	}
}

// Registering a server again with the same settings (settings saved for
// another reason) keeps its live state; changed settings start afresh from
// the vault.
func TestRegisterAgainKeepsTheServer(t *testing.T) {
	h := newHarness(t, nil)
	cfg := ServerAuth{Kind: KindBearer, Name: "SonarQube Cloud", ResourceURL: "https://api.sonarcloud.io/mcp"}
	if err := h.svc.Register("sonar", cfg); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.SetBearerToken("sonar", "squ_good"); err != nil {
		t.Fatal(err)
	}
	h.svc.mu.Lock()
	kept := h.svc.servers["sonar"]
	h.svc.mu.Unlock()
	if err := h.svc.Register("sonar", cfg); err != nil {
		t.Fatal(err)
	}
	h.svc.mu.Lock()
	same := h.svc.servers["sonar"] == kept
	h.svc.mu.Unlock()
	if !same {
		t.Error("the same settings replaced the live server")
	}
	cfg.ResourceURL = "https://api.sonarqube.us/mcp"
	if err := h.svc.Register("sonar", cfg); err != nil {
		t.Fatal(err)
	}
	h.svc.mu.Lock()
	same = h.svc.servers["sonar"] == kept
	h.svc.mu.Unlock()
	if same {
		t.Error("changed settings kept the old server")
	}
}

func TestWithoutAutoSignInRequestsFailClearly(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, func(o *Options) { o.AutoSignIn = false })
	h.register(t, a, func(c *ServerAuth) { c.Name = "GitHub" })
	_, err := h.call(t, a, "initialize")
	if !errors.Is(err, ErrSignInRequired) || !strings.Contains(err.Error(), "sign in to GitHub in Countersign settings") {
		t.Fatalf("err = %v", err)
	}
	if len(h.browser.opened) != 0 {
		t.Fatal("a browser was opened")
	}
	// Signing in from settings (no 401 seen by the sign-in itself) works.
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	h.mustCall(t, a, "initialize")
}

func TestLegacyDiscovery(t *testing.T) {
	tests := []struct {
		name  string
		setup func(a *testAS) *httptest.Server
	}{
		{name: "2025-03-26: no protected resource metadata, metadata at the server's root", setup: func(a *testAS) *httptest.Server {
			// The resource server doubles as its authorization server.
			a.noPRM = true
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAS(t)
			a.set(func(a *testAS) { tt.setup(a) })
			// Serve the AS metadata on the resource's origin too.
			mux := http.NewServeMux()
			mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
				a.mu.Lock()
				m := a.metadata()
				a.mu.Unlock()
				writeJSON(w, 200, m)
			})
			mux.HandleFunc("/", a.serveResource)
			a.res.Config.Handler = mux
			h := newHarness(t, nil)
			h.register(t, a, nil)
			h.mustCall(t, a, "tools/list")
			a.set(func(a *testAS) {
				if got := a.authorizes[0].Get("resource"); got != a.resourceURL() {
					t.Fatalf("resource %q", got)
				}
			})
		})
	}
}

func TestDefaultEndpointsWithoutAnyMetadata(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.noPRM = true
		a.issParam = "-"
	})
	// The resource's origin serves the AS endpoints at the default paths.
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", a.serveASPath("/authorize"))
	mux.HandleFunc("/token", a.serveASPath("/token"))
	mux.HandleFunc("/register", a.serveASPath("/register"))
	mux.HandleFunc("/", a.serveResource)
	a.res.Config.Handler = mux
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	if n := a.count(func(a *testAS) int { return len(a.tokenForms) }); n != 1 {
		t.Fatalf("%d token requests", n)
	}
}

// serveASPath serves one AS endpoint from another server.
func (a *testAS) serveASPath(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = path
		a.serveAS(w, r)
	}
}

func TestLockedKeychainIsReported(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, nil)
	if err := h.svc.SignIn(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	// Break the sealed store: the saved sign-in is unreadable.
	files, _ := filepath.Glob(filepath.Join(h.dir, "*"))
	_ = files
	h.kr.mu.Lock()
	for k := range h.kr.m {
		if strings.Contains(k, "session") {
			h.kr.m[k] = "garbage"
		}
	}
	h.kr.mu.Unlock()
	svc2 := New(Options{Vault: h.vault})
	defer svc2.Close()
	svc2.Register("test", ServerAuth{Kind: KindOAuth, Name: "Test", ResourceURL: a.resourceURL()})
	st, _ := svc2.Status("test")
	if st.State != StateSignedOut || !strings.Contains(st.Reason, "could not be read") {
		t.Fatalf("status %+v", st)
	}
}

func TestUnknownServer(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.svc.Client("nope").Get("http://127.0.0.1:1/"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("err = %v", err)
	}
	if err := h.svc.SignIn(context.Background(), "nope"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoSecretsInFilesOrLogs(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.tokenPad = 3000 // a JWT-sized token: sealed into a file
		a.accessTTL = 60
	})
	h := newHarness(t, nil)
	h.register(t, a, nil)
	h.mustCall(t, a, "tools/list")
	h.clock.Advance(59 * time.Second)
	h.mustCall(t, a, "tools/list") // refreshed
	sess := h.storedSession(t)
	stored, _ := h.svc.loadClient("test")
	secrets := []string{sess.AccessToken, sess.RefreshToken}
	if stored.Secret != "" {
		secrets = append(secrets, stored.Secret)
	}
	a.set(func(a *testAS) {
		for tok := range a.access {
			secrets = append(secrets, tok)
		}
	})
	sealed, _ := filepath.Glob(filepath.Join(h.dir, "*.sealed"))
	if len(sealed) == 0 {
		t.Fatal("the large token was not sealed: the test would prove nothing")
	}
	scan := func(when string) {
		filepath.Walk(h.dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, _ := os.ReadFile(p)
			for _, s := range secrets {
				if strings.Contains(string(b), s[:min(len(s), 40)]) || strings.Contains(string(b), b64(s)[:min(len(b64(s)), 40)]) {
					t.Errorf("%s: %s holds a token", when, p)
				}
			}
			return nil
		})
		logs := h.logs.String()
		for _, s := range secrets {
			if strings.Contains(logs, s[:min(len(s), 20)]) {
				t.Errorf("%s: the log holds a token", when)
			}
		}
	}
	scan("signed in")
	if err := h.svc.SignOut(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	scan("signed out")
	if left, _ := filepath.Glob(filepath.Join(h.dir, "*.sealed")); len(left) != 0 {
		t.Fatalf("sign-out left %v", left)
	}
	if !strings.Contains(h.logs.String(), "signed in") {
		t.Fatal("nothing was logged: the scan would prove nothing")
	}
}

// TestSignInAsksForOfflineAccess: a server registered with OfflineAccess
// (Microsoft Entra, for Azure DevOps) asks for offline_access even though
// the authorization server does not list it, so a refresh token comes back.
func TestSignInAsksForOfflineAccess(t *testing.T) {
	a := newTestAS(t)
	h := newHarness(t, nil)
	h.register(t, a, func(c *ServerAuth) { c.OfflineAccess = true })
	h.mustCall(t, a, "tools/list")
	a.set(func(a *testAS) {
		if len(a.authorizes) != 1 {
			t.Fatalf("%d authorizations, want 1", len(a.authorizes))
		}
		if got := strings.Fields(a.authorizes[0].Get("scope")); !slices.Contains(got, "offline_access") {
			t.Fatalf("authorization request scope %q has no offline_access", got)
		}
	})
}
