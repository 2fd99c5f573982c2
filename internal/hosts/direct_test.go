package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vendorMatchers is what the catalog passes: the approved vendors' endpoints
// and packages.
var vendorMatchers = []Matcher{
	{Server: "github", Hosts: []string{"api.githubcopilot.com"},
		Packages: []string{"ghcr.io/github/github-mcp-server", "github-mcp-server", "@modelcontextprotocol/server-github"}},
	{Server: "atlassian", Hosts: []string{"mcp.atlassian.com"}},
	{Server: "azure-devops", Hosts: []string{"mcp.dev.azure.com"}, Packages: []string{"@azure-devops/mcp"}},
	{Server: "sonarqube", Hosts: []string{"api.sonarcloud.io", "api.sonarqube.us"}, Packages: []string{"mcp/sonarqube"}},
	{Server: "aws", Hosts: []string{"aws-mcp.*.api.aws"}},
	{Server: "azure", Packages: []string{"@azure/mcp"}},
}

const directVSCode = `{
	"servers": {
		// GitHub straight to the vendor
		"github": {
			"type": "http",
			"url": "https://api.githubcopilot.com/mcp/",
			"headers": {"Authorization": "Bearer ${input:github_pat}"}
		},
		"github-docker": {
			"command": "docker",
			"args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server:v0.20.1"],
			"env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_notARealTokenButSecretLooking0000"}
		},
		"gh-binary": {"command": "/usr/local/bin/github-mcp-server.exe", "args": ["stdio"]},
		"jira": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/sse"]},
		"ado": {"type": "http", "url": "https://mcp.dev.azure.com/contoso"},
		"sonar-us": {"type": "http", "url": "https://API.SonarQube.us/mcp"},
		"aws": {"type": "http", "url": "https://aws-mcp.eu-west-2.api.aws/mcp"},
		"azure": {"command": "npx", "args": ["-y", "@azure/mcp@latest", "server", "start"]},
		"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
		"lookalike": {"type": "http", "url": "https://api.githubcopilot.com.evil.example/mcp"},
		"countersign-github": {
			"type": "http",
			"url": "http://127.0.0.1:39217/servers/github/mcp",
			"headers": {"Authorization": "Bearer c0ffee00c0ffee11c0ffee22c0ffee33c0ffee44c0ffee55c0ffee66c0ffee77"}
		}, // ours
	},
}
`

func TestFindDirectRecognisesVendorEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, directVSCode)
	cfg, err := testEditor(t).Load(VSCode, path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Direct{
		{"github", "github", "connects to api.githubcopilot.com"},
		{"github-docker", "github", "runs ghcr.io/github/github-mcp-server"},
		{"gh-binary", "github", "runs github-mcp-server"},
		{"jira", "atlassian", "connects to mcp.atlassian.com"},
		{"ado", "azure-devops", "connects to mcp.dev.azure.com"},
		{"sonar-us", "sonarqube", "connects to api.sonarqube.us"},
		{"aws", "aws", "connects to aws-mcp.eu-west-2.api.aws"},
		{"azure", "azure", "runs @azure/mcp"},
	}
	if diff := cmp.Diff(want, cfg.FindDirect(vendorMatchers)); diff != "" {
		t.Errorf("FindDirect (-want +got):\n%s", diff)
	}
	if got := cfg.FindDirect(nil); len(got) != 0 {
		t.Errorf("FindDirect(nil) = %v", got)
	}
}

