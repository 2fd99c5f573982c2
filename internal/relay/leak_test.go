package relay

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind. The
// default HTTP client's kept-alive idle connections, which tests share,
// are closed first: they are the client's, not a leak of the relay's.
func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: a test left goroutines behind: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
