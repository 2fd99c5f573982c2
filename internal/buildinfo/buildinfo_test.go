package buildinfo

import (
	"os"
	"regexp"
	"testing"
)

// TestVersionIsFyneApps: the version compiled in is the one FyneApp.toml
// gives, so the binaries, the MSI and the .deb all say the same.
func TestVersionIsFyneApps(t *testing.T) {
	b, err := os.ReadFile("../../FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Version\s*=\s*"([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("FyneApp.toml has no Version")
	}
	if string(m[1]) != Version {
		t.Fatalf("FyneApp.toml says %s, buildinfo.Version is %s: change both", m[1], Version)
	}
}
