package reliability

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind: the
// app, its relay, gate, audit log and transports must all have ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
