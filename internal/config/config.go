package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// DefaultPort is the loopback port the relay listens on unless set.
const DefaultPort = 39217

// Transports a custom upstream server can use.
const (
	TransportStreamableHTTP = "streamable-http"
	TransportSSE            = "sse"
	TransportStdio          = "stdio"
)

// Defaults and bounds of the settings.
const (
	DefaultApprovalTimeout = 5 * time.Minute
	MinApprovalTimeout     = 10 * time.Second
	MaxApprovalTimeout     = 24 * time.Hour
	// DefaultRetryWindow is how long an approval given after the AI app
	// stopped waiting lets its identical call run, unless the policy
	// narrows it (gate.DefaultGrantWindow, kept equal by a test).
	DefaultRetryWindow        = 10 * time.Minute
	DefaultAuditRetentionDays = 180
	MaxAuditRetentionDays     = 3650
)

// Config is the person's settings file. It holds no secrets: sign-in tokens
// live in the OS keychain, and there is no field for one.
type Config struct {
	// Version is the schema version; files are migrated to CurrentVersion
	// when read, and always written at it.
	Version         int      `json:"version"`
	Port            int      `json:"port,omitempty"`
	ApprovalTimeout Duration `json:"approvalTimeout,omitempty"`
	// AllowedOrigins lists browser origins allowed to call the relay.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// StartAtLogin starts Countersign when the person logs in.
	StartAtLogin bool `json:"startAtLogin,omitempty"`
	// AuditRetentionDays is how long audit rows are kept (default 180).
	AuditRetentionDays int      `json:"auditRetentionDays,omitempty"`
	Servers            []Server `json:"servers"`
}

