package hosts

import (
	"bytes"
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
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// EntryPrefix starts the name of every entry Countersign writes; the rest of
// the name is the Countersign server id, e.g. "countersign-github".
const EntryPrefix = "countersign-"

// maxFileSize bounds what is read: host configuration files are small.
const maxFileSize = 4 << 20

// bridgeName is the bridge executable's name without ".exe".
const bridgeName = "countersign-bridge"

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// idPattern is the Countersign server id syntax (as in internal/config).
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// tokenPattern is a bearer token that JSON writes without escapes, so the
// masking of descriptions finds it verbatim.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{16,512}$`)

// Errors callers branch on.
var (
	// ErrConflict: an entry has the name Countersign wants but was not
	// written by Countersign, or a turned-off entry's name is in use again.
	// Nothing was changed.
	ErrConflict = errors.New("entry name already in use")
	// ErrChanged: the file changed on disk after it was loaded; load it
	// again and repeat the edit.
	ErrChanged = errors.New("file changed since it was read")
	// ErrReadOnly: the person made the file read-only; it is not written.
	ErrReadOnly = errors.New("file is read-only")
)

// SyntaxError reports a host file that cannot be edited because it does not
// parse (or is not shaped like an MCP configuration). The file is untouched.
type SyntaxError struct {
	Path         string
	Line, Column int // 1-based; 0 when unknown
	Msg          string
}

// Error names the file, line and column.
func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: line %d, column %d: %s", e.Path, e.Line, e.Column, e.Msg)
}

// EntryName is the name of Countersign's entry for server id.
func EntryName(id string) string { return EntryPrefix + id }

// Target is what a host entry needs to reach Countersign.
type Target struct {
	// BridgePath is the absolute path of countersign-bridge (stdio hosts).
	BridgePath string
	// ConfigPath is the settings file the bridge reads, when Countersign
	// runs with one other than the default; empty for the default.
	ConfigPath string
	// Port is the app's loopback port (HTTP hosts).
	Port int
	// Token is the local client token (HTTP hosts). It is written into the
	// host file, which the host needs, and masked in every description.
	Token string
}

// Config is one host configuration file held in memory: load it, edit it,
// look at what changed, then save it.
type Config struct {
	e    *Editor
	host Host
	spec spec
	path string // as given
	real string // symlinks resolved; where writes go

	exists bool
	mode   fs.FileMode
	orig   []byte // the file as read, BOM included
	bom    bool
	cur    []byte // the edited text, without BOM

	changes []string
	secrets []string

	sidecarPath string
	sideOrig    []DisabledEntry
	side        []DisabledEntry
}

// Load reads host h's configuration file at path. A missing file is an empty
// configuration; a file that does not parse is a *SyntaxError.
func (e *Editor) Load(h Host, path string) (*Config, error) {
	real := path
	if _, err := os.Lstat(path); err == nil {
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", path, err)
		}
	}
	data, fi, err := readLimited(real)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	c, err := e.parseConfig(h, path, data)
	if err != nil {
		return nil, err
	}
	c.real, c.exists = real, exists
	if exists {
		c.mode = fi.Mode().Perm()
	}
	c.sidecarPath = real + sidecarSuffix
	if c.sideOrig, err = readSidecar(c.sidecarPath); err != nil {
		return nil, err
	}
	c.side = slices.Clone(c.sideOrig)
	return c, nil
}

// parseConfig makes a Config of host h from a file's content, without any
// file access.
func (e *Editor) parseConfig(h Host, path string, data []byte) (*Config, error) {
	s, err := lookup(h)
	if err != nil {
		return nil, err
	}
	c := &Config{e: e, host: h, spec: s, path: path, real: path, mode: 0o600, orig: data}
	c.cur, c.bom = bytes.CutPrefix(c.orig, utf8BOM)
	c.cur = bytes.Clone(c.cur)
	d, err := c.parse(c.cur)
	if err != nil {
		return nil, err
	}
	if _, err := d.servers(); err != nil {
		return nil, err
	}
	for _, o := range d.ours(nil) {
		c.addSecret(o.token)
	}
	c.sidecarPath = path + sidecarSuffix
	return c, nil
}

