package hosts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLocateUsesEachOSLayout(t *testing.T) {
	j := filepath.Join
	tests := []struct {
		name string
		env  Env
		host Host
		want Location
	}{
		{"claude on macOS", Env{GOOS: "darwin", Home: "/Users/sam"}, ClaudeDesktop,
			Location{"/Users/sam/Library/Application Support/Claude", "/Users/sam/Library/Application Support/Claude/claude_desktop_config.json"}},
		{"claude on Windows", Env{GOOS: "windows", Home: "/C/Users/sam", AppData: "/C/Users/sam/AppData/Roaming"}, ClaudeDesktop,
			Location{"/C/Users/sam/AppData/Roaming/Claude", "/C/Users/sam/AppData/Roaming/Claude/claude_desktop_config.json"}},
		{"claude on Windows without APPDATA", Env{GOOS: "windows", Home: "/C/Users/sam"}, ClaudeDesktop,
			Location{"/C/Users/sam/AppData/Roaming/Claude", "/C/Users/sam/AppData/Roaming/Claude/claude_desktop_config.json"}},
		{"claude on Linux", Env{GOOS: "linux", Home: "/home/sam"}, ClaudeDesktop,
			Location{"/home/sam/.config/Claude", "/home/sam/.config/Claude/claude_desktop_config.json"}},
		{"claude on Linux with XDG_CONFIG_HOME", Env{GOOS: "linux", Home: "/home/sam", XDGConfigHome: "/xdg"}, ClaudeDesktop,
			Location{"/xdg/Claude", "/xdg/Claude/claude_desktop_config.json"}},
		{"vscode on macOS", Env{GOOS: "darwin", Home: "/Users/sam"}, VSCode,
			Location{"/Users/sam/Library/Application Support/Code", "/Users/sam/Library/Application Support/Code/User/mcp.json"}},
		{"vscode on Windows", Env{GOOS: "windows", Home: "/C/Users/sam", AppData: "/C/Users/sam/AppData/Roaming"}, VSCode,
			Location{"/C/Users/sam/AppData/Roaming/Code", "/C/Users/sam/AppData/Roaming/Code/User/mcp.json"}},
		{"vscode on Linux", Env{GOOS: "linux", Home: "/home/sam"}, VSCode,
			Location{"/home/sam/.config/Code", "/home/sam/.config/Code/User/mcp.json"}},
		{"vscode insiders on Linux", Env{GOOS: "linux", Home: "/home/sam"}, VSCodeInsiders,
			Location{"/home/sam/.config/Code - Insiders", "/home/sam/.config/Code - Insiders/User/mcp.json"}},
		{"vscode insiders on macOS", Env{GOOS: "darwin", Home: "/Users/sam"}, VSCodeInsiders,
			Location{"/Users/sam/Library/Application Support/Code - Insiders", "/Users/sam/Library/Application Support/Code - Insiders/User/mcp.json"}},
		{"cursor on macOS", Env{GOOS: "darwin", Home: "/Users/sam"}, Cursor,
			Location{"/Users/sam/.cursor", "/Users/sam/.cursor/mcp.json"}},
		{"cursor on Windows", Env{GOOS: "windows", Home: "/C/Users/sam"}, Cursor,
			Location{"/C/Users/sam/.cursor", "/C/Users/sam/.cursor/mcp.json"}},
		{"cursor on Linux", Env{GOOS: "linux", Home: "/home/sam"}, Cursor,
			Location{"/home/sam/.cursor", "/home/sam/.cursor/mcp.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Locate(tt.host, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := Location{j(filepath.FromSlash(tt.want.AppDir)), j(filepath.FromSlash(tt.want.Path))}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Locate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLocateRefusesUnknownSetups(t *testing.T) {
	if _, err := Locate(VSCode, Env{GOOS: "plan9", Home: "/usr/sam"}); err == nil {
		t.Error("an unsupported OS was accepted")
	}
	if _, err := Locate(Cursor, Env{GOOS: "linux"}); err == nil {
		t.Error("an empty home directory was accepted")
	}
	if _, err := Locate("zed", Env{GOOS: "linux", Home: "/home/sam"}); err == nil {
		t.Error("an unknown host was accepted")
	}
}

func TestLocatePrefersClaudeMSIXPackage(t *testing.T) {
	local := t.TempDir()
	env := Env{GOOS: "windows", Home: t.TempDir(), AppData: t.TempDir(), LocalAppData: local}
	pkg := filepath.Join(local, "Packages", "Claude_pzs8sxrjxfjjc")
	mkdir(t, pkg)
	got, err := Locate(ClaudeDesktop, env)
	if err != nil {
		t.Fatal(err)
	}
	want := Location{pkg, filepath.Join(pkg, "LocalCache", "Roaming", "Claude", "claude_desktop_config.json")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Locate (-want +got):\n%s", diff)
	}

	// With two packages, the one that has a configuration file wins.
	other := filepath.Join(local, "Packages", "Claude_0000000000000")
	writeFile(t, filepath.Join(other, "LocalCache", "Roaming", "Claude", "claude_desktop_config.json"), "{}")
	got, _ = Locate(ClaudeDesktop, env)
	if got.AppDir != other {
		t.Errorf("chose %s, want the package with a configuration file %s", got.AppDir, other)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDetectReportsEachState builds a home directory for every OS with each
// host in a different state and checks what Detect reports.
func TestDetectReportsEachState(t *testing.T) {
	ours := `{"mcpServers": {"countersign-github": {"command": "/opt/c/countersign-bridge", "args": ["github"]}, "x": {"command": "x"}}}`
	tests := []struct {
		goos  string
		setup func(t *testing.T, env Env)
		want  map[Host]Status
	}{
		{"linux", func(t *testing.T, env Env) {
			writeFile(t, filepath.Join(env.Home, ".config", "Claude", "claude_desktop_config.json"), ours)
			mkdir(t, filepath.Join(env.Home, ".config", "Code"))
			writeFile(t, filepath.Join(env.Home, ".cursor", "mcp.json"), "{\n  \"mcpServers\": {,}\n}")
		}, map[Host]Status{ClaudeDesktop: Found, VSCode: ConfigMissing, VSCodeInsiders: NotInstalled, Cursor: Malformed}},
		{"darwin", func(t *testing.T, env Env) {
			mkdir(t, filepath.Join(env.Home, "Library", "Application Support", "Claude"))
			writeFile(t, filepath.Join(env.Home, "Library", "Application Support", "Code - Insiders", "User", "mcp.json"), "// mine\n{\"servers\": {}}")
			mkdir(t, filepath.Join(env.Home, ".cursor", "mcp.json")) // a directory, not a file
		}, map[Host]Status{ClaudeDesktop: ConfigMissing, VSCode: NotInstalled, VSCodeInsiders: Found, Cursor: Unreadable}},
		{"windows", func(t *testing.T, env Env) {
			writeFile(t, filepath.Join(env.LocalAppData, "Packages", "Claude_pzs8sxrjxfjjc", "LocalCache", "Roaming", "Claude", "claude_desktop_config.json"), ours)
			writeFile(t, filepath.Join(env.AppData, "Code", "User", "mcp.json"), `{"servers": []}`)
		}, map[Host]Status{ClaudeDesktop: Found, VSCode: Malformed, VSCodeInsiders: NotInstalled, Cursor: NotInstalled}},
	}
	for _, tt := range tests {
		t.Run(tt.goos, func(t *testing.T) {
			root := t.TempDir()
			env := Env{GOOS: tt.goos, Home: filepath.Join(root, "home")}
			if tt.goos == "windows" {
				env.AppData, env.LocalAppData = filepath.Join(root, "roaming"), filepath.Join(root, "local")
			}
			tt.setup(t, env)
			got := map[Host]Status{}
			for _, d := range testEditor(t).Detect(env) {
				got[d.Host] = d.Status
				loc, _ := Locate(d.Host, env)
				if d.Path != loc.Path {
					t.Errorf("%s: path %s, want %s", d.Host, d.Path, loc.Path)
				}
				switch d.Status {
				case Malformed:
					var se *SyntaxError
					if !errors.As(d.Err, &se) || se.Line == 0 || se.Path != d.Path {
						t.Errorf("%s: malformed without a located syntax error: %v", d.Host, d.Err)
					}
				case Unreadable:
					if d.Err == nil {
						t.Errorf("%s: unreadable without an error", d.Host)
					}
				case Found:
					if d.Host == ClaudeDesktop && !cmp.Equal(d.Connected, []string{"github"}) {
						t.Errorf("%s: connected %v, want [github]", d.Host, d.Connected)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusNames(t *testing.T) {
	for s, want := range map[Status]string{NotInstalled: "not installed", ConfigMissing: "config missing", Found: "found", Malformed: "malformed", Unreadable: "unreadable"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
	if VSCodeInsiders.Name() != "VS Code Insiders" || Host("zed").Name() != "zed" {
		t.Error("host names")
	}
}
