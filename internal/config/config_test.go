package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(`{
  "approvalTimeout": "90s",
  "servers": [
    {"id": "everything", "transport": "streamable-http", "url": "http://127.0.0.1:3001/mcp"},
    {"id": "local", "name": "Local", "transport": "stdio", "command": "node", "args": ["s.js"]}
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != DefaultPort || time.Duration(c.ApprovalTimeout) != 90*time.Second || len(c.Servers) != 2 {
		t.Fatalf("got %+v", c)
	}
	if s, ok := c.Server("local"); !ok || s.DisplayName() != "Local" {
		t.Fatalf("Server(local) = %+v, %v", s, ok)
	}
}

func TestParseCurrentVersion(t *testing.T) {
	c, err := Parse([]byte(`{
  "version": 2,
  "startAtLogin": true,
  "auditRetentionDays": 30,
  "servers": [
    {"id": "gh", "name": "GitHub", "kind": "github", "allowlist": {"github-repository": ["DEFRA/ffc-*", "DEFRA/x"]},
     "hiddenTools": ["delete_*"], "allowWrite": true},
    {"id": "ado", "kind": "azure-devops", "params": {"organization": "defra"}}
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Version: 2, Port: DefaultPort, ApprovalTimeout: Duration(DefaultApprovalTimeout),
		StartAtLogin: true, AuditRetentionDays: 30,
		Servers: []Server{
			{ID: "gh", Name: "GitHub", Kind: "github", Allowlist: map[string][]string{"github-repository": {"DEFRA/ffc-*", "DEFRA/x"}}, HiddenTools: []string{"delete_*"}, AllowWrite: true},
			{ID: "ado", Kind: "azure-devops", Params: map[string]string{"organization": "defra"}},
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("Parse (-want +got):\n%s", diff)
	}
	if c.Servers[0].Custom() || !(Server{Transport: TransportStdio}).Custom() {
		t.Fatal("Custom() wrong")
	}
}

func TestParseErrorsNameTheProblem(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"syntax error gives the line", "{\n\"port\": 1,\n\"servers\": [}", "line 3: invalid character"},
		{"cut-off file gives the last line", "{\n\"port\": 1,\n\"servers\": [", "line 3: the file ends too early"},
		{"empty file", "  \n", "line 1: the settings file is empty"},
		{"top level is not an object", `[1]`, "line 1: want an object, got a list"},
		{"wrong type gives line and field", "{\n\"port\": \"x\"}", "line 2: port: want a whole number, got text"},
		{"fraction where a whole number belongs", `{"port": 1.5}`, "port: want a whole number, got 1.5"},
		{"unknown field names path and line", "{\n \"prot\": 1}", "line 2: prot: unknown field"},
		{"unknown nested field", "{\"version\":2,\"servers\":[\n{\"id\":\"a\",\n\"kid\":\"github\"}]}", "line 3: servers[0].kid: unknown field"},
		{"misspelt case is unknown", `{"Port": 1}`, "Port: unknown field"},
		{"duplicate key", "{\"port\": 1,\n\"port\": 2}", "line 2: port: appears twice"},
		{"null is not a value", `{"servers": null}`, "servers: want a list, got null"},
		{"bad port", `{"port": 70000}`, "port: 70000"},
		{"bad timeout", `{"approvalTimeout": "1s"}`, "line 1: approvalTimeout: 1s is outside"},
		{"timeout not a duration", `{"approvalTimeout": "soon"}`, `approvalTimeout: want a duration such as "5m", got "soon"`},
		{"bad id", `{"servers":[{"id":"A B","transport":"stdio","command":"x"}]}`, "servers[0].id"},
		{"duplicate id names line", "{\"servers\":[\n{\"id\":\"a\",\"transport\":\"stdio\",\"command\":\"x\"},\n{\"id\":\"a\",\"transport\":\"stdio\",\"command\":\"x\"}]}", `line 3: servers[1].id: "a" is used twice`},
		{"bad transport", `{"servers":[{"id":"a","transport":"ws"}]}`, "servers[0].transport"},
		{"http without url", `{"servers":[{"id":"a","transport":"sse"}]}`, "servers[0].url"},
		{"url with password", `{"servers":[{"id":"a","transport":"sse","url":"https://u:p@x.example"}]}`, "servers[0].url: must not hold a user name or password"},
		{"stdio without command", `{"servers":[{"id":"a","transport":"stdio"}]}`, "servers[0].command"},
		{"trailing data", `{} {}`, "data after the settings object"},
		{"v1 file using a v2 field gets a hint", `{"servers":[{"id":"a","kind":"github"}]}`, `servers[0].kind: unknown field (kind is a settings version 2 field: add "version": 2)`},
		{"v1 top-level hint", `{"startAtLogin": true}`, `startAtLogin: unknown field (startAtLogin is a settings version 2 field`},
		{"newer version", "{\n\"version\": 3}", "line 2: version: settings version 3 is newer than this Countersign understands (up to 2)"},
		{"version zero", `{"version": 0}`, "version: settings version 0 is not one"},
		{"version as text", `{"version": "2"}`, "version: want a whole number, got text"},
		{"v2 custom server needs transport", `{"version":2,"servers":[{"id":"a"}]}`, "servers[0].transport: a custom server (no kind) needs a transport"},
		{"catalog server with url", `{"version":2,"servers":[{"id":"a","kind":"github","url":"https://x.example"}]}`, "servers[0].url: a catalog server's address comes from the catalog"},
		{"catalog server with transport", `{"version":2,"servers":[{"id":"a","kind":"github","transport":"stdio"}]}`, "servers[0].transport"},
		{"bad kind", `{"version":2,"servers":[{"id":"a","kind":"Git Hub"}]}`, `servers[0].kind: "Git Hub" is not a catalog server id`},
		{"params on a custom server", `{"version":2,"servers":[{"id":"a","transport":"stdio","command":"x","params":{"org":"y"}}]}`, "servers[0].params: only catalog servers"},
		{"bad param name", `{"version":2,"servers":[{"id":"a","kind":"github","params":{"my org":"y"}}]}`, `servers[0].params["my org"]`},
		{"write is not a param", `{"version":2,"servers":[{"id":"a","kind":"github","params":{"write":"true"}}]}`, "servers[0].params.write: set allowWrite instead"},
		{"empty param value", `{"version":2,"servers":[{"id":"a","kind":"github","params":{"organization":""}}]}`, "servers[0].params.organization: want 1 to 1024"},
		{"empty allowlist entry", "{\"version\":2,\"servers\":[{\"id\":\"a\",\"kind\":\"github\",\n\"allowlist\":{\"github-repository\":[\"\"]}}]}", "line 2: servers[0].allowlist.github-repository[0]: want 1 to 256"},
		{"allowlist as a list", `{"version":2,"servers":[{"id":"a","kind":"github","allowlist":["x"]}]}`, "servers[0].allowlist: want an object, got a list"},
		{"bad target kind", `{"version":2,"servers":[{"id":"a","kind":"github","allowlist":{"GitHub repo":["x"]}}]}`, `servers[0].allowlist["GitHub repo"]: "GitHub repo" is not a target kind`},
		{"allowlist entry with a space", `{"version":2,"servers":[{"id":"a","kind":"github","allowlist":{"github-repository":["x","a b"]}}]}`, "servers[0].allowlist.github-repository[1]"},
		{"allowlist entry twice", `{"version":2,"servers":[{"id":"a","kind":"github","allowlist":{"github-repository":["x","x"]}}]}`, `servers[0].allowlist.github-repository[1]: "x" is listed twice`},
		{"hidden tool empty", `{"version":2,"servers":[{"id":"a","kind":"github","hiddenTools":[""]}]}`, "servers[0].hiddenTools[0]"},
		{"secret in env", `{"version":2,"servers":[{"id":"a","transport":"stdio","command":"x","env":{"GITHUB_TOKEN":"ghp_x"}}]}`, "servers[0].env.GITHUB_TOKEN: settings never hold secrets"},
		{"password in env", `{"servers":[{"id":"a","transport":"stdio","command":"x","env":{"DB_PASSWORD":"x"}}]}`, "servers[0].env.DB_PASSWORD"},
		{"retention too long", `{"version":2,"auditRetentionDays":5000}`, "auditRetentionDays: 5000 is outside 1 to 3650 days"},
		{"retention negative", `{"version":2,"auditRetentionDays":-1}`, "auditRetentionDays: -1"},
		{"huge number", `{"port": 99999999999999999999}`, "port: want a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestParseErrorIsFieldError(t *testing.T) {
	_, err := Parse([]byte("{\"version\": 2,\n\"servers\": [{\"id\": \"a\", \"kind\": \"github\",\n \"allowlist\": {\"github-repository\": [\"ok\", \"not ok\"]}}]}"))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want a *FieldError", err, err)
	}
	if diff := cmp.Diff(&FieldError{Line: 3, Path: "servers[0].allowlist.github-repository[1]", Msg: "want 1 to 256 characters without spaces"}, fe); diff != "" {
		t.Fatalf("FieldError (-want +got):\n%s", diff)
	}
}

func TestHarmlessEnvNamesAreAccepted(t *testing.T) {
	for _, name := range []string{"PORT", "PATH", "NODE_ENV", "LOG_LEVEL", "AZURE_TENANT_ID"} {
		c := &Config{Version: CurrentVersion, Port: 1, ApprovalTimeout: Duration(time.Minute), AuditRetentionDays: 1,
			Servers: []Server{{ID: "a", Transport: TransportStdio, Command: "x", Env: map[string]string{name: "v"}}}}
		if err := c.Validate(); err != nil {
			t.Errorf("env %s: %v", name, err)
		}
	}
}

func TestCheckUsesTheGivenValidators(t *testing.T) {
	c, err := Parse([]byte(`{"version":2,"servers":[
		{"id":"gh","kind":"github","allowlist":{"github-repository":["DEFRA/ffc-*"]},"hiddenTools":["merge_*"]},
		{"id":"ado","kind":"azure-devops","params":{"organization":"defra"},"allowlist":{"azure-devops-project":["Proj"]}},
		{"id":"local","transport":"stdio","command":"x","allowlist":{"github-repository":["anything"]}}]}`))
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
		{"all pass", Checks{Kind: func(string) error { return nil }, Param: func(_, _, _ string) error { return nil }, Pattern: func(_, _, _ string) error { return nil }, Tool: func(string) error { return nil }}, ""},
		{"unknown kind", Checks{Kind: func(k string) error {
			if k == "azure-devops" {
				return errBad
			}
			return nil
		}}, "servers[1].kind: bad"},
		{"bad param", Checks{Param: func(k, n, v string) error {
			if k == "azure-devops" && n == "organization" && v == "defra" {
				return errBad
			}
			return nil
		}}, "servers[1].params.organization: bad"},
		{"bad pattern gets the kinds, empty for custom", Checks{Pattern: func(k, target, p string) error {
			if k == "" && target == "github-repository" && p == "anything" {
				return errBad
			}
			return nil
		}}, "servers[2].allowlist.github-repository[0]: bad"},
		{"bad tool", Checks{Tool: func(p string) error {
			if p == "merge_*" {
				return errBad
			}
			return nil
		}}, "servers[0].hiddenTools[0]: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Check(tt.ch)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Defaults(), c); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if c.Port != DefaultPort || c.AuditRetentionDays != 180 || c.Version != CurrentVersion {
		t.Fatalf("defaults = %+v", c)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"port": -1}`), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

func TestLoadRefusesHugeFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(p, []byte(`{"servers":[]}`+strings.Repeat(" ", maxFileSize)), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

// TestSettingsHaveNoPlaceForSecrets fails if a field that could hold a
// credential is ever added to the settings.
func TestSettingsHaveNoPlaceForSecrets(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[Server](), reflect.TypeFor[Policy](), reflect.TypeFor[ServerPolicy](), reflect.TypeFor[AuditPolicy]()} {
		for name := range jsonFields(typ) {
			if secretEnv.MatchString(name) {
				t.Errorf("%v has a field %q that looks like it holds a secret", typ, name)
			}
		}
	}
}

func TestMarshalRoundTrips(t *testing.T) {
	in := &Config{
		Version: CurrentVersion, Port: 4000, ApprovalTimeout: Duration(90 * time.Second), AllowedOrigins: []string{"vscode-webview://x"},
		StartAtLogin: true, AuditRetentionDays: 365,
		Servers: []Server{
			{ID: "gh", Kind: "github", Params: map[string]string{"toolsets": "repos"}, Allowlist: map[string][]string{"github-repository": {"a/b"}}, HiddenTools: []string{"x"}, AllowWrite: true},
			{ID: "l", Transport: TransportStdio, Command: "node", Args: []string{"a"}, Env: map[string]string{"PORT": "1"}},
		},
	}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v\n%s", err, b)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

func TestCloneIsDeep(t *testing.T) {
	c := &Config{Servers: []Server{{ID: "a", Params: map[string]string{"k": "v"}, Allowlist: map[string][]string{"t": {"x"}}}}}
	d := c.Clone()
	d.Servers[0].Params["k"] = "changed"
	d.Servers[0].Allowlist["t"][0] = "changed"
	if c.Servers[0].Params["k"] != "v" || c.Servers[0].Allowlist["t"][0] != "x" {
		t.Fatalf("Clone shares memory: %+v", c.Servers[0])
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"servers":[{"id":"a","transport":"stdio","command":"x"}]}`))
	f.Add([]byte(`{"port":1,"approvalTimeout":"1m"}`))
	f.Add([]byte(`{"version":2,"startAtLogin":true,"auditRetentionDays":30,"servers":[{"id":"gh","kind":"github","params":{"org":"x"},"allowlist":{"github-repository":["a/*"]},"hiddenTools":["d*"],"allowWrite":true}]}`))
	f.Add([]byte(`{"version":2,"servers":[{"id":"a","transport":"sse","url":"https://x.example/sse"}]}`))
	f.Add([]byte("{\n\"version\": 3}"))
	f.Add([]byte(`{"servers":[{"id":"a","kind":"github"}]}`))
	if b, err := os.ReadFile(filepath.Join("testdata", "migrate", "v1-full.json")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", verr)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse rejects what Marshal wrote: %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the settings (-first +second):\n%s", diff)
		}
	})
}