func readLimited(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	return readOpen(f, path)
}

// readOpen reads the open file f (named path) as readLimited does.
func readOpen(f *os.File, path string) ([]byte, fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("reading %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("reading %s: larger than %d bytes", path, maxFileSize)
	}
	return data, fi, nil
}

// Host is the host the file belongs to.
func (c *Config) Host() Host { return c.host }

// Path is the file's path as given to Load.
func (c *Config) Path() string { return c.path }

// Changes lists, in plain words, what the edits so far change, e.g.
// "added countersign-github". It never contains a token.
func (c *Config) Changes() []string { return slices.Clone(c.changes) }

// Changed reports whether saving would write anything.
func (c *Config) Changed() bool {
	return !bytes.Equal(c.bytes(), c.orig) || !slices.EqualFunc(c.side, c.sideOrig, DisabledEntry.equal)
}

// HoldsToken reports whether the file, with the edits so far, holds one of
// Countersign's local tokens: Save then makes it readable only by its owner.
func (c *Config) HoldsToken() bool {
	data := c.bytes()
	for _, s := range c.secrets {
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

// bytes is the file content Save would write.
func (c *Config) bytes() []byte {
	if c.bom {
		return append(bytes.Clone(utf8BOM), c.cur...)
	}
	return c.cur
}

// Connected lists the server ids that have a Countersign entry.
func (c *Config) Connected() []string {
	d, err := c.parse(c.cur)
	if err != nil {
		return nil
	}
	var ids []string
	for _, o := range d.ours(nil) {
		ids = append(ids, o.id)
	}
	return ids
}

// doc is one parse of the text being edited.
type doc struct {
	c    *Config
	l    layout
	src  []byte
	root *hujson.Value // nil: blank (or comments only)
}

func (c *Config) syntaxErr(src []byte, off int, msg string) *SyntaxError {
	line, col := lineColumn(src, off)
	return &SyntaxError{Path: c.path, Line: line, Column: col, Msg: msg}
}

// errAt turns a duplicate-name error into a SyntaxError at its position.
func (d *doc) errAt(err error) error {
	var de *dupError
	if errors.As(err, &de) {
		return d.c.syntaxErr(d.src, de.off, de.Error())
	}
	return err
}

func lineColumn(b []byte, n int) (line, column int) {
	n = min(max(n, 0), len(b))
	line = 1 + bytes.Count(b[:n], []byte("\n"))
	column = 1 + n - (bytes.LastIndexByte(b[:n], '\n') + 1)
	return line, column
}

var hujsonErr = regexp.MustCompile(`^hujson: line (\d+), column (\d+): (.*)$`)

// parse parses src (no BOM) the way the host reads it.
func (c *Config) parse(src []byte) (*doc, error) {
	d := &doc{c: c, src: src, l: layout{src: src, nl: "\n", unit: detectUnit(src, c.spec.indent)}}
	if bytes.Contains(src, []byte("\r\n")) {
		d.l.nl = "\r\n"
	}
	if isBlank(src) || (c.spec.jsonc && hujson.Extra(src).IsValid()) {
		return d, nil
	}
	if !c.spec.jsonc {
		var v any
		if err := json.Unmarshal(src, &v); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, c.syntaxErr(src, int(se.Offset)-1, se.Error()+" ("+c.spec.name+" reads this file as strict JSON)")
			}
			return nil, &SyntaxError{Path: c.path, Msg: err.Error()}
		}
	}
	v, err := hujson.Parse(src)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "hujson: ")
		if strings.Contains(msg, "invalid literal: ") {
			// hujson quotes the whole value, which may be a secret.
			msg = "invalid value (a misspelt true, false, null or number, or a string with a control character)"
		}
		if m := hujsonErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			if !strings.Contains(m[3], "invalid literal: ") {
				msg = m[3]
			}
			return nil, &SyntaxError{Path: c.path, Line: line, Column: col, Msg: msg}
		}
		return nil, &SyntaxError{Path: c.path, Msg: msg}
	}
	if _, ok := v.Value.(*hujson.Object); !ok {
		return nil, c.syntaxErr(src, v.StartOffset, "the top level must be a JSON object")
	}
	d.root = &v
	root := v.Value.(*hujson.Object)
	d.l.oneLine = len(root.Members) > 0 && !bytes.Contains(bytes.TrimRight(src, " \t\r\n"), []byte("\n"))
	d.l.tight = !bytes.Contains(src, []byte(`": `))
	return d, nil
}

