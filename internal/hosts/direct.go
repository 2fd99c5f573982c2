package hosts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Matcher recognises host entries that reach one vendor server directly. The
// catalog supplies one per approved server kind, for example:
//
//	{Server: "github", Hosts: []string{"api.githubcopilot.com"},
//	 Packages: []string{"ghcr.io/github/github-mcp-server", "github-mcp-server"}}
//	{Server: "aws", Hosts: []string{"aws-mcp.*.api.aws"}}
//	{Server: "azure", Packages: []string{"@azure/mcp"}}
type Matcher struct {
	// Server names what matched (a catalog id); it is reported back.
	Server string
	// Hosts are URL host names, compared case-insensitively with
	// path.Match syntax ("aws-mcp.*.api.aws"). They are matched against the
	// entry's "url" and against any http(s) URL among a command's arguments
	// (proxies such as mcp-remote).
	Hosts []string
	// Packages are npm, PyPI or NuGet packages, container images or
	// executables, matched against the command's base name and each
	// argument, ignoring a version or tag suffix ("@azure/mcp" matches
	// "@azure/mcp@latest", "msmcp-azure" matches "msmcp-azure==2.0.0").
	Packages []string
}

// Direct is a person's entry that connects to a vendor server without
// Countersign, so its calls would bypass review.
type Direct struct {
	Name   string // the entry's name in the host file
	Server string // the Matcher's Server
	Reason string // e.g. "connects to api.githubcopilot.com"
}

// FindDirect lists the entries that match one of ms, excluding Countersign's
// own. Entries already turned off are not in the file and are not listed.
func (c *Config) FindDirect(ms []Matcher) []Direct {
	d, err := c.parse(c.cur)
	if err != nil {
		return nil
	}
	m, err := d.servers()
	if err != nil || m == nil {
		return nil
	}
	var out []Direct
	for i, mem := range m.Value.Value.(*hujson.Object).Members {
		if _, ok := recognise(&m.Value.Value.(*hujson.Object).Members[i]); ok {
			continue
		}
		v, _ := decode(mem.Value).(map[string]any)
		if v == nil {
			continue
		}
		if server, reason, ok := matchEntry(v, ms); ok {
			out = append(out, Direct{Name: memberName(&mem), Server: server, Reason: reason})
		}
	}
	return out
}

