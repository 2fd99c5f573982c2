package app

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
)

// TestOnlyTheInterfaceImportsFyne keeps the GUI toolkit at the edge: no
// package but internal/ui and the commands may depend on fyne.io, directly
// or through another package, so the core builds and is tested without a
// display and without cgo.
func TestOnlyTheInterfaceImportsFyne(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	const module = "github.com/countersign/countersign"
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Deps,TestImports,XTestImports,Error", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := func(pkg string) bool {
		return pkg == module+"/internal/ui" || strings.HasPrefix(pkg, module+"/internal/ui/") ||
			strings.HasPrefix(pkg, module+"/cmd/")
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var p struct {
			ImportPath                      string
			Deps, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		checked++
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
	if checked < 5 {
		t.Fatalf("go list reported only %d packages", checked)
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
