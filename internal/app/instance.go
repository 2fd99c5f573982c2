package app

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/portproof"
)

// showPath is where a second launch asks the running app to bring its
// window forward. It only ever shows a window: it cannot decide anything.
const showPath = "/app/show"

// front serves the show request and hands everything else to the relay.
type front struct {
	relay http.Handler
	show  func()
	token string
	port  int
}

func (f *front) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case bearer(req.Header.Get("Authorization"), f.token):
		// Its response may be held open while a person decides: the
		// connection stays, without the read deadline that would cancel it.
		authenticated(req.Context())
		http.NewResponseController(w).SetReadDeadline(time.Time{})
	case req.URL.Path != portproof.Path:
		// Refused for want of the token: nothing more on this connection.
		// (A challenge is answered on a connection kept for the request
		// with the token that follows it.)
		w.Header().Set("Connection", "close")
	}
	if req.URL.Path != showPath {
		f.relay.ServeHTTP(w, req)
		return
	}
	// The same rules as the relay: our own loopback host, no browser
	// origin, the local token.
	switch {
	case !loopbackHost(req.Host, f.port) || req.Header.Get("Origin") != "":
		http.Error(w, "forbidden", http.StatusForbidden)
	case !bearer(req.Header.Get("Authorization"), f.token):
		http.Error(w, "the local client token is missing or wrong", http.StatusUnauthorized)
	case req.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
	default:
		f.show()
		w.WriteHeader(http.StatusNoContent)
	}
}

// loopbackHost reports whether a Host header names this machine's loopback
// address at port.
func loopbackHost(hostport string, port int) bool {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil || p != strconv.Itoa(port) {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func bearer(authz, token string) bool {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(token)) == 1
}

// bringForward asks the Countersign listening on port to show its window.
// The token goes only on a connection whose listener first proved that it
// knows the token; if it cannot, the error wraps portproof.ErrNotCountersign
// and the listener never saw the token.
func bringForward(ctx context.Context, port int, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(port)+showPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := portproof.Client(port, token) // never through a proxy
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking the running Countersign to show itself: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("asking the running Countersign to show itself: %s", resp.Status)
	}
	return nil
}