func matchEntry(v map[string]any, ms []Matcher) (server, reason string, ok bool) {
	var urls, tokens []string
	for _, k := range []string{"url", "serverUrl"} {
		if s, _ := v[k].(string); s != "" {
			urls = append(urls, s)
		}
	}
	if cmd, _ := v["command"].(string); cmd != "" {
		base := strings.ToLower(cmd[strings.LastIndexAny(cmd, `/\`)+1:])
		for _, ext := range []string{".exe", ".cmd", ".bat"} {
			base = strings.TrimSuffix(base, ext)
		}
		tokens = append(tokens, base)
	}
	args, _ := v["args"].([]any)
	for _, a := range args {
		if s, ok := a.(string); ok {
			tokens = append(tokens, strings.ToLower(s))
			if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
				urls = append(urls, s)
			}
		}
	}
	for _, m := range ms {
		for _, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil {
				continue
			}
			host := strings.ToLower(u.Hostname())
			for _, pat := range m.Hosts {
				if ok, _ := path.Match(strings.ToLower(pat), host); ok {
					return m.Server, "connects to " + host, true
				}
			}
		}
		for _, tok := range tokens {
			for _, p := range m.Packages {
				p = strings.ToLower(p)
				if tok == p || strings.HasPrefix(tok, p+"@") || strings.HasPrefix(tok, p+":") || strings.HasPrefix(tok, p+"==") {
					return m.Server, "runs " + p, true
				}
			}
		}
	}
	return "", "", false
}

// sidecarSuffix names the file, next to the host file, that keeps turned-off
// entries so they can be turned on again.
const sidecarSuffix = ".countersign-disabled.json"

// DisabledEntry is a direct entry Countersign turned off, kept verbatim.
type DisabledEntry struct {
	Name string `json:"name"`
	// Text is the entry's value exactly as it was in the host file.
	Text string `json:"text"`
	// Lead is the comment lines that were above it.
	Lead string `json:"lead,omitempty"`
	// After is the entry it followed, so it goes back in the same place.
	After      string    `json:"after,omitempty"`
	Index      int       `json:"index"`
	DisabledAt time.Time `json:"disabledAt"`
}

func (a DisabledEntry) equal(b DisabledEntry) bool {
	return a.Name == b.Name && a.Text == b.Text && a.Lead == b.Lead && a.After == b.After && a.Index == b.Index && a.DisabledAt.Equal(b.DisabledAt)
}

type sidecarFile struct {
	Version int             `json:"version"`
	About   string          `json:"about"`
	Entries []DisabledEntry `json:"entries"`
}

const sidecarAbout = "MCP server entries Countersign turned off in the file next to this one, " +
	"so that AI tool calls cannot bypass review. Turn them on again from Countersign's settings " +
	"(Connect your AI app); each is restored exactly as it was."

func readSidecar(p string) ([]DisabledEntry, error) {
	data, _, err := readLimited(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f sidecarFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("reading %s: unsupported version %d", p, f.Version)
	}
	return f.Entries, nil
}

func encodeSidecar(entries []DisabledEntry) ([]byte, error) {
	data, err := json.MarshalIndent(sidecarFile{Version: 1, About: sidecarAbout, Entries: entries}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding turned-off entries: %w", err)
	}
	return append(data, '\n'), nil
}

// Disabled lists the entries Countersign turned off in this file.
func (c *Config) Disabled() []DisabledEntry { return slices.Clone(c.side) }

// Disable turns off the named entries (as found by FindDirect): each is
// removed from the host file and kept verbatim in the sidecar file, so
// Enable can restore it. No host documents a "disabled" flag for these files,
// so removal is the only way to make sure the host does not start them.
// Countersign's own entries cannot be disabled this way.
func (c *Config) Disable(names ...string) error {
	return c.edit(func(d *doc) error {
		m, err := d.servers()
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		if m == nil {
			return fmt.Errorf("%s has no entry %q", c.path, names[0])
		}
		obj := m.Value.Value.(*hujson.Object)
		for _, name := range names {
			i, err := findMember(obj, name)
			if err != nil {
				return d.errAt(err)
			}
			if i < 0 {
				return fmt.Errorf("%s has no entry %q", c.path, name)
			}
			if _, ok := recognise(&obj.Members[i]); ok {
				return fmt.Errorf("%q is Countersign's own entry; disconnect it instead", name)
			}
			v := obj.Members[i].Value
			v.AfterExtra = nil
			rec := DisabledEntry{Name: name, Text: string(v.Pack()), Lead: string(leadOf(&obj.Members[i])), Index: i, DisabledAt: c.e.now().UTC()}
			if i > 0 {
				rec.After = memberName(&obj.Members[i-1])
			}
			c.side = slices.DeleteFunc(c.side, func(e DisabledEntry) bool { return e.Name == name })
			c.side = append(c.side, rec)
			removeMember(obj, i, false)
			c.changes = append(c.changes, fmt.Sprintf("turned off %s (kept in %s)", name, baseName(c.sidecarPath)))
		}
		return nil
	})
}

// Enable puts turned-off entries back exactly as they were, where they were,
// whatever the order of names.
// If the name is in use again with different content it fails with
// ErrConflict and changes nothing; with the same content the record is just
// dropped.
func (c *Config) Enable(names ...string) error {
	for _, name := range names {
		if !slices.ContainsFunc(c.side, func(e DisabledEntry) bool { return e.Name == name }) {
			return fmt.Errorf("%q was not turned off by Countersign in %s", name, c.path)
		}
	}
	// Undo in the reverse order of turning off: each record names its
	// place as it was when that entry was removed, after the ones removed
	// before it.
	pos := func(name string) int {
		return slices.IndexFunc(c.side, func(e DisabledEntry) bool { return e.Name == name })
	}
	names = slices.Clone(names)
	slices.SortStableFunc(names, func(a, b string) int { return pos(b) - pos(a) })
	if len(names) > 0 {
		if err := c.ensureServers(); err != nil {
			return err
		}
	}
	return c.edit(func(d *doc) error {
		m, err := d.servers()
		if err != nil {
			return err
		}
		obj := m.Value.Value.(*hujson.Object)
		base := d.l.memberIndent(m)
		for _, name := range names {
			k := slices.IndexFunc(c.side, func(e DisabledEntry) bool { return e.Name == name })
			rec := c.side[k]
			saved, err := hujson.Parse([]byte(rec.Text))
			if err != nil {
				return fmt.Errorf("turned-off entry %q in %s does not parse: %w", name, c.sidecarPath, err)
			}
			i, err := findMember(obj, name)
			if err != nil {
				return d.errAt(err)
			}
			if i >= 0 {
				if !equalJSON(obj.Members[i].Value, saved) {
					return fmt.Errorf("%s has a new entry %q; remove it before turning the old one on: %w", c.path, name, ErrConflict)
				}
				c.side = slices.Delete(c.side, k, k+1)
				c.changes = append(c.changes, "forgot turned-off "+name+" (it is back in the file already)")
				continue
			}
			at := min(rec.Index, len(obj.Members))
			if rec.After == "" {
				at = 0
			} else if j, _ := findMember(obj, rec.After); j >= 0 {
				at = j + 1
			}
			var lead []byte
			if hujson.Extra(rec.Lead+"\n").IsValid() && hasComment([]byte(rec.Lead)) {
				lead = []byte(rec.Lead) // only whitespace and comments go back
			}
			err = d.l.insertMember(obj, at, base, name, func(style) (hujson.Value, error) { return saved, nil }, lead)
			if err != nil {
				return err
			}
			// The saved text keeps its own spacing after the colon.
			obj.Members[at].Value.BeforeExtra = saved.BeforeExtra
			c.side = slices.Delete(c.side, k, k+1)
			c.changes = append(c.changes, "turned on "+name)
		}
		return nil
	})
}

func equalJSON(a, b hujson.Value) bool {
	da := decode(a)
	return da != nil && reflect.DeepEqual(da, decode(b))
}

func baseName(p string) string {
	return p[strings.LastIndexAny(p, `/\`)+1:]
}

// removeFile removes p if it exists.
func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}
