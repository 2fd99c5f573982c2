package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

func TestPolicyShowReportsThePolicyAndItsSource(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.json"), filepath.Join(dir, "second.json")
	sources := []config.PolicySource{config.FilePolicySource(first), config.FilePolicySource(second)}
	show := func() (map[string]any, int) {
		t.Helper()
		var out bytes.Buffer
		code := reportPolicy(&out, sources)
		var r map[string]any
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		return r, code
	}
	if r, code := show(); code != 0 || r["source"] != nil || r["policy"] != nil || len(r["sources"].([]any)) != 2 {
		t.Fatalf("no policy: exit %d, %v", code, r)
	}
	os.WriteFile(second, []byte(`{"version": 1, "approvedServers": ["github"], "maxApprovalTimeout": "10m"}`), 0o644)
	r, code := show()
	if code != 0 || r["source"] != second {
		t.Fatalf("policy in the second source: exit %d, %v", code, r)
	}
	p := r["policy"].(map[string]any)
	if p["maxApprovalTimeout"] != "10m0s" && p["maxApprovalTimeout"] != "10m" {
		t.Fatalf("policy = %v", p)
	}
	// Valid JSON, but a server kind the catalog does not have: the app's
	// own checks refuse it, and so does the report.
	os.WriteFile(first, []byte(`{"version": 1, "approvedServers": ["no-such-server"]}`), 0o644)
	r, code = show()
	if code != 1 || r["source"] != first || r["policy"] != nil || !strings.Contains(r["error"].(string), "no-such-server") {
		t.Fatalf("invalid policy: exit %d, %v", code, r)
	}
}
