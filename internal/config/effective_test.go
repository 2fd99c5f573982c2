package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustParse(t *testing.T, s string) *Config {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func mustPolicy(t *testing.T, s string) *Policy {
	t.Helper()
	if s == "" {
		return nil
	}
	p, err := ParsePolicy([]byte(s))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

const repo = "github-repository"

var (
	policyLock = Lock{Locked: true, Why: WhyPolicy}
	mine       = Lock{}
)

// TestNarrowingRules checks each way the policy narrows one server.
func TestNarrowingRules(t *testing.T) {
	tests := []struct {
		name   string
		server string // one server entry of a version 2 settings file
		policy string
		want   EffectiveServer
	}{
		{
			name:   "without a policy a catalog server connects as written",
			server: `{"id":"gh","kind":"github","params":{"toolsets":"repos"},"allowlist":{"github-repository":["a/b"]},"hiddenTools":["x"],"allowWrite":true}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{"toolsets": {Value: "repos"}},
				Allowlist: map[string][]Entry{repo: {{Value: "a/b"}}}, HiddenTools: []Entry{{Value: "x"}}, AllowWrite: true},
		},
		{
			name:   "without a policy a custom server connects",
			server: `{"id":"local","transport":"stdio","command":"node"}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}},
		},
		{
			name:   "a server kind not approved may not connect",
			server: `{"id":"aws","kind":"aws","params":{"region":"eu-west-2"}}`,
			policy: `{"version":1,"approvedServers":["github"]}`,
			want: EffectiveServer{Why: "Your organisation's policy does not approve aws servers",
				Params: map[string]Entry{"region": {Value: "eu-west-2"}}},
		},
		{
			name:   "no approvedServers approves every kind",
			server: `{"id":"aws","kind":"aws"}`,
			policy: `{"version":1}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}},
		},
		{
			name:   "custom servers are refused once a policy exists",
			server: `{"id":"local","transport":"stdio","command":"node"}`,
			policy: `{"version":1}`,
			want:   EffectiveServer{Why: "Your organisation's policy allows only approved servers from the catalog", Params: map[string]Entry{}},
		},
		{
			name:   "custom servers connect when the policy allows them",
			server: `{"id":"local","transport":"stdio","command":"node"}`,
			policy: `{"version":1,"allowCustomServers":true,"approvedServers":[]}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}},
		},
		{
			name:   "locked entries are kept when the person removed them",
			server: `{"id":"gh","kind":"github","allowlist":{"github-repository":["mine/repo"]}}`,
			policy: `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/ffc-*","DEFRA/shared"]}}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				Allowlist: map[string][]Entry{repo: {{"DEFRA/ffc-*", policyLock}, {"DEFRA/shared", policyLock}, {"mine/repo", mine}}}},
		},
		{
			name:   "locked entries are kept when the person has no allowlist",
			server: `{"id":"gh","kind":"github"}`,
			policy: `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/ffc-*"]}}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				Allowlist: map[string][]Entry{repo: {{"DEFRA/ffc-*", policyLock}}}},
		},
		{
			name:   "entries stay with their target kind",
			server: `{"id":"atl","kind":"atlassian","allowlist":{"jira-project":["ABC"],"confluence-space":["DOCS"]}}`,
			policy: `{"version":1,"servers":{"atlassian":{"allowlist":{"confluence-space":["ABC"]}}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				Allowlist: map[string][]Entry{"jira-project": {{"ABC", mine}}, "confluence-space": {{"ABC", policyLock}, {"DOCS", mine}}}},
		},
		{
			name:   "an entry both set is shown once, locked",
			server: `{"id":"gh","kind":"github","allowlist":{"github-repository":["DEFRA/shared","mine/repo"]}}`,
			policy: `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/shared"]}}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				Allowlist: map[string][]Entry{repo: {{"DEFRA/shared", policyLock}, {"mine/repo", mine}}}},
		},
		{
			name:   "a locked allowlist drops the person's additions",
			server: `{"id":"gh","kind":"github","allowlist":{"github-repository":["DEFRA/shared","mine/repo"]}}`,
			policy: `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/shared"]},"lockAllowlist":true}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				Allowlist:     map[string][]Entry{repo: {{"DEFRA/shared", policyLock}}},
				AllowlistLock: Lock{true, "Your organisation's policy sets this list"},
				Dropped:       map[string][]Entry{repo: {{"mine/repo", Lock{true, "Not applied: your organisation's policy sets this list"}}}}},
		},
		{
			name:   "a locked allowlist with no entries allows nothing of the person's",
			server: `{"id":"gh","kind":"github","allowlist":{"github-repository":["mine/repo"]}}`,
			policy: `{"version":1,"servers":{"github":{"lockAllowlist":true}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				AllowlistLock: Lock{true, "Your organisation's policy sets this list"},
				Dropped:       map[string][]Entry{repo: {{"mine/repo", Lock{true, "Not applied: your organisation's policy sets this list"}}}}},
		},
		{
			name:   "rules for another kind do not apply",
			server: `{"id":"gh","kind":"github","allowlist":{"github-repository":["mine/repo"]}}`,
			policy: `{"version":1,"servers":{"atlassian":{"allowlist":{"jira-project":["ABC"]},"lockAllowlist":true,"readOnly":true}}}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}, Allowlist: map[string][]Entry{repo: {{"mine/repo", mine}}}},
		},
		{
			name:   "hidden tools are the union of policy-wide, per-kind and the person's",
			server: `{"id":"gh","kind":"github","hiddenTools":["mine","delete_*"]}`,
			policy: `{"version":1,"hiddenTools":["delete_*"],"servers":{"github":{"hiddenTools":["merge_*","delete_*"]}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				HiddenTools: []Entry{{"delete_*", policyLock}, {"merge_*", policyLock}, {"mine", mine}}},
		},
		{
			name:   "policy-wide hidden tools apply to custom servers too",
			server: `{"id":"local","transport":"stdio","command":"node"}`,
			policy: `{"version":1,"allowCustomServers":true,"hiddenTools":["delete_*"]}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}, HiddenTools: []Entry{{"delete_*", policyLock}}},
		},
		{
			name:   "fixed params override the person's and are locked",
			server: `{"id":"ado","kind":"azure-devops","params":{"organization":"mine","toolsets":"core"}}`,
			policy: `{"version":1,"servers":{"azure-devops":{"clientId":"11111111-2222","tenant":"contoso","params":{"organization":"defra","region":"eu"}}}}`,
			want: EffectiveServer{Connect: true, ClientID: "11111111-2222", Tenant: "contoso", Params: map[string]Entry{
				"organization": {"defra", policyLock}, "region": {"eu", policyLock}, "toolsets": {"core", mine}}},
		},
		{
			name:   "read-only policy turns write off and locks it",
			server: `{"id":"gh","kind":"github","allowWrite":true}`,
			policy: `{"version":1,"servers":{"github":{"readOnly":true}}}`,
			want: EffectiveServer{Connect: true, Params: map[string]Entry{},
				AllowWriteLock: Lock{true, "Your organisation's policy keeps this server read-only"}},
		},
		{
			name:   "write stays as the person chose without readOnly",
			server: `{"id":"gh","kind":"github","allowWrite":true}`,
			policy: `{"version":1,"servers":{"github":{}}}`,
			want:   EffectiveServer{Connect: true, Params: map[string]Entry{}, AllowWrite: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := mustParse(t, `{"version":2,"servers":[`+tt.server+`]}`)
			e := Resolve(user, mustPolicy(t, tt.policy), Checks{})
			if e.Err != nil {
				t.Fatalf("Err = %v", e.Err)
			}
			tt.want.Server = user.Servers[0]
			if diff := cmp.Diff(tt.want, e.Servers[0], cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestTimeoutAndRetention checks the policy's bounds on the settings-wide values.
func TestTimeoutAndRetention(t *testing.T) {
	type out struct {
		Timeout, MaxTimeout time.Duration
		TimeoutWhy          string
		Days, Min, Max      int
		RetentionWhy        string
		Export              string
	}
	tests := []struct {
		name, settings, policy string
		want                   out
	}{
		{"no policy", `{"version":2,"approvalTimeout":"1h","auditRetentionDays":30}`, "",
			out{time.Hour, 24 * time.Hour, "", 30, 1, 3650, "", ""}},
		{"timeout capped", `{"version":2,"approvalTimeout":"1h"}`, `{"version":1,"maxApprovalTimeout":"10m"}`,
			out{10 * time.Minute, 10 * time.Minute, "Your organisation's policy allows at most 10 minutes", 180, 1, 3650, "", ""}},
		{"timeout under the cap is kept", `{"version":2,"approvalTimeout":"2m"}`, `{"version":1,"maxApprovalTimeout":"1h30m"}`,
			out{2 * time.Minute, 90 * time.Minute, "Your organisation's policy allows at most 1 hour 30 minutes", 180, 1, 3650, "", ""}},
		{"retention fixed", `{"version":2,"auditRetentionDays":30}`, `{"version":1,"audit":{"retentionDays":400}}`,
			out{5 * time.Minute, 24 * time.Hour, "", 400, 400, 400, WhyPolicy, ""}},
		{"retention raised to the minimum", `{"version":2,"auditRetentionDays":30}`, `{"version":1,"audit":{"minRetentionDays":365}}`,
			out{5 * time.Minute, 24 * time.Hour, "", 365, 365, 3650, "Your organisation's policy keeps audit records for at least 365 days", ""}},
		{"retention lowered to the maximum", `{"version":2,"auditRetentionDays":400}`, `{"version":1,"audit":{"maxRetentionDays":90}}`,
			out{5 * time.Minute, 24 * time.Hour, "", 90, 1, 90, "Your organisation's policy keeps audit records for at most 90 days", ""}},
		{"retention inside bounds is kept", `{"version":2,"auditRetentionDays":200}`, `{"version":1,"audit":{"minRetentionDays":100,"maxRetentionDays":300}}`,
			out{5 * time.Minute, 24 * time.Hour, "", 200, 100, 300, "Your organisation's policy keeps audit records for 100 to 300 days", ""}},
		{"export endpoint comes from the policy", `{"version":2}`, `{"version":1,"audit":{"exportEndpoint":"https://otel.example.org/v1/logs"}}`,
			out{5 * time.Minute, 24 * time.Hour, "", 180, 1, 3650, "", "https://otel.example.org/v1/logs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Resolve(mustParse(t, tt.settings), mustPolicy(t, tt.policy), Checks{})
			got := out{e.ApprovalTimeout, e.MaxApprovalTimeout, e.ApprovalTimeoutWhy, e.AuditRetentionDays, e.MinAuditRetentionDays, e.MaxAuditRetentionDays, e.AuditRetentionWhy, e.ExportEndpoint}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestChecksDecideWhetherAServerConnects(t *testing.T) {
	user := mustParse(t, `{"version":2,"servers":[
		{"id":"ado","kind":"azure-devops","params":{"project":"p"}},
		{"id":"ado2","kind":"azure-devops","params":{"organization":"mine"}},
		{"id":"bad","kind":"made-up"}]}`)
	ch := Checks{
		Kind: func(k string) error {
			if k == "made-up" {
				return errors.New(`"made-up" is not in the catalog`)
			}
			return nil
		},
		Params: func(kind string, p map[string]string) error {
			if p["organization"] == "" {
				return errors.New("azure DevOps needs an organisation")
			}
			return nil
		},
	}
	e := Resolve(user, nil, ch)
	got := map[string]string{}
	for _, s := range e.Servers {
		got[s.Server.ID] = fmt.Sprint(s.Connect, " ", s.Why)
	}
	want := map[string]string{
		"ado":  "false Azure DevOps needs an organisation",
		"ado2": "true ",
		"bad":  `false This server's settings are invalid: servers[2].kind: "made-up" is not in the catalog`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// A fixed parameter from the policy completes a server.
	e = Resolve(user, mustPolicy(t, `{"version":1,"servers":{"azure-devops":{"params":{"organization":"defra"}}}}`), ch)
	if s, _ := e.Server("ado"); !s.Connect || s.ParamValues()["organization"] != "defra" {
		t.Fatalf("ado = %+v", s)
	}
}

// TestInvalidPolicyFailsClosed loads broken policy files and checks that no
// server may connect, nothing can be added, and the reason names the file.
func TestInvalidPolicyFailsClosed(t *testing.T) {
	user := mustParse(t, `{"version":2,"auditRetentionDays":30,"servers":[
		{"id":"gh","kind":"github","allowlist":{"github-repository":["a/b"]}},
		{"id":"local","transport":"stdio","command":"node"}]}`)
	tests := []struct{ name, policy, want string }{
		{"syntax error", "{\"version\": 1,\n\"approvedServers\": [\"github\"\n}", "is invalid: line 3: invalid character '}'"},
		{"unknown field", "{\"version\": 1,\n\"approvedServerz\": [\"github\"]}", "is invalid: line 2: approvedServerz: unknown field"},
		{"wrong version", `{"version": 7}`, "is invalid: line 1: version: policy version 7 is not one this Countersign reads"},
		{"missing version", `{"approvedServers": ["github"]}`, "is invalid: line 1: version: missing"},
		{"bad export URL", "{\"version\": 1,\n\"audit\": {\"exportEndpoint\": \"http://collector.example.org\"}}", "is invalid: line 2: audit.exportEndpoint"},
		{"empty file", ``, "is invalid: line 1: the policy file is empty"},
		{"half-written file", `{"version": 1, "approvedSer`, "is invalid: line 1: the file ends too early"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.json")
			os.WriteFile(path, []byte(tt.policy), 0o644)
			p, err := LoadPolicy(path)
			if err == nil {
				t.Fatalf("LoadPolicy accepted %q", tt.policy)
			}
			e := FailClosed(user, err)
			checkFailedClosed(t, e, "the organisation policy at "+path+" "+tt.want)
			if p != nil {
				t.Fatal("LoadPolicy returned a policy with an error")
			}
		})
	}
	t.Run("a policy that fails the catalog checks", func(t *testing.T) {
		p := mustPolicy(t, `{"version":1,"approvedServers":["github","gitlab"]}`)
		e := Resolve(user, p, Checks{Kind: func(k string) error {
			if k == "gitlab" {
				return errors.New(`"gitlab" is not in the catalog`)
			}
			return nil
		}})
		checkFailedClosed(t, e, `the organisation policy is invalid: approvedServers[1]: "gitlab" is not in the catalog`)
	})
}

func checkFailedClosed(t *testing.T, e *Effective, want string) {
	t.Helper()
	if e.Err == nil || !strings.Contains(e.Err.Error(), want) {
		t.Fatalf("Err = %v, want it to contain %q", e.Err, want)
	}
	if len(e.Servers) != 2 {
		t.Fatalf("servers = %d, want both listed", len(e.Servers))
	}
	for _, s := range e.Servers {
		if s.Connect {
			t.Errorf("%s may connect under an invalid policy", s.Server.ID)
		}
		if !strings.HasPrefix(s.Why, "Countersign can't connect servers: the organisation policy") || !strings.Contains(s.Why, want) {
			t.Errorf("%s: Why = %q", s.Server.ID, s.Why)
		}
		if !s.AllowlistLock.Locked || !s.AllowWriteLock.Locked || s.AllowWrite {
			t.Errorf("%s: allowlist or write not locked: %+v", s.Server.ID, s)
		}
	}
	for _, kind := range []string{"github", ""} {
		if ok, why := e.CanAdd(kind); ok || !strings.Contains(why, want) {
			t.Errorf("CanAdd(%q) = %v, %q", kind, ok, why)
		}
	}
	if e.AuditRetentionDays != MaxAuditRetentionDays {
		t.Errorf("retention %d: audit records would be pruned while the policy is unknown", e.AuditRetentionDays)
	}
	// Nothing that widens access is accepted.
	next := e.Settings.Clone()
	next.Servers[0].Allowlist[repo] = append(next.Servers[0].Allowlist[repo], "c/d")
	if err := e.CheckEdit(e.Settings, next); err == nil {
		t.Error("CheckEdit accepted an allowlist addition while failed closed")
	}
	next = e.Settings.Clone()
	next.Servers = append(next.Servers, Server{ID: "new", Kind: "github"})
	if err := e.CheckEdit(e.Settings, next); err == nil {
		t.Error("CheckEdit accepted a new server while failed closed")
	}
	next = e.Settings.Clone()
	next.StartAtLogin = true
	next.Servers = next.Servers[:1]
	if err := e.CheckEdit(e.Settings, next); err != nil {
		t.Errorf("CheckEdit refused a harmless edit while failed closed: %v", err)
	}
}

func TestCanAdd(t *testing.T) {
	tests := []struct {
		name, policy, kind string
		ok                 bool
		why                string
	}{
		{"no policy, catalog", "", "github", true, ""},
		{"no policy, custom", "", "", true, ""},
		{"approved", `{"version":1,"approvedServers":["github"]}`, "github", true, ""},
		{"not approved", `{"version":1,"approvedServers":["github"]}`, "aws", false, "Your organisation's policy does not approve aws servers"},
		{"custom refused by default", `{"version":1}`, "", false, "Your organisation's policy allows only approved servers from the catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Resolve(Defaults(), mustPolicy(t, tt.policy), Checks{})
			ok, why := e.CanAdd(tt.kind)
			if ok != tt.ok || why != tt.why {
				t.Fatalf("CanAdd(%q) = %v, %q; want %v, %q", tt.kind, ok, why, tt.ok, tt.why)
			}
		})
	}
}

