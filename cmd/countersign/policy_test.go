package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	} else if got := canon(r["limits"]); got != `{"callTimeoutMinutes":10,"maxRequestMB":4,"maxServerAnswerMB":8,"maxSessionsPerAIApp":32,"messagesInFlightMB":32,"setByPolicy":[]}` {
		t.Fatalf("the built-in limits: %s", got)
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
	os.WriteFile(second, []byte(`{"version": 1, "limits": {"callTimeoutMinutes": 30, "maxRequestMB": 16, "maxSessionsPerAIApp": 8}}`), 0o644)
	if r, code := show(); code != 0 || canon(r["limits"]) != `{"callTimeoutMinutes":30,"maxRequestMB":16,"maxServerAnswerMB":8,"maxSessionsPerAIApp":8,"messagesInFlightMB":64,"setByPolicy":["callTimeoutMinutes","maxRequestMB","maxSessionsPerAIApp"]}` {
		t.Fatalf("the policy's limits: exit %d, %s", code, canon(r["limits"]))
	}
	os.WriteFile(second, []byte(`{"version": 1, "limits": {"maxRequestMB": 100}}`), 0o644)
	if r, code := show(); code != 1 || !strings.Contains(fmt.Sprint(r["error"]), "limits.maxRequestMB: 100 is outside 1 to 32 MB") || r["policy"] != nil {
		t.Fatalf("a limit out of range: exit %d, %v", code, r)
	}
	// Valid JSON, but a server kind the catalog does not have: the app's
	// own checks refuse it, and so does the report.
	os.WriteFile(first, []byte(`{"version": 1, "approvedServers": ["no-such-server"]}`), 0o644)
	r, code = show()
	if code != 1 || r["source"] != first || r["policy"] != nil || !strings.Contains(r["error"].(string), "no-such-server") {
		t.Fatalf("invalid policy: exit %d, %v", code, r)
	}
}

func TestPolicyHostsPrintsSnippetsForThisMachinesServers(t *testing.T) {
	dir := t.TempDir()
	settings := filepath.Join(dir, "settings.json")
	os.WriteFile(settings, []byte(`{"version": 2, "port": 41234, "servers": [{"id": "github", "kind": "github"}]}`), 0o600)
	var out bytes.Buffer
	if code := showHostSnippets(&out, settings); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"ChatToolsAutoApprove", "allowedMcpServers", `"http://127.0.0.1:41234/servers/github/mcp"`, "managed-mcp.json", "allowManagedMcpServersOnly", "countersign-bridge"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := showHostSnippets(&out, filepath.Join(dir, "none.json")); code != 1 || out.Len() != 0 {
		t.Fatalf("no servers: exit %d, output %q", code, out.String())
	}
}

// canon is a JSON value written with sorted keys.
func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
