package relay

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/portproof"
)

// The relay proves it knows the token to a client that asks, before the
// client sends it, and the proof endpoint keeps the listener's other rules.
func TestRelayPassesThePortProof(t *testing.T) {
	srv, _ := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	c := portproof.Client(e.port, testToken)
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/servers/pipe/mcp", strings.NewReader(`{"jsonrpc":"2.0","method":"notifications/x"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("a client that checks the listener first could not reach the relay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}

	nonce := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	port := e.srv.Listener.Addr().String()[len("127.0.0.1:"):]
	tests := []struct {
		name, method, host, origin, challenge string
		want                                  int
	}{
		{"answers a challenge", "GET", "127.0.0.1:" + port, "", nonce, 204},
		{"refuses another host (DNS rebinding)", "GET", "evil.example.com:" + port, "", nonce, 403},
		{"refuses a browser origin", "GET", "127.0.0.1:" + port, "http://evil.example.com", nonce, 403},
		{"refuses no challenge", "GET", "127.0.0.1:" + port, "", "", 400},
		{"refuses a short challenge", "GET", "127.0.0.1:" + port, "", nonce[:20], 400},
		{"refuses POST", "POST", "127.0.0.1:" + port, "", nonce, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.srv.URL+portproof.Path, nil)
			req.Host = tt.host
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.challenge != "" {
				req.Header.Set(portproof.ChallengeHeader, tt.challenge)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			got := resp.Header.Get(portproof.ProofHeader)
			if want, _ := portproof.Answer(testToken, e.port, tt.challenge); tt.want == http.StatusNoContent && got != want {
				t.Fatalf("proof %q, want %q", got, want)
			}
			if tt.want != http.StatusNoContent && got != "" {
				t.Fatal("a refused challenge was answered")
			}
		})
	}
}
