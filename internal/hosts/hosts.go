// Package hosts is "Connect your AI app": it finds the MCP configuration
// files of Claude Desktop, VS Code and Cursor and edits them safely, so that
// the app talks to Countersign instead of to vendor servers directly.
//
// An edit never clobbers the person's file. The file is parsed into a syntax
// tree that keeps every byte (comments and trailing commas too where the host
// allows them), only Countersign's own entries are added, updated or removed,
// and everything else comes back byte for byte. Saving writes a timestamped
// backup first, then replaces the file atomically with its mode kept. A
// second identical edit changes nothing and makes no new backup. A file that
// does not parse is never written; the error names the file, line and column.
//
// Typical use:
//
//	ed := hosts.NewEditor(log)
//	for _, d := range ed.Detect(env) { ... show d.Status ... }
//	cfg, err := ed.Load(hosts.VSCode, path)
//	err = cfg.Connect(hosts.Target{Port: port, Token: token}, "github")
//	show(cfg.Changes(), cfg.Diff())   // the token is masked
//	saved, err := cfg.Save()
//
// Direct entries (the person's own connections to the same vendor servers,
// which would bypass review) are found with [Config.FindDirect] and turned off
// with [Config.Disable]. None of the three hosts documents a per-entry
// "disabled" flag in these files, so turning off removes the entry from the
// host file and records its exact text in a sidecar file next to it
// ("<file>.countersign-disabled.json", mode 0600); [Config.Enable] puts the
// same text back.
package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// Host identifies an AI app whose MCP configuration Countersign can edit.
type Host string

// The AI apps Countersign knows.
const (
	ClaudeDesktop  Host = "claude-desktop"
	VSCode         Host = "vscode"
	VSCodeInsiders Host = "vscode-insiders"
	Cursor         Host = "cursor"
)

// Hosts lists every known host in the order the settings window shows them.
var Hosts = []Host{ClaudeDesktop, VSCode, VSCodeInsiders, Cursor}

// entryKind is how a host reaches a Countersign server.
type entryKind int

const (
	stdioEntry entryKind = iota // command + args: countersign-bridge <id>
	httpEntry                   // url + headers
)

// spec is what differs between host file formats.
type spec struct {
	name       string    // shown to the person
	serversKey string    // top-level key holding the server map
	jsonc      bool      // the host reads comments and trailing commas
	kind       entryKind // how our entries look
	typeField  bool      // HTTP entries carry "type": "http"
	indent     string    // indentation for files we create
}

var specs = map[Host]spec{
	// Claude Desktop reads the file with JSON.parse: strict JSON.
	ClaudeDesktop: {name: "Claude Desktop", serversKey: "mcpServers", kind: stdioEntry, indent: "  "},
	// VS Code reads mcp.json with its JSONC parser.
	VSCode:         {name: "VS Code", serversKey: "servers", jsonc: true, kind: httpEntry, typeField: true, indent: "\t"},
	VSCodeInsiders: {name: "VS Code Insiders", serversKey: "servers", jsonc: true, kind: httpEntry, typeField: true, indent: "\t"},
	// Cursor is a VS Code fork; its docs do not say whether comments are
	// allowed, so comments already in the file are kept and none are added.
	Cursor: {name: "Cursor", serversKey: "mcpServers", jsonc: true, kind: httpEntry, indent: "  "},
}

func lookup(h Host) (spec, error) {
	s, ok := specs[h]
	if !ok {
		return spec{}, fmt.Errorf("unknown host %q", h)
	}
	return s, nil
}

// Name is the host's name as shown to the person, e.g. "Claude Desktop".
func (h Host) Name() string {
	if s, ok := specs[h]; ok {
		return s.name
	}
	return string(h)
}

// Env is the part of the environment that decides where host apps keep their
// configuration. It is passed in so every OS's layout can be tested anywhere.
type Env struct {
	GOOS          string // "darwin", "windows" or "linux"
	Home          string // the user's home directory (%USERPROFILE% on Windows)
	AppData       string // %APPDATA% (Windows; defaults to Home\AppData\Roaming)
	LocalAppData  string // %LOCALAPPDATA% (Windows; defaults to Home\AppData\Local)
	XDGConfigHome string // $XDG_CONFIG_HOME (Linux; defaults to Home/.config)
}

// CurrentEnv returns the running process's environment.
func CurrentEnv() (Env, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Env{}, fmt.Errorf("finding the home directory: %w", err)
	}
	return Env{
		GOOS:          runtime.GOOS,
		Home:          home,
		AppData:       os.Getenv("APPDATA"),
		LocalAppData:  os.Getenv("LOCALAPPDATA"),
		XDGConfigHome: os.Getenv("XDG_CONFIG_HOME"),
	}, nil
}

func (e Env) appData() string {
	if e.AppData != "" {
		return e.AppData
	}
	return filepath.Join(e.Home, "AppData", "Roaming")
}

func (e Env) localAppData() string {
	if e.LocalAppData != "" {
		return e.LocalAppData
	}
	return filepath.Join(e.Home, "AppData", "Local")
}

func (e Env) xdgConfig() string {
	if e.XDGConfigHome != "" {
		return e.XDGConfigHome
	}
	return filepath.Join(e.Home, ".config")
}

// userData is Electron's app.getPath("appData") for the OS.
func (e Env) userData() (string, error) {
	switch e.GOOS {
	case "darwin":
		return filepath.Join(e.Home, "Library", "Application Support"), nil
	case "windows":
		return e.appData(), nil
	case "linux":
		return e.xdgConfig(), nil
	}
	return "", fmt.Errorf("unsupported operating system %q", e.GOOS)
}

