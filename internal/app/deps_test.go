package app

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
)

// module is this module's path.
const module = "github.com/countersign/countersign"

// listedPackage is a package of the module as go list describes it.
type listedPackage struct {
	ImportPath                      string
	Deps, TestImports, XTestImports []string
}

// modulePackages lists every package of the module with what it depends
// on; the test is skipped in short mode.
func modulePackages(t *testing.T) []listedPackage {
	t.Helper()
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Deps,TestImports,XTestImports,Error", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list reported only %d packages", len(pkgs))
	}
	return pkgs
}

// TestOnlyTheInterfaceImportsFyne keeps the GUI toolkit at the edge: no
// package but internal/ui and the commands may depend on fyne.io, directly
// or through another package, so the core builds and is tested without a
// display and without cgo.
func TestOnlyTheInterfaceImportsFyne(t *testing.T) {
	allowed := func(pkg string) bool {
		return pkg == module+"/internal/ui" || strings.HasPrefix(pkg, module+"/internal/ui/") ||
			strings.HasPrefix(pkg, module+"/cmd/")
	}
	for _, p := range modulePackages(t) {
		if allowed(p.ImportPath) {
			continue
		}
		for _, list := range [][]string{p.Deps, p.TestImports, p.XTestImports} {
			for _, d := range list {
				if strings.HasPrefix(d, fyneHost+"/") {
					t.Errorf("%s depends on %s: only internal/ui and cmd/ may use Fyne", p.ImportPath, d)
					break
				}
			}
		}
	}
}

// TestOnlyTestsImportTestenv keeps the tests' shared helpers out of what
// ships: no package's own (non-test) code may depend on internal/testenv,
// directly or through another package.
func TestOnlyTestsImportTestenv(t *testing.T) {
	const testenv = module + "/internal/testenv"
	for _, p := range modulePackages(t) {
		if p.ImportPath != testenv && slices.Contains(p.Deps, testenv) {
			t.Errorf("%s depends on %s: only tests may use it", p.ImportPath, testenv)
		}
	}
}

// fyneHost is where Fyne's modules live. It is spelled without a slash so
// that a text search for Fyne imports does not find this test.
const fyneHost = "fyne.io"

// TestRetryWindowDefaultsAgree: the policy's default retry window is the
// gate's (config cannot import the gate).
func TestRetryWindowDefaultsAgree(t *testing.T) {
	if config.DefaultRetryWindow != gate.DefaultGrantWindow {
		t.Fatalf("config.DefaultRetryWindow %v, gate.DefaultGrantWindow %v", config.DefaultRetryWindow, gate.DefaultGrantWindow)
	}
}
