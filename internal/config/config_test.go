package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestParseErrorsNameTheProblem(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"syntax error gives the line", "{\n\"port\": 1,\n\"servers\": [}", "line 3"},
		{"wrong type gives line and field", "{\n\"port\": \"x\"}", "line 2: port"},
		{"unknown field", `{"prot": 1}`, `unknown field "prot"`},
		{"bad port", `{"port": 70000}`, "port: 70000"},
		{"bad timeout", `{"approvalTimeout": "1s"}`, "approvalTimeout"},
		{"timeout not a duration", `{"approvalTimeout": "soon"}`, `"soon"`},
		{"bad id", `{"servers":[{"id":"A B","transport":"stdio","command":"x"}]}`, "servers[0].id"},
		{"duplicate id", `{"servers":[{"id":"a","transport":"stdio","command":"x"},{"id":"a","transport":"stdio","command":"x"}]}`, "servers[1].id"},
		{"bad transport", `{"servers":[{"id":"a","transport":"ws"}]}`, "servers[0].transport"},
		{"http without url", `{"servers":[{"id":"a","transport":"sse"}]}`, "servers[0].url"},
		{"stdio without command", `{"servers":[{"id":"a","transport":"stdio"}]}`, "servers[0].command"},
		{"trailing data", `{} {}`, "data after"},
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

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || c.Port != DefaultPort || len(c.Servers) != 0 {
		t.Fatalf("got %+v, %v", c, err)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"port": -1}`), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"servers":[{"id":"a","transport":"stdio","command":"x"}]}`))
	f.Add([]byte(`{"port":1,"approvalTimeout":"1m"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted what Validate rejects: %v", verr)
			}
		}
	})
}