// servers returns the host's server map, nil if there is none yet.
func (d *doc) servers() (*hujson.ObjectMember, error) {
	if d.root == nil {
		return nil, nil
	}
	root := d.root.Value.(*hujson.Object)
	i, err := findMember(root, d.c.spec.serversKey)
	if err != nil {
		return nil, d.errAt(err)
	}
	if i < 0 {
		return nil, nil
	}
	m := &root.Members[i]
	if _, ok := m.Value.Value.(*hujson.Object); !ok {
		return nil, d.c.syntaxErr(d.src, m.Value.StartOffset, fmt.Sprintf("%q must be a JSON object", d.c.spec.serversKey))
	}
	return m, nil
}

// our describes one of Countersign's entries in the file.
type our struct {
	index int
	id    string
	kind  entryKind
	token string // the local token it carries (HTTP)
}

// ours lists Countersign's entries in the server map m (nil: find it). An
// entry is ours when its name starts with EntryPrefix and it runs
// countersign-bridge or points at Countersign's loopback endpoint for the same
// id; anything else is the person's and is never touched.
func (d *doc) ours(m *hujson.ObjectMember) []our {
	if m == nil {
		var err error
		if m, err = d.servers(); err != nil || m == nil {
			return nil
		}
	}
	obj := m.Value.Value.(*hujson.Object)
	var out []our
	for i := range obj.Members {
		if o, ok := recognise(&obj.Members[i]); ok {
			o.index = i
			out = append(out, o)
		}
	}
	return out
}

func recognise(m *hujson.ObjectMember) (our, bool) {
	id, ok := strings.CutPrefix(memberName(m), EntryPrefix)
	if !ok || !idPattern.MatchString(id) {
		return our{}, false
	}
	v, _ := decode(m.Value).(map[string]any)
	if v == nil {
		return our{}, false
	}
	if cmd, _ := v["command"].(string); cmd != "" && isBridge(cmd) {
		args, _ := v["args"].([]any)
		if len(args) > 0 && args[len(args)-1] == id {
			return our{id: id, kind: stdioEntry}, true
		}
		return our{}, false
	}
	raw, _ := v["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || !loopback(u.Hostname()) || u.Path != "/servers/"+id+"/mcp" {
		return our{}, false
	}
	o := our{id: id, kind: httpEntry}
	if h, _ := v["headers"].(map[string]any); h != nil {
		if a, _ := h["Authorization"].(string); a != "" {
			o.token, _ = strings.CutPrefix(a, "Bearer ")
		}
	}
	return o, true
}

