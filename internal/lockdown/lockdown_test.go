package lockdown

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func machine(goos string) Machine {
	bridge := "/opt/countersign/countersign-bridge"
	switch goos {
	case "windows":
		bridge = `C:\Program Files\Countersign\countersign-bridge.exe`
	case "darwin":
		bridge = "/Applications/Countersign.app/Contents/MacOS/countersign-bridge"
	}
	return Machine{GOOS: goos, Servers: []string{"github", "azure-devops"}, Port: 39217, BridgePath: bridge}
}

func TestSnippetsGolden(t *testing.T) {
	for _, goos := range []string{"windows", "darwin", "linux"} {
		t.Run(goos, func(t *testing.T) {
			s, err := Snippets(machine(goos))
			if err != nil {
				t.Fatal(err)
			}
			got := Text(s)
			path := filepath.Join("testdata", goos+".txt")
			if *update {
				os.WriteFile(path, []byte(got), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("snippets differ from %s (run with -update if intended):\n%s", path, got)
			}
		})
	}
}

// TestSnippetsAreValidAndHoldNoToken: every JSON snippet parses, names each
// server by the bridge, and nothing carries an Authorization header.
func TestSnippetsAreValidAndHoldNoToken(t *testing.T) {
	m := machine("windows")
	s, err := Snippets(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range s {
		if strings.Contains(strings.ToLower(sn.Text), "authorization") || strings.Contains(sn.Text, "Bearer") {
			t.Errorf("%s: %s carries a token header", sn.Host, sn.Title)
		}
		if !strings.HasPrefix(sn.Text, "{") {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(sn.Text), &v); err != nil {
			t.Errorf("%s: %s is not JSON: %v", sn.Host, sn.Title, err)
			continue
		}
		for _, id := range m.Servers {
			if !strings.Contains(sn.Text, `"`+id+`"`) {
				t.Errorf("%s: %s does not name server %s", sn.Host, sn.Title, id)
			}
		}
		if !strings.Contains(sn.Text, strings.ReplaceAll(m.BridgePath, `\`, `\\`)) {
			t.Errorf("%s: %s does not name the bridge", sn.Host, sn.Title)
		}
	}
}

func TestSnippetsNeedServersPortAndBridge(t *testing.T) {
	for name, m := range map[string]Machine{
		"no servers": {GOOS: "linux", Port: 1, BridgePath: "/b"},
		"no port":    {GOOS: "linux", Servers: []string{"a"}, BridgePath: "/b"},
		"no bridge":  {GOOS: "linux", Servers: []string{"a"}, Port: 1},
	} {
		if _, err := Snippets(m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