func TestCheckEdit(t *testing.T) {
	const settings = `{"version":2,"approvalTimeout":"5m","auditRetentionDays":400,"servers":[
		{"id":"gh","kind":"github","allowlist":{"github-repository":["old/entry"]},"params":{"org":"x"}},
		{"id":"local","transport":"stdio","command":"node"}]}`
	const policy = `{"version":1,"approvedServers":["github"],"allowCustomServers":false,
		"servers":{"github":{"allowlist":{"github-repository":["DEFRA/*"]},"lockAllowlist":true,"readOnly":true,"params":{"org":"defra"}}},
		"maxApprovalTimeout":"10m","audit":{"minRetentionDays":365}}`
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" accepts
	}{
		{"unrelated edit", func(c *Config) { c.StartAtLogin = true }, ""},
		{"existing unapproved custom server may stay", func(c *Config) { c.Servers[1].Name = "Local" }, ""},
		{"removing a server", func(c *Config) { c.Servers = c.Servers[:1] }, ""},
		{"adding an unapproved kind", func(c *Config) { c.Servers = append(c.Servers, Server{ID: "aws", Kind: "aws"}) },
			"servers[2]: your organisation's policy does not approve aws servers"},
		{"adding a custom server", func(c *Config) {
			c.Servers = append(c.Servers, Server{ID: "x", Transport: TransportStdio, Command: "y"})
		}, "servers[2]: your organisation's policy allows only approved servers from the catalog"},
		{"changing an existing server's kind counts as adding", func(c *Config) { c.Servers[1] = Server{ID: "local", Kind: "aws"} },
			"servers[1]: your organisation's policy does not approve aws servers"},
		{"adding an approved kind", func(c *Config) { c.Servers = append(c.Servers, Server{ID: "gh2", Kind: "github"}) }, ""},
		{"adding to a locked allowlist", func(c *Config) { c.Servers[0].Allowlist[repo] = append(c.Servers[0].Allowlist[repo], "new/entry") },
			`servers[0].allowlist.github-repository[1]: "new/entry" can't be added: your organisation's policy sets this list`},
		{"adding a locked entry's value under another target kind", func(c *Config) { c.Servers[0].Allowlist["other-kind"] = []string{"DEFRA/*"} },
			`servers[0].allowlist.other-kind[0]: "DEFRA/*" can't be added: your organisation's policy sets this list`},
		{"listing a locked entry is fine", func(c *Config) { c.Servers[0].Allowlist[repo] = append(c.Servers[0].Allowlist[repo], "DEFRA/*") }, ""},
		{"removing an entry is fine", func(c *Config) { c.Servers[0].Allowlist = nil }, ""},
		{"changing a fixed param", func(c *Config) { c.Servers[0].Params["org"] = "y" },
			`servers[0].params.org: your organisation's policy sets this to "defra"`},
		{"setting a fixed param to its value", func(c *Config) { c.Servers[0].Params["org"] = "defra" }, ""},
		{"turning write on", func(c *Config) { c.Servers[0].AllowWrite = true },
			"servers[0].allowWrite: your organisation's policy keeps this server read-only"},
		{"timeout above the cap", func(c *Config) { c.ApprovalTimeout = Duration(time.Hour) },
			"approvalTimeout: your organisation's policy allows at most 10 minutes"},
		{"timeout under the cap", func(c *Config) { c.ApprovalTimeout = Duration(8 * time.Minute) }, ""},
		{"retention under the minimum", func(c *Config) { c.AuditRetentionDays = 30 },
			"auditRetentionDays: 30 days: your organisation's policy keeps audit records for at least 365 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := mustParse(t, settings)
			e := Resolve(old, mustPolicy(t, policy), Checks{})
			next := old.Clone()
			tt.edit(next)
			err := e.CheckEdit(old, next)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckEdit: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("CheckEdit = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLockDisplay renders what the settings window shows for each scenario
// under testdata/effective (settings.json, optional policy.json) and
// compares it with the scenario's want.txt.
func TestLockDisplay(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "effective", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			user, err := Load(filepath.Join(dir, "settings.json"))
			if err != nil {
				t.Fatal(err)
			}
			var e *Effective
			p, err := LoadPolicy(filepath.Join(dir, "policy.json"))
			if err != nil {
				// Name the file relative to the scenario, so the golden does
				// not depend on where the repository is checked out.
				var pe *PolicyError
				if errors.As(err, &pe) {
					pe.Path = "policy.json"
				}
				e = FailClosed(user, err)
			} else {
				e = Resolve(user, p, Checks{})
			}
			golden(t, filepath.Join("effective", filepath.Base(dir), "want.txt"), []byte(render(e)))
		})
	}
}

