package auth

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration
		want time.Duration // after issue
	}{
		{"an hour-long token at 80% of its life", time.Hour, 48 * time.Minute},
		{"a 10-minute token at 80%", 10 * time.Minute, 8 * time.Minute},
		{"a 3-minute token a minute before expiry", 3 * time.Minute, 2 * time.Minute},
		{"a 2-minute token not before half its life", 2 * time.Minute, time.Minute},
	}
	for _, tt := range tests {
		s := &session{IssuedAt: t0, Expiry: t0.Add(tt.life)}
		if got := s.refreshAt().Sub(t0); got != tt.want {
			t.Errorf("%s: refresh after %v, want %v", tt.name, got, tt.want)
		}
	}
	if !(&session{IssuedAt: t0}).refreshAt().IsZero() {
		t.Error("a token without expiry is never refreshed ahead")
	}
	for _, life := range []time.Duration{-time.Second, 0, 3 * time.Second, time.Minute, minProactiveLife - 1} {
		if at := (&session{IssuedAt: t0, Expiry: t0.Add(life)}).refreshAt(); !at.IsZero() {
			t.Errorf("a token living %v is refreshed ahead at %v; want only on use", life, at.Sub(t0))
		}
	}
}

func TestRetryDelayGrowsWithJitter(t *testing.T) {
	for n, base := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 5 * time.Minute, 100: 5 * time.Minute} {
		for range 50 {
			if d := retryDelay(n); d < base*4/5 || d > base*6/5 {
				t.Fatalf("retryDelay(%d) = %v, want %v ± 20%%", n, d, base)
			}
		}
	}
}

// syncHarness is a harness on the synctest bubble's clock whose Service
// reaches the fake servers in memory.
func syncHarness(t *testing.T, a *testAS) *harness {
	return newHarness(t, func(o *Options) {
		o.Now = nil
		o.HTTPClient = &http.Client{Transport: handlerTransport{a}}
		o.Transport = handlerTransport{a}
		o.AutoSignIn = false
	})
}

// seedSession stores a sign-in as an earlier run left it, valid for ttl
// from now, with tokens the server knows, and registers the server.
func seedSession(t *testing.T, h *harness, a *testAS, ttl time.Duration) {
	t.Helper()
	now := time.Now()
	a.set(func(a *testAS) {
		a.access["at-seed"] = []string{"read"}
		a.refresh["rt-seed"] = testRefresh{client: "pre", resource: a.resourceURL(), scopes: []string{"read"}}
		a.preClients["pre"] = ""
	})
	sess := &session{
		AccessToken: "at-seed", RefreshToken: "rt-seed", IssuedAt: now, Expiry: now.Add(ttl),
		Scopes: []string{"read"}, Resource: a.resourceURL(), Issuer: a.issuer(), TokenEndpoint: a.issuer() + "/token",
		Client: client{ID: "pre", AuthMethod: authNone, Issuer: a.issuer(), Source: "preregistered"},
	}
	if err := h.svc.saveSession("test", sess); err != nil {
		t.Fatal(err)
	}
	h.register(t, a, nil)
}

func (a *testAS) grants(grant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, f := range a.tokenForms {
		if f.Get("grant_type") == grant {
			n++
		}
	}
	return n
}

func sleepUntil(t time.Time) {
	time.Sleep(time.Until(t))
	synctest.Wait()
}

func TestProactiveRefreshBeforeExpiry(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) { a.accessTTL = 600 })
	synctest.Test(t, func(t *testing.T) {
		h := syncHarness(t, a)
		start := time.Now()
		seedSession(t, h, a, 10*time.Minute)

		sleepUntil(start.Add(8*time.Minute - time.Second))
		if n := a.grants("refresh_token"); n != 0 {
			t.Fatalf("%d refreshes before 80%% of the token's life", n)
		}
		sleepUntil(start.Add(8*time.Minute + time.Second))
		if n := a.grants("refresh_token"); n != 1 {
			t.Fatalf("%d refreshes at 80%% of the token's life, want 1", n)
		}
		stored := h.storedSession(t)
		if stored.RefreshToken == "rt-seed" || stored.AccessToken == "at-seed" {
			t.Fatal("the rotated tokens were not persisted")
		}
		if want := start.Add(8*time.Minute + 10*time.Minute); !stored.Expiry.Equal(want) {
			t.Fatalf("expiry %v, want %v", stored.Expiry, want)
		}
		if st, _ := h.svc.Status("test"); st.State != StateSignedIn || !st.Expiry.Equal(stored.Expiry) {
			t.Fatalf("status %+v", st)
		}
		// The renewed token is renewed in its turn, and calls use it
		// without waiting on a refresh.
		sleepUntil(start.Add(16*time.Minute + time.Second))
		if n := a.grants("refresh_token"); n != 2 {
			t.Fatalf("%d refreshes, want 2", n)
		}
		h.mustCall(t, a, "tools/list")
		if n := a.grants("refresh_token"); n != 2 {
			t.Fatalf("the call refreshed again: %d refreshes", n)
		}
	})
}