// Server is one upstream MCP server. A catalog server has a Kind (the catalog
// id, such as "github") and Params; its address comes from the catalog. A
// custom server has no Kind and is defined by Transport with URL or Command.
type Server struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Kind is the catalog server id, or empty for a custom server.
	Kind string `json:"kind,omitempty"`
	// Params are the catalog parameters the person filled in, such as
	// "organization" or "region".
	Params    map[string]string `json:"params,omitempty"`
	Transport string            `json:"transport,omitempty"`
	URL       string            `json:"url,omitempty"`
	Command   string            `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	// Allowlist holds the repositories, projects or spaces calls may touch,
	// per target kind of the catalog ("github-repository",
	// "jira-project", …), as exact names or simple globs ("DEFRA/ffc-*").
	Allowlist map[string][]string `json:"allowlist,omitempty"`
	// HiddenTools names tools (or globs of them) removed from the server.
	HiddenTools []string `json:"hiddenTools,omitempty"`
	// AllowWrite opts in to a server's write tools (GitHub is read-only
	// unless set).
	AllowWrite bool `json:"allowWrite,omitempty"`
}

// DisplayName is the name shown to the person.
func (s Server) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// Custom reports whether the server is not from the catalog.
func (s Server) Custom() bool { return s.Kind == "" }

// Duration is a time.Duration written as "5m" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a string such as "90s" or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration such as "5m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`want a duration such as "5m", got %q`, s)
	}
	*d = Duration(v)
	return nil
}

// Checks are the catalog and allowlist rules this package cannot import: the
// app passes the catalog's and the policy package's validators. A nil field
// skips that check.
type Checks struct {
	// Kind reports an error unless kind is a catalog server id.
	Kind func(kind string) error
	// Param reports an error unless name is a parameter of the catalog
	// server kind and value is acceptable for it.
	Param func(kind, name, value string) error
	// Params reports an error unless the complete parameters of a server
	// (the person's, overridden by the policy's fixed values) let it connect,
	// for example when a required organisation is missing.
	Params func(kind string, params map[string]string) error
	// Pattern reports an error unless pattern is a valid allowlist entry of
	// the target kind (such as "github-repository") for a server of the
	// catalog kind ("" for a custom server, which has no targets).
	Pattern func(kind, target, pattern string) error
	// Tool reports an error unless pattern is a valid hidden-tool name or
	// glob.
	Tool func(pattern string) error
}

// DefaultPath is the settings file in the OS config directory.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "Countersign", "settings.json"), nil
}

// Defaults returns the settings used when there is no settings file.
func Defaults() *Config {
	c := &Config{Version: CurrentVersion}
	c.setDefaults()
	return c
}

// Load reads the settings file, migrating an older version in memory. A
// missing file gives the defaults.
func Load(path string) (*Config, error) {
	b, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading settings: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("settings %s: %w", path, err)
	}
	return c, nil
}

// readLimited reads a settings or policy file of at most maxFileSize bytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f, path)
}

func readAllLimited(r io.Reader, path string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), maxFileSize)
	}
	return b, nil
}

// Parse reads settings of any known version, migrates them to
// CurrentVersion and validates them (without Checks). Errors name the field
// path and line.
func Parse(b []byte) (*Config, error) {
	b = trimBOM(b)
	v, err := probeVersion(b)
	if err != nil {
		return nil, err
	}
	var c *Config
	var s *schema
	switch v {
	case 1:
		var old configV1
		if s, err = decodeStrict(b, &old, "settings", hintV1); err != nil {
			return nil, err
		}
		c = migrateV1(&old)
	case CurrentVersion:
		c = &Config{}
		if s, err = decodeStrict(b, c, "settings", nil); err != nil {
			return nil, err
		}
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, s.locate(err)
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ApprovalTimeout == 0 {
		c.ApprovalTimeout = Duration(DefaultApprovalTimeout)
	}
	if c.AuditRetentionDays == 0 {
		c.AuditRetentionDays = DefaultAuditRetentionDays
	}
}

// Marshal encodes the settings as written to the file, at CurrentVersion.
func (c *Config) Marshal() ([]byte, error) {
	out := c.Clone()
	out.Version = CurrentVersion
	if out.Servers == nil {
		out.Servers = []Server{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding settings: %w", err)
	}
	return append(b, '\n'), nil
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	out := *c
	out.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	out.Servers = make([]Server, len(c.Servers))
	for i, s := range c.Servers {
		out.Servers[i] = s.clone()
	}
	if c.Servers == nil {
		out.Servers = nil
	}
	return &out
}

func (s Server) clone() Server {
	s.Params = cloneMap(s.Params)
	s.Env = cloneMap(s.Env)
	s.Args = slices.Clone(s.Args)
	s.Allowlist = cloneLists(s.Allowlist)
	s.HiddenTools = slices.Clone(s.HiddenTools)
	return s
}

func cloneLists(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	paramPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	envPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// secretEnv matches environment variable names that carry credentials.
	// Settings never hold secrets, so a custom server cannot be given one.
	secretEnv = regexp.MustCompile(`(?i)(token|secret|passw|api_?key|access_?key|private_?key|credential|bearer|(^|_)pat($|_))`)
)

// Validate checks every field and names the first bad one. It does not
// consult the catalog or the allowlist syntax; Check does.
func (c *Config) Validate() error {
	if c.Version != CurrentVersion {
		return fieldErr("version", "%d is not settings version %d", c.Version, CurrentVersion)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fieldErr("port", "%d is not a TCP port", c.Port)
	}
	if t := time.Duration(c.ApprovalTimeout); t < MinApprovalTimeout || t > MaxApprovalTimeout {
		return fieldErr("approvalTimeout", "%v is outside 10s to 24h", t)
	}
	if d := c.AuditRetentionDays; d < 1 || d > MaxAuditRetentionDays {
		return fieldErr("auditRetentionDays", "%d is outside 1 to %d days", d, MaxAuditRetentionDays)
	}
	for i, o := range c.AllowedOrigins {
		if o == "" || hasSpaceOrControl(o) {
			return fieldErr(fmt.Sprintf("allowedOrigins[%d]", i), "%q is not an origin", o)
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Servers {
		field := fmt.Sprintf("servers[%d]", i)
		if !idPattern.MatchString(s.ID) {
			return fieldErr(field+".id", "%q must be lower-case letters, digits and dashes", s.ID)
		}
		if seen[s.ID] {
			return fieldErr(field+".id", "%q is used twice", s.ID)
		}
		seen[s.ID] = true
		if err := s.validate(field); err != nil {
			return err
		}
	}
	return nil
}

func (s Server) validate(field string) error {
	if len(s.Name) > 100 || hasControl(s.Name) {
		return fieldErr(field+".name", "must be at most 100 printable characters")
	}
	if s.Kind != "" {
		if !idPattern.MatchString(s.Kind) {
			return fieldErr(field+".kind", "%q is not a catalog server id", s.Kind)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"transport", s.Transport != ""}, {"url", s.URL != ""}, {"command", s.Command != ""},
			{"args", len(s.Args) > 0}, {"env", len(s.Env) > 0},
		} {
			if f.set {
				return fieldErr(field+"."+f.name, "a catalog server's address comes from the catalog; remove %s or the kind", f.name)
			}
		}
		if err := validateParams(field+".params", s.Params, "allowWrite"); err != nil {
			return err
		}
	} else {
		if len(s.Params) > 0 {
			return fieldErr(field+".params", "only catalog servers (with a kind) have parameters")
		}
		if err := s.validateCustom(field); err != nil {
			return err
		}
	}
	if err := validateAllowlist(field+".allowlist", s.Allowlist); err != nil {
		return err
	}
	return validatePatterns(field+".hiddenTools", s.HiddenTools, maxToolLen)
}

// Limits on list entries, as the policy engine's own validators allow.
const (
	maxPatternLen = 256
	maxToolLen    = 256
	maxParamLen   = 1024
)

// validateAllowlist checks the allowlist's target kinds and entries for
// shape only.
func validateAllowlist(field string, m map[string][]string) error {
	for _, target := range sortedKeys(m) {
		f := mapKeyPath(field, target)
		if !idPattern.MatchString(target) {
			return fieldErr(f, "%q is not a target kind such as github-repository", target)
		}
		if err := validatePatterns(f, m[target], maxPatternLen); err != nil {
			return err
		}
	}
	return nil
}

func (s Server) validateCustom(field string) error {
	switch s.Transport {
	case TransportStreamableHTTP, TransportSSE:
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fieldErr(field+".url", "%q is not an http(s) URL", s.URL)
		}
		if u.User != nil {
			return fieldErr(field+".url", "must not hold a user name or password; sign in from Settings instead")
		}
		if s.Command != "" {
			return fieldErr(field+".command", "only stdio servers have a command")
		}
		if len(s.Args) > 0 || len(s.Env) > 0 {
			return fieldErr(field+".args", "only stdio servers have args and env")
		}
	case TransportStdio:
		if s.Command == "" {
			return fieldErr(field+".command", "a stdio server needs a command")
		}
		if s.URL != "" {
			return fieldErr(field+".url", "a stdio server has no URL")
		}
		for k := range s.Env {
			p := mapKeyPath(field+".env", k)
			if !envPattern.MatchString(k) {
				return fieldErr(p, "%q is not an environment variable name", k)
			}
			if secretEnv.MatchString(k) {
				return fieldErr(p, "settings never hold secrets; sign in from Settings instead")
			}
		}
	case "":
		return fieldErr(field+".transport", "a custom server (no kind) needs a transport: streamable-http, sse or stdio")
	default:
		return fieldErr(field+".transport", "%q is not one of streamable-http, sse, stdio", s.Transport)
	}
	return nil
}

// writeParam is the catalog parameter that turns a server's write tools on.
// It is set only from allowWrite (and the policy's readOnly), so that the
// policy can lock it; params may not name it.
const writeParam = "write"

func validateParams(field string, params map[string]string, instead string) error {
	for _, k := range sortedKeys(params) {
		p := mapKeyPath(field, k)
		if !paramPattern.MatchString(k) {
			return fieldErr(p, "%q is not a parameter name", k)
		}
		if k == writeParam {
			return fieldErr(p, "set %s instead", instead)
		}
		if v := params[k]; v == "" || len(v) > maxParamLen || hasControl(v) {
			return fieldErr(p, "want 1 to %d printable characters", maxParamLen)
		}
	}
	return nil
}

// validatePatterns checks allowlist entries and tool names for shape only:
// non-empty, printable, no spaces, not repeated.
func validatePatterns(field string, list []string, max int) error {
	seen := map[string]bool{}
	for i, p := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		if p == "" || len(p) > max || hasSpaceOrControl(p) {
			return fieldErr(f, "want 1 to %d characters without spaces", max)
		}
		if seen[p] {
			return fieldErr(f, "%q is listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar })
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	})
}

// Check validates the settings (Validate) and then the catalog kinds,
// parameters and allowlist patterns with the given checks.
func (c *Config) Check(ch Checks) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for i, s := range c.Servers {
		if err := s.check(fmt.Sprintf("servers[%d]", i), ch); err != nil {
			return err
		}
	}
	return nil
}

func (s Server) check(field string, ch Checks) error {
	if s.Kind != "" {
		if ch.Kind != nil {
			if err := ch.Kind(s.Kind); err != nil {
				return fieldErr(field+".kind", "%v", err)
			}
		}
		if ch.Param != nil {
			for _, k := range sortedKeys(s.Params) {
				if err := ch.Param(s.Kind, k, s.Params[k]); err != nil {
					return fieldErr(mapKeyPath(field+".params", k), "%v", err)
				}
			}
		}
	}
	if err := checkAllowlist(field+".allowlist", s.Kind, s.Allowlist, ch); err != nil {
		return err
	}
	return checkTools(field+".hiddenTools", s.HiddenTools, ch)
}

func checkAllowlist(field, kind string, m map[string][]string, ch Checks) error {
	if ch.Pattern == nil {
		return nil
	}
	for _, target := range sortedKeys(m) {
		f := mapKeyPath(field, target)
		for i, p := range m[target] {
			if err := ch.Pattern(kind, target, p); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", f, i), "%v", err)
			}
		}
	}
	return nil
}

func checkTools(field string, tools []string, ch Checks) error {
	if ch.Tool == nil {
		return nil
	}
	for i, t := range tools {
		if err := ch.Tool(t); err != nil {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
	return nil
}

// Server returns the server with the given id.
func (c *Config) Server(id string) (Server, bool) {
	for _, s := range c.Servers {
		if s.ID == id {
			return s, true
		}
	}
	return Server{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