// isBridge reports whether a command runs countersign-bridge, whatever the
// OS's path separator.
func isBridge(cmd string) bool {
	base := cmd[strings.LastIndexAny(cmd, `/\`)+1:]
	base = strings.ToLower(base)
	base = strings.TrimSuffix(base, ".exe")
	return base == bridgeName
}

func loopback(host string) bool {
	return host == "127.0.0.1" || host == "localhost" || host == "::1"
}

func (c *Config) addSecret(s string) {
	if len(s) >= 4 && !slices.Contains(c.secrets, s) {
		c.secrets = append(c.secrets, s)
	}
}

// entry is the value Countersign writes for server id.
func (c *Config) entry(t Target, id string) object {
	if c.spec.kind == stdioEntry {
		args := []string{id}
		if t.ConfigPath != "" {
			args = []string{"-config", t.ConfigPath, id}
		}
		return object{{"command", t.BridgePath}, {"args", args}}
	}
	var o object
	if c.spec.typeField {
		o = append(o, field{"type", "http"})
	}
	return append(o,
		field{"url", "http://127.0.0.1:" + strconv.Itoa(t.Port) + "/servers/" + id + "/mcp"},
		field{"headers", object{{"Authorization", "Bearer " + t.Token}}},
	)
}

func (c *Config) checkTarget(t Target) error {
	if c.spec.kind == stdioEntry {
		if !isAbs(t.BridgePath) || !isBridge(t.BridgePath) {
			return fmt.Errorf("bridge path %q must be an absolute path to %s", t.BridgePath, bridgeName)
		}
		if t.ConfigPath != "" && !isAbs(t.ConfigPath) {
			return fmt.Errorf("settings path %q must be absolute", t.ConfigPath)
		}
		return nil
	}
	if t.Port < 1 || t.Port > 65535 {
		return fmt.Errorf("port %d out of range", t.Port)
	}
	if !tokenPattern.MatchString(t.Token) {
		return errors.New("the local token must be 16 to 512 token characters (letters, digits, -._~+/=)")
	}
	return nil
}

// isAbs accepts absolute paths of any supported OS, so a Windows path can be
// written from a test on Linux.
func isAbs(p string) bool {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\\`) {
		return true
	}
	return len(p) >= 3 && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// edit runs one edit on a fresh parse, re-parses the result and keeps it
// only if it still parses; on error nothing changes.
func (c *Config) edit(fn func(d *doc) error) error {
	saved, savedChanges, savedSide := c.cur, len(c.changes), slices.Clone(c.side)
	fail := func(err error) error {
		c.cur, c.changes, c.side = saved, c.changes[:savedChanges], savedSide
		return err
	}
	d, err := c.parse(c.cur)
	if err != nil {
		return fail(err)
	}
	if err := fn(d); err != nil {
		return fail(err)
	}
	if d.root != nil {
		c.cur = d.root.Pack()
	}
	if _, err := c.parse(c.cur); err != nil {
		return fail(fmt.Errorf("internal error: edit of %s produced unparsable text: %w", c.path, err))
	}
	return nil
}

// ensureServers makes sure the document has a root object and a server map.
func (c *Config) ensureServers() error {
	return c.edit(func(d *doc) error {
		if d.root == nil {
			trimmed := bytes.TrimRight(d.src, " \t\r\n")
			text := "{" + d.l.nl + "}" + d.l.nl
			if len(trimmed) > 0 { // comments only
				text = string(trimmed) + d.l.nl + text
			}
			v, err := hujson.Parse([]byte(text))
			if err != nil {
				return err
			}
			d.root = &v
			d.src = []byte(text)
			d.l.src = d.src
		}
		m, err := d.servers()
		if err != nil || m != nil {
			return err
		}
		root := d.root.Value.(*hujson.Object)
		base := lineIndentAt(d.src, d.root.StartOffset)
		return d.l.insertMember(root, len(root.Members), base, d.c.spec.serversKey, d.l.valueOf(object{}), nil)
	})
}

// Connect adds Countersign entries for the given server ids, or updates them
// in place when the bridge path, port or token changed; the person's other
// entries and any fields they added to ours are kept. It fails with
// ErrConflict, changing nothing, if an entry of that name is not ours.
func (c *Config) Connect(t Target, ids ...string) error {
	if err := c.checkTarget(t); err != nil {
		return err
	}
	for _, id := range ids {
		if !idPattern.MatchString(id) {
			return fmt.Errorf("server id %q must be lower-case letters, digits and dashes", id)
		}
	}
	saved, savedChanges := c.cur, len(c.changes)
	if err := c.connect(t, ids); err != nil {
		c.cur, c.changes = saved, c.changes[:savedChanges]
		return err
	}
	if len(c.changes) == savedChanges {
		c.cur = saved // nothing to do: not even an empty server map
	}
	if c.spec.kind == httpEntry {
		c.addSecret(t.Token)
	}
	return nil
}

func (c *Config) connect(t Target, ids []string) error {
	// Refuse before touching anything.
	if d, err := c.parse(c.cur); err != nil {
		return err
	} else if m, err := d.servers(); err != nil {
		return err
	} else if m != nil {
		obj := m.Value.Value.(*hujson.Object)
		for _, id := range ids {
			i, err := findMember(obj, EntryName(id))
			if err != nil {
				return d.errAt(err)
			}
			if i >= 0 {
				if _, ok := recognise(&obj.Members[i]); !ok {
					return fmt.Errorf("%s already has an entry %q that Countersign did not write; rename or remove it first: %w", c.path, EntryName(id), ErrConflict)
				}
			}
		}
	}
	for _, id := range ids {
		want := c.entry(t, id)
		name := EntryName(id)
		var exists bool
		if d, err := c.parse(c.cur); err != nil {
			return err
		} else if m, _ := d.servers(); m != nil {
			i, _ := findMember(m.Value.Value.(*hujson.Object), name)
			exists = i >= 0
		}
		if !exists {
			if err := c.ensureServers(); err != nil {
				return err
			}
		}
		err := c.edit(func(d *doc) error {
			m, _ := d.servers()
			obj := m.Value.Value.(*hujson.Object)
			base := d.l.memberIndent(m)
			i, _ := findMember(obj, name)
			if i < 0 {
				c.changes = append(c.changes, "added "+name)
				return d.l.insertMember(obj, len(obj.Members), base, name, d.l.valueOf(want), nil)
			}
			mem := &obj.Members[i]
			if o, _ := recognise(mem); o.kind != c.spec.kind {
				// The other kind of entry: replace it whole.
				v, err := d.l.valueOf(want)(style{indent: d.l.memberIndent(mem), multiline: true})
				if err != nil {
					return err
				}
				mem.Value.Value = v.Value
				c.changes = append(c.changes, "updated "+name)
				return nil
			}
			changed, err := d.merge(mem, want)
			if changed {
				c.changes = append(c.changes, "updated "+name)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// merge sets the model's fields inside member m's object value, keeping every
// other field, and replacing only values that differ.
func (d *doc) merge(m *hujson.ObjectMember, want object) (bool, error) {
	obj, ok := m.Value.Value.(*hujson.Object)
	indent := d.l.memberIndent(m)
	if !ok {
		v, err := d.l.valueOf(want)(style{indent: indent, multiline: true})
		m.Value.Value = v.Value
		return true, err
	}
	changed := false
	for _, f := range want {
		i, err := findMember(obj, f.key)
		if err != nil {
			return changed, d.errAt(err)
		}
		if i < 0 {
			if err := d.l.insertMember(obj, len(obj.Members), indent, f.key, d.l.valueOf(f.val), nil); err != nil {
				return changed, err
			}
			changed = true
			continue
		}
		sub := &obj.Members[i]
		if equalValue(sub.Value, f.val) {
			continue
		}
		if o, ok := f.val.(object); ok {
			if _, isObj := sub.Value.Value.(*hujson.Object); isObj {
				c, err := d.merge(sub, o)
				changed = changed || c
				if err != nil {
					return changed, err
				}
				continue
			}
		}
		v, err := d.l.valueOf(f.val)(style{indent: d.l.memberIndent(sub), multiline: true})
		if err != nil {
			return changed, err
		}
		sub.Value.Value = v.Value
		changed = true
	}
	return changed, nil
}

// Disconnect removes Countersign's entries for the given server ids, or all
// of them when no id is given. Entries Countersign did not write stay.
func (c *Config) Disconnect(ids ...string) error {
	return c.edit(func(d *doc) error {
		m, err := d.servers()
		if err != nil || m == nil {
			return err
		}
		obj := m.Value.Value.(*hujson.Object)
		found := d.ours(m)
		for k := len(found) - 1; k >= 0; k-- {
			if len(ids) > 0 && !slices.Contains(ids, found[k].id) {
				continue
			}
			removeMember(obj, found[k].index, true)
		}
		for _, o := range found {
			if len(ids) == 0 || slices.Contains(ids, o.id) {
				c.changes = append(c.changes, "removed "+EntryName(o.id))
			}
		}
		return nil
	})
}
