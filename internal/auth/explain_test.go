package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExplainTellsWhatHappenedAndWhatToDo(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "api.githubcopilot.com", Server: "10.255.255.53:53", IsNotFound: true}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"dns", fmt.Errorf("reading protected resource metadata: %w", &netURLError{dns}), "Countersign couldn't reach GitHub. Check your network or VPN, then press Sign in again."},
		{"dial", fmt.Errorf("token request: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), "couldn't reach GitHub"},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), "couldn't reach GitHub"},
		{"refused 401", &OAuthError{Code: "http_401", Status: 401}, "GitHub refused Countersign's sign-in"},
		{"refused 403 metadata", fmt.Errorf("GET x: %w", &StatusError{Status: 403}), "GitHub refused Countersign's sign-in"},
		{"server down", fmt.Errorf("GET x: %w", &StatusError{Status: 503}), "isn't working right now"},
		{"denied", &OAuthError{Code: "access_denied"}, "was declined in the browser"},
		{"metadata", fmt.Errorf("%w: none found for x", ErrMetadataMissing), "doesn't offer a sign-in Countersign can use"},
		{"no registration", fmt.Errorf("%w: x", ErrNoRegistration), "doesn't offer a sign-in Countersign can use"},
		{"timed out", ErrSignInTimedOut, "wasn't finished in the browser in time"},
		{"cancelled", ErrSignInCanceled, "was cancelled"},
		{"issuer", fmt.Errorf("%w: x", ErrIssuerMismatch), "unexpected place"},
		{"no browser", fmt.Errorf("%w: exec failed", errNoBrowser), "couldn't open your web browser"},
		{"other", errors.New("the token response holds no access token"), "Signing in to GitHub didn't work."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain("GitHub", tt.err)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("Explain = %q, want it to hold %q", got, tt.want)
			}
			for _, raw := range []string{"10.255.255.53", "dial tcp", "HTTP ", "GET ", "metadata", "http_"} {
				if strings.Contains(got, raw) {
					t.Fatalf("Explain = %q holds the technical %q", got, raw)
				}
			}
			if !strings.HasSuffix(got, ".") {
				t.Fatalf("Explain = %q is not a whole sentence", got)
			}
		})
	}
}

// netURLError wraps like *url.Error does, so the DNS error is found through it.
type netURLError struct{ err error }

func (e *netURLError) Error() string { return "Get \"https://x\": " + e.err.Error() }
func (e *netURLError) Unwrap() error { return e.err }

// A sign-in to a server nobody answers on fails with the plain sentence on
// the server's state, while the raw error stays in the log.
func TestSignInToUnreachableServerSaysSoPlainly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every request is refused
	h := newHarness(t, nil)
	if err := h.svc.Register("test", ServerAuth{Kind: KindOAuth, Name: "GitHub", ResourceURL: "http://" + addr + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	err = h.svc.SignIn(context.Background(), "test")
	if err == nil {
		t.Fatal("signed in to nothing")
	}
	want := "Countersign couldn't reach GitHub. Check your network or VPN, then press Sign in again."
	if got := Explain("GitHub", err); got != want {
		t.Fatalf("Explain(%v) = %q, want %q", err, got, want)
	}
	st, _ := h.svc.Status("test")
	if st.State != StateSignedOut || st.Reason != want {
		t.Fatalf("status %+v, want signed out, saying %q", st, want)
	}
	if !strings.Contains(h.logs.String(), addr) {
		t.Fatalf("the log lacks the technical detail:\n%s", h.logs.String())
	}
}

// A server whose metadata endpoint answers 503 is "not working right now".
func TestSignInToFailingServerSaysTryLater(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	h := newHarness(t, nil)
	if err := h.svc.Register("test", ServerAuth{Kind: KindOAuth, Name: "Jira", ResourceURL: srv.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	err := h.svc.SignIn(context.Background(), "test")
	if got := Explain("Jira", err); !strings.Contains(got, "isn't working right now") {
		t.Fatalf("Explain(%v) = %q", err, got)
	}
}

// A pasted token is tried against the server before it is kept: a real
// request carrying it, refused with 401, accepted otherwise.
func TestCheckBearerToken(t *testing.T) {
	const good = "squ_good0123456789"
	var gotAuth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+good {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":"countersign-token-check","result":{}}`))
	}))
	defer srv.Close()
	h := newHarness(t, nil)
	if err := h.svc.Register("sonar", ServerAuth{Kind: KindBearer, Name: "SonarQube Cloud", ResourceURL: srv.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err := h.svc.CheckBearerToken(ctx, "sonar", "squ_wrong")
	if !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("a wrong token: %v, want ErrTokenRefused", err)
	}
	if got := Explain("SonarQube Cloud", err); !strings.Contains(got, "didn't accept that token") {
		t.Errorf("Explain = %q", got)
	}
	if err := h.svc.CheckBearerToken(ctx, "sonar", good); err != nil {
		t.Fatalf("the right token: %v", err)
	}
	if len(gotAuth) != 2 {
		t.Fatalf("%d requests reached the server, want 2", len(gotAuth))
	}
	if st, _ := h.svc.Status("sonar"); st.State != StateSignedOut {
		t.Errorf("checking a token changed the state to %v", st.State)
	}
	if strings.Contains(h.logs.String(), good) {
		t.Error("the token is in the log")
	}
}