// Location is where a host keeps its MCP configuration on one machine.
type Location struct {
	// AppDir is the directory whose presence means the app is installed.
	AppDir string
	// Path is the configuration file, whether or not it exists yet.
	Path string
}

// Locate returns where host h keeps its MCP configuration under env:
//
//   - Claude Desktop: claude_desktop_config.json in ~/Library/Application
//     Support/Claude (macOS), %APPDATA%\Claude (Windows) or
//     $XDG_CONFIG_HOME/Claude (Linux). The Windows MSIX package (the default
//     installer since 2026) reads
//     %LOCALAPPDATA%\Packages\Claude_*\LocalCache\Roaming\Claude instead, and
//     is preferred when its package directory exists.
//   - VS Code (Insiders): the default profile's mcp.json in
//     ~/Library/Application Support/Code/User (macOS), %APPDATA%\Code\User
//     (Windows) or $XDG_CONFIG_HOME/Code/User (Linux); "Code - Insiders" for
//     Insiders.
//   - Cursor: ~/.cursor/mcp.json on every OS.
func Locate(h Host, env Env) (Location, error) {
	if env.Home == "" {
		return Location{}, errors.New("locating host configuration: no home directory")
	}
	switch h {
	case ClaudeDesktop:
		if env.GOOS == "windows" {
			if pkg, dir := msixClaude(env); pkg != "" {
				return Location{AppDir: pkg, Path: filepath.Join(dir, "claude_desktop_config.json")}, nil
			}
		}
		base, err := env.userData()
		if err != nil {
			return Location{}, err
		}
		dir := filepath.Join(base, "Claude")
		return Location{AppDir: dir, Path: filepath.Join(dir, "claude_desktop_config.json")}, nil
	case VSCode, VSCodeInsiders:
		base, err := env.userData()
		if err != nil {
			return Location{}, err
		}
		product := "Code"
		if h == VSCodeInsiders {
			product = "Code - Insiders"
		}
		dir := filepath.Join(base, product)
		return Location{AppDir: dir, Path: filepath.Join(dir, "User", "mcp.json")}, nil
	case Cursor:
		dir := filepath.Join(env.Home, ".cursor")
		return Location{AppDir: dir, Path: filepath.Join(dir, "mcp.json")}, nil
	}
	return Location{}, fmt.Errorf("unknown host %q", h)
}

// msixClaude finds the MSIX package of Claude Desktop and the directory its
// virtualised %APPDATA%\Claude lives in. With several packages, one that
// already has a configuration file wins, then the first by name.
func msixClaude(env Env) (pkg, dir string) {
	matches, _ := filepath.Glob(filepath.Join(env.localAppData(), "Packages", "Claude_*"))
	sort.Strings(matches)
	for _, m := range matches {
		d := filepath.Join(m, "LocalCache", "Roaming", "Claude")
		if fileExists(filepath.Join(d, "claude_desktop_config.json")) {
			return m, d
		}
	}
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			return m, filepath.Join(m, "LocalCache", "Roaming", "Claude")
		}
	}
	return "", ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Status is what detection found for one host.
type Status int

// Detection outcomes.
const (
	// NotInstalled: the app's directory does not exist.
	NotInstalled Status = iota
	// ConfigMissing: the app is installed but has no configuration file yet;
	// connecting creates it.
	ConfigMissing
	// Found: the configuration file exists and parses.
	Found
	// Malformed: the file does not parse; it will not be edited until the
	// person fixes it (Err says where).
	Malformed
	// Unreadable: the file exists but could not be read (Err says why).
	Unreadable
)

// String is the status in words, e.g. "config missing".
func (s Status) String() string {
	switch s {
	case NotInstalled:
		return "not installed"
	case ConfigMissing:
		return "config missing"
	case Found:
		return "found"
	case Malformed:
		return "malformed"
	case Unreadable:
		return "unreadable"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Detection is what was found for one host.
type Detection struct {
	Host   Host
	Name   string // the host's display name
	Path   string // the configuration file, existing or not
	Status Status
	Err    error // for Malformed (a *SyntaxError) and Unreadable
	// Connected lists the Countersign server ids the file already has
	// entries for (Found only).
	Connected []string
}

// Editor loads, edits and saves host configuration files.
type Editor struct {
	log  *slog.Logger
	now  func() time.Time // backup timestamps
	goos string           // runtime.GOOS: MakePrivate does nothing on Windows
}

// NewEditor returns an Editor logging to log (nil means slog.Default()).
func NewEditor(log *slog.Logger) *Editor {
	if log == nil {
		log = slog.Default()
	}
	return &Editor{log: log, now: time.Now, goos: runtime.GOOS}
}

// Detect reports, for every known host, where its configuration is and
// whether it can be edited.
func (e *Editor) Detect(env Env) []Detection {
	out := make([]Detection, 0, len(Hosts))
	for _, h := range Hosts {
		out = append(out, e.detect(h, env))
	}
	return out
}

func (e *Editor) detect(h Host, env Env) Detection {
	d := Detection{Host: h, Name: h.Name()}
	loc, err := Locate(h, env)
	if err != nil {
		d.Status, d.Err = Unreadable, err
		return d
	}
	d.Path = loc.Path
	if fi, err := os.Stat(loc.AppDir); err != nil || !fi.IsDir() {
		d.Status = NotInstalled
		return d
	}
	if _, err := os.Lstat(loc.Path); errors.Is(err, fs.ErrNotExist) {
		d.Status = ConfigMissing
		return d
	}
	cfg, err := e.Load(h, loc.Path)
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		d.Status, d.Err = Malformed, err
	case err != nil:
		d.Status, d.Err = Unreadable, err
	default:
		d.Status = Found
		d.Connected = cfg.Connected()
	}
	return d
}
