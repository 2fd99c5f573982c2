// Package oauth tests internal/auth against real OAuth peers from npm: an
// oidc-provider authorization server protecting an MCP server, the MCP
// SDK's example server with --oauth, and the conformance suite's auth
// scenarios (through the confclient command). scripts/test installs the
// peers and sets COUNTERSIGN_PEERS.
package oauth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// Browser is a headless stand-in for the person's browser: it follows the
// authorization request's redirects, keeping cookies, to the loopback
// callback, and reports the page it ends on. Every test authorization
// server here approves without a person.
func Browser(u *url.URL) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(u.String())
	if err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Signed in to") {
		return fmt.Errorf("browser: ended on %s with HTTP %d: %.300s", resp.Request.URL.Redacted(), resp.StatusCode, body)
	}
	return nil
}

// Opener returns an auth.Options.OpenURL that browses each URL with
// Browser on its own goroutine, as a real browser runs apart from the app;
// report, when not nil, gets each browse's outcome.
func Opener(report func(error)) func(*url.URL) error {
	return func(u *url.URL) error {
		go func() {
			err := Browser(u)
			if report != nil {
				report(err)
			}
		}()
		return nil
	}
}
