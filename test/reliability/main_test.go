package reliability

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind: the
// app, its relay, gate, audit log and transports must all have ended. The
// test binary also stands in for a Countersign that is killed (see
// runChildApp).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChildApp()
		return
	}
	goleak.VerifyTestMain(m)
}