func TestFindDirectIgnoresVersionSuffixes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, `{"mcpServers": {
		"pinned-pypi": {"command": "uvx", "args": ["msmcp-azure==2.0.0"]},
		"tagged-image": {"command": "podman", "args": ["run", "-i", "ghcr.io/github/github-mcp-server:v1"]},
		"npm-version": {"command": "npx", "args": ["-y", "@azure-devops/mcp@2.2.0", "contoso"]},
		"longer-name": {"command": "npx", "args": ["-y", "@azure-devops/mcp-extra"]},
		"equals-only": {"command": "uvx", "args": ["msmcp-azure=2.0.0"]}
	}}`)
	cfg, err := testEditor(t).Load(Cursor, path)
	if err != nil {
		t.Fatal(err)
	}
	ms := []Matcher{
		{Server: "azure", Packages: []string{"msmcp-azure"}},
		{Server: "github", Packages: []string{"ghcr.io/github/github-mcp-server"}},
		{Server: "azure-devops", Packages: []string{"@azure-devops/mcp"}},
	}
	want := []Direct{
		{"pinned-pypi", "azure", "runs msmcp-azure"},
		{"tagged-image", "github", "runs ghcr.io/github/github-mcp-server"},
		{"npm-version", "azure-devops", "runs @azure-devops/mcp"},
	}
	if diff := cmp.Diff(want, cfg.FindDirect(ms)); diff != "" {
		t.Errorf("FindDirect (-want +got):\n%s", diff)
	}
}

func TestEnableInAnyOrderRestoresTheFile(t *testing.T) {
	const orig = `{
  "mcpServers": {
    "github": {"url": "https://api.githubcopilot.com/mcp/"},
    "jira": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/mcp"]},
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "ado": {"url": "https://mcp.dev.azure.com/contoso"}
  }
}
`
	for _, order := range [][]string{{"github", "jira", "ado"}, {"ado", "jira", "github"}, {"jira", "ado", "github"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "claude_desktop_config.json")
			writeFile(t, path, orig)
			e := testEditor(t)
			cfg, err := e.Load(ClaudeDesktop, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Disable("github", "jira"); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Disable("ado"); err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			cfg, err = e.Load(ClaudeDesktop, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Enable(order...); err != nil {
				t.Fatal(err)
			}
			if got := string(cfg.bytes()); got != orig {
				t.Errorf("enabling %v did not restore the file:\n%s", order, cmp.Diff(orig, got))
			}
		})
	}
}

func TestDisableThenEnableRestoresTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	writeFile(t, path, directVSCode)
	e := testEditor(t)

	cfg, err := e.Load(VSCode, path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range cfg.FindDirect(vendorMatchers) {
		names = append(names, d.Name)
	}
	if err := cfg.Disable(names...); err != nil {
		t.Fatal(err)
	}
	var g bytes.Buffer
	writeStep(&g, "disable "+strings.Join(names, " "), cfg, func(s string) string { return strings.ReplaceAll(s, dir, "$DIR") })
	saved, err := cfg.Save()
	if err != nil {
		t.Fatal(err)
	}
	sidecar := path + sidecarSuffix
	if saved.Sidecar != sidecar || saved.Backup == "" {
		t.Errorf("Saved = %+v", saved)
	}
	assertMode(t, sidecar, 0o600)
	fmt.Fprintf(&g, "## file after\n%s## %s\n%s", readFile(t, path), filepath.Base(sidecar), readFile(t, sidecar))
	golden(t, "disable/vscode.txt", g.Bytes())

	after, err := e.Load(VSCode, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.FindDirect(vendorMatchers); len(got) != 0 {
		t.Errorf("still direct after disabling: %v", got)
	}
	if got := len(after.Disabled()); got != len(names) {
		t.Errorf("%d disabled entries recorded, want %d", got, len(names))
	}

	// Turning them back on, in any order, gives back the original bytes.
	slicesReverse(names)
	if err := after.Enable(names...); err != nil {
		t.Fatal(err)
	}
	if _, err := after.Save(); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, path)); got != directVSCode {
		t.Errorf("enable did not restore the file:\n%s", cmp.Diff(directVSCode, got))
	}
	if _, err := os.Stat(sidecar); !os.IsNotExist(err) {
		t.Errorf("sidecar left behind after everything was turned on: %v", err)
	}
	assertNoTemp(t, dir)
}

