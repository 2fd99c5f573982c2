package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/hostwait"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

func TestParsePolicyGood(t *testing.T) {
	p, err := ParsePolicy([]byte(`{
  "version": 1,
  "approvedServers": ["github", "azure-devops"],
  "allowCustomServers": true,
  "servers": {
    "github": {"clientId": "Iv23liExample", "allowlist": {"github-repository": ["DEFRA/ffc-*"]}, "lockAllowlist": true, "hiddenTools": ["merge_*"], "readOnly": true},
    "azure-devops": {"clientId": "00000000-0000-0000-0000-000000000001", "tenant": "contoso.onmicrosoft.com", "params": {"organization": "defra"}}
  },
  "hiddenTools": ["delete_*"],
  "maxApprovalTimeout": "10m",
  "audit": {"minRetentionDays": 365, "maxRetentionDays": 730, "exportEndpoint": "https://otel.example.org:4318/v1/logs",
    "exportHeaders": {"X-Tenant": "defra"}, "exportKeychainHeaders": {"Authorization": "siem-ingest-key"},
    "exportCAFile": "/etc/ssl/org-ca.pem", "exportKinds": ["call_decided", "policy_denied"], "exportArguments": true}
}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Version:            1,
		ApprovedServers:    &[]string{"github", "azure-devops"},
		AllowCustomServers: ptr(true),
		Servers: map[string]ServerPolicy{
			"github":       {ClientID: "Iv23liExample", Allowlist: map[string][]string{"github-repository": {"DEFRA/ffc-*"}}, LockAllowlist: true, HiddenTools: []string{"merge_*"}, ReadOnly: true},
			"azure-devops": {ClientID: "00000000-0000-0000-0000-000000000001", Tenant: "contoso.onmicrosoft.com", Params: map[string]string{"organization": "defra"}},
		},
		HiddenTools:        []string{"delete_*"},
		MaxApprovalTimeout: ptr(Duration(10 * time.Minute)),
		Audit: AuditPolicy{MinRetentionDays: ptr(365), MaxRetentionDays: ptr(730), ExportEndpoint: "https://otel.example.org:4318/v1/logs",
			ExportHeaders: map[string]string{"X-Tenant": "defra"}, ExportKeychainHeaders: map[string]string{"Authorization": "siem-ingest-key"},
			ExportCAFile: "/etc/ssl/org-ca.pem", ExportKinds: []string{"call_decided", "policy_denied"}, ExportArguments: true},
	}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if !p.Approves("github") || p.Approves("aws") || !p.CustomAllowed() {
		t.Fatal("Approves/CustomAllowed wrong")
	}
}

func TestPolicyDefaults(t *testing.T) {
	tests := []struct {
		name         string
		p            *Policy
		approvesAWS  bool
		customAllows bool
	}{
		{"no policy file narrows nothing", nil, true, true},
		{"a policy without approvedServers approves every kind, refuses custom", &Policy{Version: 1}, true, false},
		{"an empty approvedServers approves none", &Policy{Version: 1, ApprovedServers: &[]string{}}, false, false},
		{"custom allowed explicitly", &Policy{Version: 1, AllowCustomServers: ptr(true)}, true, true},
		{"custom refused explicitly", &Policy{Version: 1, AllowCustomServers: ptr(false)}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Approves("aws"); got != tt.approvesAWS {
				t.Errorf("Approves(aws) = %v, want %v", got, tt.approvesAWS)
			}
			if got := tt.p.CustomAllowed(); got != tt.customAllows {
				t.Errorf("CustomAllowed() = %v, want %v", got, tt.customAllows)
			}
		})
	}
}

func TestParsePolicyErrorsNameTheProblem(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"syntax error", "{\n\"version\": 1,\n\"hiddenTools\": [,]}", "line 3: invalid character ','"},
		{"cut off", "{\"version\": 1,\n\"approvedServers\": [\"github\"", "line 2: the file ends too early"},
		{"empty", "", "line 1: the policy file is empty"},
		{"missing version", `{"approvedServers": []}`, "line 1: version: missing: this Countersign reads policy version 1"},
		{"wrong version", "{\n\"version\": 2}", "line 2: version: policy version 2 is not one this Countersign reads (1)"},
		{"version as text", `{"version": "1"}`, "version: want a whole number, got text"},
		{"unknown field", "{\"version\": 1,\n\"approvedServer\": []}", "line 2: approvedServer: unknown field"},
		{"unknown per-server field", "{\"version\": 1,\n\"servers\": {\"github\": {\n\"lockedAllowlist\": true}}}", "line 3: servers.github.lockedAllowlist: unknown field"},
		{"duplicate key cannot hide a setting", "{\"version\": 1,\"allowCustomServers\": false,\n\"allowCustomServers\": true}", "line 2: allowCustomServers: appears twice"},
		{"null approvedServers is not absent", `{"version": 1, "approvedServers": null}`, "approvedServers: want a list, got null"},
		{"bad kind", `{"version": 1, "approvedServers": ["GitHub"]}`, `approvedServers[0]: "GitHub" is not a catalog server id`},
		{"kind twice", `{"version": 1, "approvedServers": ["github","github"]}`, `approvedServers[1]: "github" is listed twice`},
		{"rules for an unapproved kind", "{\"version\": 1, \"approvedServers\": [\"github\"],\n\"servers\": {\"aws\": {}}}", "line 2: servers.aws: aws is not in approvedServers"},
		{"write is not a fixed param", `{"version": 1, "servers": {"github": {"params": {"write": "false"}}}}`, "servers.github.params.write: set readOnly instead"},
		{"tenant with space", `{"version": 1, "servers": {"azure-devops": {"tenant": "a b"}}}`, "servers.azure-devops.tenant"},
		{"bad fixed param", `{"version": 1, "servers": {"azure": {"params": {"tenant": ""}}}}`, "servers.azure.params.tenant: want 1 to 1024"},
		{"bad locked entry", `{"version": 1, "servers": {"github": {"allowlist": {"github-repository": ["a b"]}}}}`, "servers.github.allowlist.github-repository[0]"},
		{"client id with space", `{"version": 1, "servers": {"github": {"clientId": "a b"}}}`, "servers.github.clientId"},
		{"hidden tool twice", `{"version": 1, "hiddenTools": ["x","x"]}`, "hiddenTools[1]"},
		{"timeout too short", `{"version": 1, "maxApprovalTimeout": "5s"}`, "maxApprovalTimeout: 5s is outside 10s to 24h"},
		{"timeout zero", `{"version": 1, "maxApprovalTimeout": "0s"}`, "maxApprovalTimeout: 0s is outside"},
		{"timeout not a duration", `{"version": 1, "maxApprovalTimeout": 600}`, `maxApprovalTimeout: want a duration such as "5m", got a number`},
		{"AI app wait without a match", `{"version": 1, "aiAppWaits": [{"match": " ", "wait": "60s"}]}`, "aiAppWaits[0].match"},
		{"AI app wait not a duration", `{"version": 1, "aiAppWaits": [{"match": "claude", "wait": "a minute"}]}`, "aiAppWaits[0].wait"},
		{"AI app wait by pigeon", `{"version": 1, "aiAppWaits": [{"match": "claude", "via": "pigeon", "wait": "60s"}]}`, "aiAppWaits[0].via"},
		{"retry window too long", `{"version": 1, "maxRetryWindow": "1h"}`, "maxRetryWindow: 1h0m0s is outside 1s to 10m0s"},
		{"retention zero", `{"version": 1, "audit": {"retentionDays": 0}}`, "audit.retentionDays: 0 is outside 1 to 3650 days"},
		{"fixed and min retention", `{"version": 1, "audit": {"retentionDays": 30, "minRetentionDays": 10}}`, "audit.retentionDays: fixes the retention"},
		{"min above max", `{"version": 1, "audit": {"minRetentionDays": 30, "maxRetentionDays": 10}}`, "audit.minRetentionDays: 30 is more than maxRetentionDays 10"},
		{"plain http export to another host", `{"version": 1, "audit": {"exportEndpoint": "http://collector.example.org/v1/logs"}}`, "audit.exportEndpoint: \"http://collector.example.org/v1/logs\": plain http is allowed only to this machine"},
		{"export not a URL", `{"version": 1, "audit": {"exportEndpoint": "collector:4318"}}`, "audit.exportEndpoint"},
		{"export with credentials", `{"version": 1, "audit": {"exportEndpoint": "https://u:p@collector.example.org"}}`, "audit.exportEndpoint: must not hold a user name or password"},
		{"export other scheme", `{"version": 1, "audit": {"exportEndpoint": "grpc://collector.example.org"}}`, "audit.exportEndpoint: \"grpc://collector.example.org\": want an https URL"},
		{"trailing data", `{"version": 1} x`, "data after the policy object"},
		{"export settings without endpoint", `{"version": 1, "audit": {"exportKinds": ["call_decided"]}}`, "audit.exportEndpoint: is needed"},
		{"export header name", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportHeaders": {"X Bad": "1"}}}`, "audit.exportHeaders: \"X Bad\" is not an HTTP header name"},
		{"export header line break", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportHeaders": {"X-A": "1\r\nHost: evil"}}}`, "line break"},
		{"keychain header twice", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportHeaders": {"X-A": "1"}, "exportKeychainHeaders": {"X-A": "k"}}}`, "also in exportHeaders"},
		{"keychain header empty name", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportKeychainHeaders": {"Authorization": ""}}}`, "is not a keychain secret name"},
		{"export CA relative", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportCAFile": "ca.pem"}}`, "not an absolute path"},
		{"call limit zero", `{"version": 1, "limits": {"callTimeoutMinutes": 0}}`, "limits.callTimeoutMinutes: 0 is outside 1 to 120 minutes"},
		{"call limit a day", "{\"version\": 1, \"limits\": {\n\"callTimeoutMinutes\": 1440}}", "line 2: limits.callTimeoutMinutes: 1440 is outside 1 to 120 minutes"},
		{"call limit as a duration", `{"version": 1, "limits": {"callTimeoutMinutes": "20m"}}`, "limits.callTimeoutMinutes: want a whole number, got text"},
		{"request limit a gigabyte", `{"version": 1, "limits": {"maxRequestMB": 1024}}`, "limits.maxRequestMB: 1024 is outside 1 to 32 MB"},
		{"request limit negative", `{"version": 1, "limits": {"maxRequestMB": -4}}`, "limits.maxRequestMB: -4 is outside 1 to 32 MB"},
		{"request limit a fraction", `{"version": 1, "limits": {"maxRequestMB": 0.5}}`, "limits.maxRequestMB"},
		{"answer limit too large", `{"version": 1, "limits": {"maxServerAnswerMB": 65}}`, "limits.maxServerAnswerMB: 65 is outside 1 to 64 MB"},
		{"no sessions", `{"version": 1, "limits": {"maxSessionsPerAIApp": 0}}`, "limits.maxSessionsPerAIApp: 0 is outside 1 to 256 sessions"},
		{"more sessions than in all", `{"version": 1, "limits": {"maxSessionsPerAIApp": 257}}`, "limits.maxSessionsPerAIApp: 257 is outside 1 to 256 sessions"},
		{"unknown limit", `{"version": 1, "limits": {"idleMinutes": 5}}`, "limits.idleMinutes: unknown field"},
		{"export unknown kind", `{"version": 1, "audit": {"exportEndpoint": "https://c.example.org", "exportKinds": ["calls"]}}`, "\"calls\" is not a kind of audit event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestByteOrderMarkIsSkipped(t *testing.T) {
	// PowerShell 5's Out-File and Notepad write one; admins use both.
	if _, err := ParsePolicy([]byte("\xef\xbb\xbf{\"version\": 1}")); err != nil {
		t.Errorf("ParsePolicy: %v", err)
	}
	if _, err := Parse([]byte("\xef\xbb\xbf{\"servers\": []}")); err != nil {
		t.Errorf("Parse: %v", err)
	}
	if _, err := ParsePolicy([]byte("\xef\xbb\xbf\n{\"version\": 1,}")); err == nil || !strings.HasPrefix(err.Error(), "line 2:") {
		t.Errorf("ParsePolicy = %v, want an error on line 2", err)
	}
}

func TestExportEndpointLoopbackHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:4318/v1/logs", "http://[::1]:4318/v1/logs", "http://localhost:4318/v1/logs", "https://otel.example.org/v1/logs"} {
		if err := checkExportEndpoint(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"version": 1, "approvedServers": ["github"]}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\"version\": 1,\n\"approvedServers\": [\"github\",]}"), 0o644)
	writable := filepath.Join(dir, "writable.json")
	os.WriteFile(writable, []byte(`{"version": 1}`), 0o644)
	os.Chmod(writable, 0o666)
	notADir := filepath.Join(good, "policy.json")

	tests := []struct {
		name       string
		path       string
		wantPolicy bool
		wantErr    string
		unreadable bool
	}{
		{"missing file is no policy", filepath.Join(dir, "none.json"), false, "", false},
		{"good file", good, true, "", false},
		{"syntax error names file and line", bad, false, "the organisation policy at " + bad + " is invalid: line 2: invalid character ']'", false},
		{"directory is unusable", dir, false, "cannot be read", true},
		{"path through a file is unusable", notADir, false, "the organisation policy at " + notADir + " cannot be read", true},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests, struct {
			name       string
			path       string
			wantPolicy bool
			wantErr    string
			unreadable bool
		}{"world-writable file is refused", writable, false, "other users can change it (mode 0666)", false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadPolicy(tt.path)
			if (p != nil) != tt.wantPolicy {
				t.Fatalf("policy = %+v, want present=%v (err %v)", p, tt.wantPolicy, err)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if p != nil && p.Path() != tt.path {
					t.Fatalf("Path() = %q", p.Path())
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Unreadable != tt.unreadable {
				t.Fatalf("err = %#v, want a *PolicyError with Unreadable=%v", err, tt.unreadable)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestAdminPolicyPathPerOS(t *testing.T) {
	tests := []struct{ goos, programData, want string }{
		{"linux", "", "/etc/countersign/policy.json"},
		{"freebsd", "", "/etc/countersign/policy.json"},
		{"darwin", "", "/Library/Application Support/Countersign/policy.json"},
		{"windows", `D:\ProgramData`, `D:\ProgramData\Countersign\policy.json`},
	}
	for _, tt := range tests {
		if got := policyPathFor(tt.goos, tt.programData); got != tt.want {
			t.Errorf("policyPathFor(%s) = %q, want %q", tt.goos, got, tt.want)
		}
	}
	if runtime.GOOS == "linux" && AdminPolicyPath() != "/etc/countersign/policy.json" {
		t.Errorf("AdminPolicyPath() = %q", AdminPolicyPath())
	}
}

func TestPolicyCheckUsesTheGivenValidators(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"version":1,"approvedServers":["github","azure-devops"],
		"servers":{"azure-devops":{"params":{"organization":"defra"},"allowlist":{"azure-devops-project":["Proj*"]},"hiddenTools":["x_*"]}},"hiddenTools":["y"]}`))
	if err != nil {
		t.Fatal(err)
	}
	errBad := errors.New("bad")
	tests := []struct {
		name string
		ch   Checks
		want string
	}{
		{"no checks", Checks{}, ""},
		{"unknown approved kind", Checks{Kind: func(k string) error {
			if k == "azure-devops" {
				return errBad
			}
			return nil
		}}, "approvedServers[1]: bad"},
		{"bad fixed param", Checks{Param: func(k, n, v string) error {
			if n == "organization" {
				return errBad
			}
			return nil
		}}, "servers.azure-devops.params.organization: bad"},
		{"bad locked pattern", Checks{Pattern: func(k, target, p string) error {
			if k == "azure-devops" && target == "azure-devops-project" && p == "Proj*" {
				return errBad
			}
			return nil
		}}, "servers.azure-devops.allowlist.azure-devops-project[0]: bad"},
		{"bad per-kind hidden tool", Checks{Tool: func(p string) error {
			if p == "x_*" {
				return errBad
			}
			return nil
		}}, "servers.azure-devops.hiddenTools[0]: bad"},
		{"bad policy-wide hidden tool", Checks{Tool: func(p string) error {
			if p == "y" {
				return errBad
			}
			return nil
		}}, "hiddenTools[0]: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.ch)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"approvedServers":["github"],"allowCustomServers":false,"servers":{"github":{"clientId":"x","params":{"org":"y"},"allowlist":{"github-repository":["a/*"]},"lockAllowlist":true,"hiddenTools":["d*"],"readOnly":true}},"hiddenTools":["z"],"maxApprovalTimeout":"10m","audit":{"minRetentionDays":30,"maxRetentionDays":60,"exportEndpoint":"https://c.example/v1/logs"}}`))
	f.Add([]byte(`{"version":1,"audit":{"retentionDays":90,"exportEndpoint":"http://127.0.0.1:4318"}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"approvedServers":[]}`))
	user := &Config{
		Version: CurrentVersion, Port: DefaultPort, ApprovalTimeout: Duration(time.Hour), AuditRetentionDays: 180,
		Servers: []Server{
			{ID: "gh", Kind: "github", Params: map[string]string{"org": "mine"}, Allowlist: map[string][]string{"github-repository": {"mine/*"}}, HiddenTools: []string{"x"}, AllowWrite: true},
			{ID: "local", Transport: TransportStdio, Command: "node"},
		},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy accepted what Validate rejects: %v", err)
		}
		// Whatever the policy says, it only narrows.
		e := Resolve(user, p, Checks{})
		if e.Err != nil {
			t.Fatalf("a valid policy failed closed: %v", e.Err)
		}
		if e.ApprovalTimeout > time.Hour || e.AuditRetentionDays < e.MinAuditRetentionDays || e.AuditRetentionDays > e.MaxAuditRetentionDays {
			t.Fatalf("timeout or retention out of bounds: %+v", e)
		}
		for _, s := range e.Servers {
			if s.Connect && s.Server.Custom() && !p.CustomAllowed() {
				t.Fatal("custom server connectable against the policy")
			}
			if s.Connect && !s.Server.Custom() && !p.Approves(s.Server.Kind) {
				t.Fatal("unapproved server connectable")
			}
			if s.AllowWrite && !s.Server.AllowWrite {
				t.Fatal("policy turned write on")
			}
			for target, list := range p.rules(s.Server.Kind).Allowlist {
				for _, locked := range list {
					if !slices.Contains(s.Patterns()[target], locked) {
						t.Fatalf("locked entry %s %q missing", target, locked)
					}
				}
			}
		}
	})
}

// TestDocExamplesParse keeps the two example files in the package doc valid.
func TestDocExamplesParse(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if code, ok := strings.CutPrefix(line, "//\t"); ok {
			cur.WriteString(code + "\n")
		} else if cur.Len() > 0 {
			blocks = append(blocks, cur.String())
			cur.Reset()
		}
	}
	if len(blocks) != 2 {
		t.Fatalf("found %d examples in doc.go, want 2 (settings, policy)", len(blocks))
	}
	user, err := Parse([]byte(blocks[0]))
	if err != nil {
		t.Fatalf("settings example: %v", err)
	}
	p, err := ParsePolicy([]byte(blocks[1]))
	if err != nil {
		t.Fatalf("policy example: %v", err)
	}
	if e := Resolve(user, p, Checks{}); e.Err != nil {
		t.Fatalf("examples do not resolve: %v", e.Err)
	}
}

// TestPolicySaysHowLongAIAppsWait: the administrator's figures come before
// the built-in ones, and the retry window can be narrowed.
func TestPolicySaysHowLongAIAppsWait(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"version": 1, "aiAppWaits": [{"match": "Claude", "via": "http", "wait": "90s"}, {"match": "cursor", "wait": "none"}], "maxRetryWindow": "2m"}`))
	if err != nil {
		t.Fatal(err)
	}
	tab := p.HostWait()
	if got := tab.Budget("claude-ai", hostwait.ViaHTTP, false); got != 90*time.Second {
		t.Errorf("Claude over http: %v, want the policy's 90s", got)
	}
	if got := tab.Budget("claude-ai", hostwait.ViaBridge, false); got != time.Minute {
		t.Errorf("Claude through the bridge: %v, want the built-in 60s", got)
	}
	if got := tab.Budget("Cursor", hostwait.ViaHTTP, false); got != 0 {
		t.Errorf("Cursor: %v, want none", got)
	}
	if p.RetryWindow() != 2*time.Minute || (*Policy)(nil).RetryWindow() != DefaultRetryWindow {
		t.Errorf("retry window %v", p.RetryWindow())
	}
}

// TestEveryWholeNumberHasItsRange: each whole-number policy field has a
// range in PolicyIntRange (which the ADMX number boxes are checked
// against), its ends parse, and one past either end is refused with a
// message naming the field and the range.
func TestEveryWholeNumberHasItsRange(t *testing.T) {
	n := 0
	for _, place := range RegistryMap() {
		if place.Type != "REG_DWORD" || place.Field == "version" {
			continue
		}
		v := fieldValue(&Policy{}, place.Field)
		if v.Type() == reflect.TypeFor[*int]() {
			v = reflect.New(v.Type().Elem()).Elem()
		}
		if v.Kind() != reflect.Int {
			continue
		}
		n++
		r, ok := PolicyIntRange[place.Field]
		if !ok {
			t.Errorf("%s has no range in PolicyIntRange", place.Field)
			continue
		}
		doc := func(x int) []byte {
			parts := strings.Split(place.Field, ".")
			var m any = map[string]any{parts[len(parts)-1]: x}
			for i := len(parts) - 2; i >= 0; i-- {
				m = map[string]any{parts[i]: m}
			}
			top := m.(map[string]any)
			top["version"] = 1
			b, _ := json.Marshal(top)
			return b
		}
		for _, ok := range []int{r.Min, r.Max} {
			if _, err := ParsePolicy(doc(ok)); err != nil {
				t.Errorf("%s = %d: %v", place.Field, ok, err)
			}
		}
		want := fmt.Sprintf("%s: %%d is outside %d to %d %s", place.Field, r.Min, r.Max, r.Unit)
		for _, bad := range []int{r.Min - 1, r.Max + 1} {
			_, err := ParsePolicy(doc(bad))
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(want, bad)) {
				t.Errorf("%s = %d: err %v, want %q", place.Field, bad, err, fmt.Sprintf(want, bad))
			}
		}
	}
	if n < 7 {
		t.Fatalf("found %d whole-number fields, want at least 7", n)
	}
	if len(PolicyIntRange) != n {
		t.Errorf("PolicyIntRange has %d entries for %d whole-number fields", len(PolicyIntRange), n)
	}
}
