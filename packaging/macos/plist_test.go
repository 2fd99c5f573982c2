// Package macos holds the macOS bundle's files; this test checks the ones
// that can be checked on any machine.
package macos

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/plist"
)

func decode(t *testing.T, name string, replace ...string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(replace...).Replace(string(b))
	v, err := plist.Decode([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: top level is %T, not a dictionary", name, v)
	}
	return d
}

// TestInfoPlist parses Info.plist as build-macos fills it and checks the
// keys a tray-only, Developer ID app needs, and that its bundle identifier
// is the preference domain internal/config reads managed preferences from.
func TestInfoPlist(t *testing.T) {
	toml, err := os.ReadFile("../../FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`(?m)^Version *= *"(.*)"`).FindSubmatch(toml)
	if version == nil {
		t.Fatal("FyneApp.toml has no Version")
	}
	d := decode(t, "Info.plist", "@VERSION@", string(version[1]), "@BUILD@", "1")

	want := map[string]any{
		"CFBundleIdentifier":         config.BundleID,
		"CFBundleExecutable":         "countersign",
		"CFBundlePackageType":        "APPL",
		"CFBundleIconFile":           "Countersign",
		"CFBundleShortVersionString": string(version[1]),
		"CFBundleVersion":            "1",
		"LSMinimumSystemVersion":     "12.0",
		"LSUIElement":                true,
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %#v, want %#v", k, d[k], v)
		}
	}
	if c, _ := d["NSHumanReadableCopyright"].(string); !strings.Contains(c, "Countersign") {
		t.Errorf("NSHumanReadableCopyright = %q", c)
	}

	// The placeholders are the only ones, and build-macos replaces both.
	raw, _ := os.ReadFile("Info.plist")
	if n := len(regexp.MustCompile(`@[A-Z]+@`).FindAll(raw, -1)); n != 2 {
		t.Errorf("Info.plist has %d @PLACEHOLDERS@, want 2", n)
	}
	script, err := os.ReadFile("build-macos")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"@VERSION@", "@BUILD@"} {
		if !strings.Contains(string(script), p) {
			t.Errorf("build-macos does not fill %s", p)
		}
	}
}

// TestEntitlements parses the hardened-runtime entitlements and checks
// that none of the ones that weaken it is granted.
func TestEntitlements(t *testing.T) {
	d := decode(t, "entitlements.plist")
	for _, k := range []string{
		"com.apple.security.cs.allow-jit",
		"com.apple.security.cs.allow-unsigned-executable-memory",
		"com.apple.security.cs.disable-library-validation",
		"com.apple.security.cs.allow-dyld-environment-variables",
		"com.apple.security.cs.disable-executable-page-protection",
		"com.apple.security.get-task-allow",
	} {
		if _, ok := d[k]; ok {
			t.Errorf("entitlements.plist grants %s", k)
		}
	}
}