func slicesReverse(s []string) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func TestDisableRoundTripsForEveryHost(t *testing.T) {
	files := map[Host]string{
		ClaudeDesktop: "{\n  \"mcpServers\": {\n    \"azure\": {\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@azure/mcp@latest\", \"server\", \"start\"]\n    },\n    \"other\": {\"command\": \"x\"}\n  }\n}\n",
		Cursor:        "{\n  \"mcpServers\": {\n    \"other\": {\"command\": \"x\"},\n    \"github\": {\n      \"url\": \"https://api.githubcopilot.com/mcp/\"\n    }\n  }\n}\n",
		VSCode:        "{\"servers\": {\"aws\": {\"type\": \"http\", \"url\": \"https://aws-mcp.us-east-1.api.aws/mcp\"}}}",
	}
	for h, content := range files {
		t.Run(string(h), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), fileName(h))
			writeFile(t, path, content)
			e := testEditor(t)
			cfg, err := e.Load(h, path)
			if err != nil {
				t.Fatal(err)
			}
			direct := cfg.FindDirect(vendorMatchers)
			if len(direct) != 1 {
				t.Fatalf("FindDirect = %v", direct)
			}
			if err := cfg.Disable(direct[0].Name); err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Load(h, path); err != nil {
				t.Fatalf("disabled file does not load: %v", err)
			}
			cfg, _ = e.Load(h, path)
			if err := cfg.Enable(direct[0].Name); err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			if got := string(readFile(t, path)); got != content {
				t.Errorf("round trip:\n%s", cmp.Diff(content, got))
			}
		})
	}
}

func TestEnableRefusesAReplacedEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, "{\n  \"mcpServers\": {\n    \"github\": {\"url\": \"https://api.githubcopilot.com/mcp/\"}\n  }\n}\n")
	e := testEditor(t)
	cfg, _ := e.Load(Cursor, path)
	if err := cfg.Disable("github"); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Save(); err != nil {
		t.Fatal(err)
	}

	// The person adds a new "github" entry by hand.
	mine := "{\n  \"mcpServers\": {\n    \"github\": {\"url\": \"https://api.githubcopilot.com/mcp/x/issues\"}\n  }\n}\n"
	writeFile(t, path, mine)
	cfg, err := e.Load(Cursor, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Enable("github"); !errors.Is(err, ErrConflict) {
		t.Fatalf("Enable = %v, want ErrConflict", err)
	}
	if cfg.Changed() {
		t.Error("a refused Enable changed something")
	}

	// The same entry put back by hand just drops the record.
	writeFile(t, path, "{\n  \"mcpServers\": {\n    \"github\": {\"url\": \"https://api.githubcopilot.com/mcp/\"}\n  }\n}\n")
	cfg, _ = e.Load(Cursor, path)
	if err := cfg.Enable("github"); err != nil {
		t.Fatal(err)
	}
	saved, err := cfg.Save()
	if err != nil {
		t.Fatal(err)
	}
	if saved.Path != "" || saved.Sidecar == "" || len(cfg.Disabled()) != 0 {
		t.Errorf("Saved = %+v, Disabled = %v; want only the record dropped", saved, cfg.Disabled())
	}
}

func TestDisableRefusesWhatItShouldNotTouch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, directVSCode)
	cfg, _ := testEditor(t).Load(VSCode, path)
	for _, name := range []string{"countersign-github", "no-such-entry"} {
		if err := cfg.Disable(name); err == nil {
			t.Errorf("Disable(%q) succeeded", name)
		}
	}
	if err := cfg.Enable("github"); err == nil {
		t.Error("Enable of an entry that was never turned off succeeded")
	}
	if cfg.Changed() {
		t.Error("refused calls changed the file")
	}
}

func TestSidecarMustBeOurs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, "{}")
	for _, side := range []string{`{`, `{"version": 2, "entries": []}`, `{"version": 1, "entries": [], "extra": 1}`} {
		writeFile(t, path+sidecarSuffix, side)
		if _, err := testEditor(t).Load(Cursor, path); err == nil {
			t.Errorf("sidecar %s accepted", side)
		}
	}
}