func TestProactiveRefreshRefusedMeansSignInAgain(t *testing.T) {
	a := newTestAS(t)
	synctest.Test(t, func(t *testing.T) {
		h := syncHarness(t, a)
		start := time.Now()
		seedSession(t, h, a, 10*time.Minute)
		a.set(func(a *testAS) { a.refresh = map[string]testRefresh{} }) // the grant was revoked
		changed, stop := h.svc.Subscribe()
		defer stop()

		sleepUntil(start.Add(8*time.Minute + time.Second))
		st, _ := h.svc.Status("test")
		if st.State != StateSignInAgain || !strings.Contains(st.Reason, "invalid_grant") {
			t.Fatalf("status %+v, want sign in again", st)
		}
		select {
		case <-changed:
		default:
			t.Fatal("subscribers were not told")
		}
		if h.storedSession(t) != nil {
			t.Fatal("the ended session is still stored")
		}
		// Nothing more is tried, and no browser opens by itself.
		sleepUntil(start.Add(time.Hour))
		if n := a.grants("refresh_token"); n != 1 {
			t.Fatalf("%d refresh attempts, want 1", n)
		}
		if n := len(h.browser.opened); n != 0 {
			t.Fatalf("%d browser windows", n)
		}
	})
}

func TestProactiveRefreshBacksOffAndRecovers(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.tokenStatus = http.StatusServiceUnavailable
		a.accessTTL = 600
	})
	synctest.Test(t, func(t *testing.T) {
		h := syncHarness(t, a)
		start := time.Now()
		seedSession(t, h, a, 10*time.Minute)
		first := start.Add(8 * time.Minute)
		attempts := func() int { return a.count(func(a *testAS) int { return len(a.tokenForms) }) }
		for _, step := range []struct {
			at   time.Duration // after the first attempt
			want int
		}{
			{time.Second, 1},
			{7900 * time.Millisecond, 1},  // the first retry waits 10 s ± 20%
			{12100 * time.Millisecond, 2}, //
			{23900 * time.Millisecond, 2}, // the second 20 s ± 20% after it
			{36100 * time.Millisecond, 3},
		} {
			sleepUntil(first.Add(step.at))
			if n := attempts(); n != step.want {
				t.Fatalf("%v after the first attempt: %d attempts, want %d", step.at, n, step.want)
			}
		}
		if st, _ := h.svc.Status("test"); st.State != StateSignedIn {
			t.Fatalf("a passing failure changed the state: %+v", st)
		}
		a.set(func(a *testAS) { a.tokenStatus = 0 })
		sleepUntil(first.Add(36*time.Second + 50*time.Second)) // the third retry: 40 s ± 20%
		if n := a.grants("refresh_token"); n != 4 {
			t.Fatalf("%d attempts, want 4", n)
		}
		stored := h.storedSession(t)
		if stored.RefreshToken == "rt-seed" {
			t.Fatal("the recovered refresh was not persisted")
		}
		// Success resets the back-off: the next refresh is at 80% again.
		sleepUntil(stored.IssuedAt.Add(8*time.Minute - time.Second))
		if n := attempts(); n != 4 {
			t.Fatalf("%d attempts before the renewed token's refresh time", n)
		}
		sleepUntil(stored.IssuedAt.Add(8*time.Minute + time.Second))
		if n := attempts(); n != 5 {
			t.Fatalf("%d attempts, want 5", n)
		}
	})
}

func TestCloseStopsTheRefresher(t *testing.T) {
	a := newTestAS(t)
	synctest.Test(t, func(t *testing.T) {
		h := syncHarness(t, a)
		seedSession(t, h, a, 10*time.Minute)
		h.svc.Close()
		sleepUntil(time.Now().Add(time.Hour))
		if n := a.grants("refresh_token"); n != 0 {
			t.Fatalf("%d refreshes after Close", n)
		}
	})
}

func TestProactiveRenewalOfClientCredentials(t *testing.T) {
	a := newTestAS(t)
	a.set(func(a *testAS) {
		a.preClients["m2m"] = "s"
		a.accessTTL = 600
	})
	synctest.Test(t, func(t *testing.T) {
		h := syncHarness(t, a)
		h.registerMachine(t, a, nil, Credential{ClientSecret: "s"})
		start := time.Now()
		h.mustCall(t, a, "tools/list")
		sleepUntil(start.Add(8*time.Minute + time.Second))
		if n := a.grants(grantClientCredentials); n != 2 {
			t.Fatalf("%d grants, want 2: one ahead of expiry", n)
		}
	})
}