// render writes the effective settings the way a reviewer reads them.
func render(e *Effective) string {
	var b strings.Builder
	if e.Err != nil {
		fmt.Fprintf(&b, "ERROR: %v\n", e.Err)
	}
	fmt.Fprintf(&b, "approval timeout: %v (max %v)%s\n", e.ApprovalTimeout, e.MaxApprovalTimeout, note(e.ApprovalTimeoutWhy))
	fmt.Fprintf(&b, "audit retention: %d days (%d to %d)%s\n", e.AuditRetentionDays, e.MinAuditRetentionDays, e.MaxAuditRetentionDays, note(e.AuditRetentionWhy))
	fmt.Fprintf(&b, "export: %q\n", e.ExportEndpoint)
	for _, kind := range []string{"github", "atlassian", "azure-devops", "sonarqube-cloud", "aws", "azure", ""} {
		ok, why := e.CanAdd(kind)
		name := kind
		if name == "" {
			name = "custom"
		}
		fmt.Fprintf(&b, "add %s: %v%s\n", name, ok, note(why))
	}
	for _, s := range e.Servers {
		fmt.Fprintf(&b, "\nserver %s (%s)\n", s.Server.ID, s.Server.DisplayName())
		if s.Connect {
			b.WriteString("  connect: yes\n")
		} else {
			fmt.Fprintf(&b, "  connect: no — %s\n", s.Why)
		}
		if s.ClientID != "" {
			fmt.Fprintf(&b, "  client id: %s\n", s.ClientID)
		}
		if s.Tenant != "" {
			fmt.Fprintf(&b, "  tenant: %s\n", s.Tenant)
		}
		for _, k := range sortedKeys(s.Params) {
			fmt.Fprintf(&b, "  param %s = %s%s\n", k, s.Params[k].Value, lockNote(s.Params[k].Lock))
		}
		fmt.Fprintf(&b, "  allowlist%s\n", lockNote(s.AllowlistLock))
		for _, target := range sortedKeys(s.Allowlist) {
			for _, a := range s.Allowlist[target] {
				fmt.Fprintf(&b, "    %s %s%s\n", target, a.Value, lockNote(a.Lock))
			}
		}
		for _, target := range sortedKeys(s.Dropped) {
			for _, a := range s.Dropped[target] {
				fmt.Fprintf(&b, "    (%s %s)%s\n", target, a.Value, lockNote(a.Lock))
			}
		}
		b.WriteString("  hidden tools\n")
		for _, h := range s.HiddenTools {
			fmt.Fprintf(&b, "    %s%s\n", h.Value, lockNote(h.Lock))
		}
		fmt.Fprintf(&b, "  write: %v%s\n", s.AllowWrite, lockNote(s.AllowWriteLock))
	}
	return b.String()
}

func note(why string) string {
	if why == "" {
		return ""
	}
	return " — " + why
}

func lockNote(l Lock) string {
	if !l.Locked {
		return ""
	}
	return " [locked: " + l.Why + "]"
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute:                  "10 minutes",
		time.Hour + 30*time.Minute:        "1 hour 30 minutes",
		90 * time.Second:                  "1 minute 30 seconds",
		24 * time.Hour:                    "24 hours",
		time.Hour + time.Second:           "1 hour 1 second",
		10*time.Second + time.Millisecond: "10 seconds",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
