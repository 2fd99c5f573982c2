package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/hosts"
	"github.com/countersign/countersign/internal/lockdown"
)

// ErrPreviewStale is returned by [Connect.Apply] when the change it would
// make is not the one the person previewed (the file changed in between).
// Nothing was written; preview again.
var ErrPreviewStale = errors.New("the file changed since the preview: preview the change again")

// ConnectDeps is what the Connect service is built on.
type ConnectDeps struct {
	// Current returns the effective settings (config.Watcher.Current);
	// their servers are the ones offered to AI apps.
	Current func() *config.Effective
	// BridgePath is the absolute path of countersign-bridge, which Claude
	// Desktop starts for each server ([DefaultBridgePath] in the app).
	BridgePath string
	// ConfigPath is the settings file, for the bridge to read, when it is
	// not the default one; empty for the default.
	ConfigPath string
	// Port is the loopback port the relay listens on, and Token the local
	// client token. VS Code and Cursor entries carry both; the token is
	// written only into those host files, never logged or shown.
	Port  int
	Token string
	// Env says where AI apps keep their configuration; nil means
	// hosts.CurrentEnv.
	Env func() (hosts.Env, error)
	// Matchers recognise direct connections to vendor servers; nil means
	// [DirectMatchers].
	Matchers []hosts.Matcher
	// Audit records every change made to an AI app's file; nil records
	// nothing (tests).
	Audit *audit.Log
	Log   *slog.Logger // nil means slog.Default()
}

// Connect is "Connect your AI app": it finds Claude Desktop, VS Code and
// Cursor, adds or removes their entries for Countersign's servers, showing
// the exact change first, and turns off their direct connections to the
// same vendors so calls cannot bypass review. Every method reads and
// writes files, so none runs on the UI goroutine.
type Connect struct {
	d  ConnectDeps
	ed *hosts.Editor
	mu sync.Mutex // one load-edit-save at a time
}

// NewConnect returns the Connect service.
func NewConnect(d ConnectDeps) *Connect {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Env == nil {
		d.Env = hosts.CurrentEnv
	}
	if d.Matchers == nil {
		d.Matchers = DirectMatchers()
	}
	if d.Current == nil {
		d.Current = func() *config.Effective { return &config.Effective{} }
	}
	return &Connect{d: d, ed: hosts.NewEditor(d.Log)}
}

// DefaultBridgePath is countersign-bridge next to the running executable,
// where the installers put it.
func DefaultBridgePath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding countersign-bridge: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	name := "countersign-bridge"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(filepath.Dir(exe), name), nil
}

// DirectMatchers are the catalog's rules for recognising direct
// connections to its vendor servers, one per catalog entry.
func DirectMatchers() []hosts.Matcher {
	var ms []hosts.Matcher
	for _, e := range catalog.All() {
		ms = append(ms, hosts.Matcher{Server: e.ID, Hosts: e.Direct.Hosts, Packages: e.Direct.Packages})
	}
	return ms
}

// matchers are the rules for recognising direct connections: the
// catalog's, and the host of each self-hosted server in the settings (a
// SonarQube Server), which only its own address names.
func (c *Connect) matchers() []hosts.Matcher {
	ms := slices.Clone(c.d.Matchers)
	for _, es := range c.d.Current().Servers {
		if es.Server.Custom() {
			continue
		}
		e, ok := catalog.Lookup(es.Server.Kind)
		if !ok {
			continue
		}
		if extra := e.DirectHosts(es.ParamValues()); len(extra) > len(e.Direct.Hosts) {
			ms = append(ms, hosts.Matcher{Server: e.ID, Hosts: extra[len(e.Direct.Hosts):]})
		}
	}
	return ms
}

// ConnectOverview is everything the Connect window shows.
type ConnectOverview struct {
	// Servers are Countersign's servers an AI app can be connected to, in
	// settings order, then any that AI apps still have entries for but the
	// settings no longer name.
	Servers []ConnectServer
	// Hosts are the AI apps, in a fixed order.
	Hosts []HostState
}

// ConnectServer is one Countersign server offered to AI apps.
type ConnectServer struct {
	ID, Name string
	// Note qualifies it, such as why Countersign cannot connect it now;
	// empty when there is nothing to say.
	Note string
	// Removed marks a server the settings no longer name: AI apps' entries
	// for it can be removed but not added.
	Removed bool
}

// HostState is one AI app and its configuration file.
type HostState struct {
	ID   string // the host, e.g. "vscode"
	Name string // e.g. "VS Code"
	Path string // its configuration file, existing or not
	// State is what was found, in plain words.
	State string
	// Editable reports whether Countersign can change the file; Why says
	// why not (not installed, does not parse, cannot be read).
	Editable bool
	Why      string
	// Problem is the error that makes the file uneditable, naming the line
	// and column when it does not parse.
	Problem string
	// AddUnavailable says why servers cannot be added to this app now
	// (removing still works); empty when they can.
	AddUnavailable string
	// Via says how the app reaches Countersign.
	Via string
	// Connected lists the server ids the file has Countersign entries for.
	Connected []string
	// Direct are the file's entries that reach a vendor server without
	// Countersign; Disabled those Countersign turned off earlier.
	Direct   []DirectEntry
	Disabled []DirectEntry
}

// DirectEntry is an AI app's own connection to a vendor server.
type DirectEntry struct {
	Name       string // the entry's name in the file
	Server     string // the catalog id it reaches
	ServerName string // the catalog name, e.g. "GitHub"
	Reason     string // how it was recognised, e.g. "connects to api.githubcopilot.com"
	DisabledAt time.Time
}

// ConnectPreview is the change connecting a set of servers would make.
type ConnectPreview struct {
	Host, Path string
	// Changes says what changes, in plain words; empty when nothing does.
	Changes []string
	// Diff is the unified diff of the file, with the token masked.
	Diff string
	// Note is a sentence for the person about the file itself, such as it
	// becoming readable only by them; empty when there is nothing to say.
	Note string
}

// PrivateFileNote is the preview's Note when the file written holds the
// local token, which makes Countersign write it readable only by its owner.
const PrivateFileNote = "This file will be readable only by you, because it holds Countersign's access key."

// ConnectResult is what a change wrote.
type ConnectResult struct {
	Host string
	// Path is the file written; empty when nothing needed writing.
	Path string
	// Backup is the copy of the file as it was; empty for a new file.
	Backup string
	// Sidecar is the file keeping turned-off entries, when it changed.
	Sidecar string
	Changes []string
	Diff    string
}

func (c *Connect) env() (hosts.Env, error) {
	env, err := c.d.Env()
	if err != nil {
		return hosts.Env{}, fmt.Errorf("finding AI apps: %w", err)
	}
	return env, nil
}

// Overview finds the AI apps and what their files hold.
func (c *Connect) Overview(ctx context.Context) (ConnectOverview, error) {
	if err := ctx.Err(); err != nil {
		return ConnectOverview{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	env, err := c.env()
	if err != nil {
		return ConnectOverview{}, err
	}
	var out ConnectOverview
	for _, es := range c.d.Current().Servers {
		s := ConnectServer{ID: es.Server.ID, Name: displayName(es.Server)}
		if !es.Connect {
			s.Note = "Countersign can't connect it now: " + es.Why
		}
		out.Servers = append(out.Servers, s)
	}
	for _, det := range c.ed.Detect(env) {
		hs := c.hostState(det)
		for _, id := range hs.Connected {
			if !slices.ContainsFunc(out.Servers, func(s ConnectServer) bool { return s.ID == id }) {
				out.Servers = append(out.Servers, ConnectServer{ID: id, Name: id, Removed: true,
					Note: "No longer in Countersign's settings: AI apps' entries for it can only be removed."})
			}
		}
		out.Hosts = append(out.Hosts, hs)
	}
	return out, nil
}

func (c *Connect) hostState(det hosts.Detection) HostState {
	hs := HostState{ID: string(det.Host), Name: det.Name, Path: det.Path, Via: c.via(det.Host)}
	switch det.Status {
	case hosts.NotInstalled:
		hs.State = "Not installed"
		hs.Why = det.Name + " is not installed for this user."
	case hosts.Malformed:
		c.makeBrokenPrivate(det)
		hs.State = "Its configuration file has a mistake"
		hs.Why = "Countersign won't change this file until it is fixed. Correct it in " + det.Name + " or a text editor, then refresh."
		hs.Problem = det.Err.Error()
	case hosts.Unreadable:
		hs.State = "Its configuration file can't be read"
		hs.Why = "Countersign can't read this file, so it won't change it."
		hs.Problem = det.Err.Error()
	case hosts.ConfigMissing, hosts.Found:
		hs.Editable = true
		hs.State = "Found"
		if det.Status == hosts.ConfigMissing {
			hs.State = "Installed, with no tools connected yet: connecting creates its settings file"
		}
		cfg, err := c.loadFile(det)
		if err != nil {
			// Changed between detection and now, or a bad sidecar file.
			hs.Editable, hs.State = false, "Its configuration can't be read"
			hs.Why, hs.Problem = "Countersign won't change this file.", err.Error()
			return hs
		}
		hs.Connected = cfg.Connected()
		for _, d := range cfg.FindDirect(c.matchers()) {
			hs.Direct = append(hs.Direct, DirectEntry{Name: d.Name, Server: d.Server, ServerName: catalogName(d.Server), Reason: d.Reason})
		}
		for _, d := range cfg.Disabled() {
			hs.Disabled = append(hs.Disabled, DirectEntry{Name: d.Name, DisabledAt: d.DisabledAt})
		}
		hs.AddUnavailable = c.addUnavailable(det.Host)
	}
	return hs
}

func catalogName(id string) string {
	if e, ok := catalog.Lookup(id); ok {
		return e.Name
	}
	return id
}

// stdio reports whether host h starts Countersign's bridge (Claude Desktop)
// rather than connecting over HTTP.
func stdio(h hosts.Host) bool { return h == hosts.ClaudeDesktop }

func (c *Connect) via(h hosts.Host) string {
	if stdio(h) {
		return h.Name() + " starts countersign-bridge (" + c.d.BridgePath + ") for each server."
	}
	return h.Name() + " connects to http://127.0.0.1:" + strconv.Itoa(c.d.Port) + "/servers/<server>/mcp with Countersign's private token."
}

// addUnavailable says why entries cannot be added to host h now.
func (c *Connect) addUnavailable(h hosts.Host) string {
	if stdio(h) {
		fi, err := os.Stat(c.d.BridgePath)
		if c.d.BridgePath == "" || err != nil || !fi.Mode().IsRegular() {
			return "countersign-bridge was not found at " + c.d.BridgePath + ", so " + h.Name() + " could not start it. Reinstall Countersign."
		}
		return ""
	}
	if c.d.Port == 0 || c.d.Token == "" {
		return "Countersign is not listening yet, so there is no address to give " + h.Name() + "."
	}
	return ""
}

// loadFile loads the file det found and, when it holds the local token
// but other users may read it, makes it readable only by its owner: an
// older Countersign, or the person, may have left the token readable by
// everyone on the machine.
func (c *Connect) loadFile(det hosts.Detection) (*hosts.Config, error) {
	cfg, err := c.ed.Load(det.Host, det.Path)
	if err != nil {
		return nil, err
	}
	var tokens []string
	if c.d.Token != "" {
		tokens = append(tokens, c.d.Token)
	}
	if _, err := cfg.MakePrivate(tokens...); err != nil {
		c.d.Log.Warn("an AI app's configuration file holds Countersign's access key and other users of this computer may read it; "+
			"Countersign could not make it private", "host", det.Name, "path", det.Path, "err", err)
	}
	return cfg, nil
}

// MakeFilesPrivate makes every AI app configuration file that holds the
// local token readable only by its owner (Unix; see
// [hosts.Config.MakePrivate]). The app runs it at start; the Connect window
// does the same whenever it loads a file.
func (c *Connect) MakeFilesPrivate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	env, err := c.env()
	if err != nil {
		return err
	}
	for _, det := range c.ed.Detect(env) {
		switch det.Status {
		case hosts.Found:
			if _, err := c.loadFile(det); err != nil {
				c.d.Log.Debug("reading an AI app's configuration file", "host", det.Name, "path", det.Path, "err", err)
			}
		case hosts.Malformed:
			// Never edited, but it may hold the token all the same.
			c.makeBrokenPrivate(det)
		}
	}
	return nil
}

// makeBrokenPrivate makes the file det found, which does not parse,
// readable only by its owner when it holds the local token.
func (c *Connect) makeBrokenPrivate(det hosts.Detection) {
	if c.d.Token == "" {
		return
	}
	if _, err := c.ed.MakePrivate(det.Host, det.Path, c.d.Token); err != nil {
		c.d.Log.Warn("an AI app's configuration file holds Countersign's access key and other users of this computer may read it; "+
			"Countersign could not make it private", "host", det.Name, "path", det.Path, "err", err)
	}
}

// load finds host id and loads its file, refusing hosts that cannot be
// edited.
func (c *Connect) load(id string) (*hosts.Config, hosts.Detection, error) {
	env, err := c.env()
	if err != nil {
		return nil, hosts.Detection{}, err
	}
	for _, det := range c.ed.Detect(env) {
		if string(det.Host) != id {
			continue
		}
		switch det.Status {
		case hosts.NotInstalled:
			return nil, det, fmt.Errorf("%s is not installed for this user", det.Name)
		case hosts.Malformed, hosts.Unreadable:
			return nil, det, fmt.Errorf("%s's configuration can't be changed: %w", det.Name, det.Err)
		}
		cfg, err := c.loadFile(det)
		if err != nil {
			return nil, det, fmt.Errorf("%s's configuration can't be changed: %w", det.Name, err)
		}
		return cfg, det, nil
	}
	return nil, hosts.Detection{}, fmt.Errorf("unknown AI app %q", id)
}

// plan applies to cfg the edit that leaves exactly servers connected.
func (c *Connect) plan(cfg *hosts.Config, det hosts.Detection, servers []string) error {
	var offered []string
	for _, es := range c.d.Current().Servers {
		offered = append(offered, es.Server.ID)
	}
	connected := cfg.Connected()
	var add, remove []string
	for _, id := range servers {
		switch {
		case slices.Contains(offered, id):
			add = append(add, id) // new, or updated to the current address
		case slices.Contains(connected, id):
			// No longer in the settings: kept as it is, never re-added.
		default:
			return fmt.Errorf("there is no server %q in Countersign's settings", id)
		}
	}
	for _, id := range connected {
		if !slices.Contains(servers, id) {
			remove = append(remove, id)
		}
	}
	// Settings order, so the file's order does not depend on clicks.
	slices.SortStableFunc(add, func(a, b string) int { return slices.Index(offered, a) - slices.Index(offered, b) })
	if len(remove) > 0 {
		if err := cfg.Disconnect(remove...); err != nil {
			return fmt.Errorf("removing entries from %s: %w", det.Name, err)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if why := c.addUnavailable(det.Host); why != "" {
		// Entries already there stay as they are; new ones cannot work.
		if slices.ContainsFunc(add, func(id string) bool { return !slices.Contains(connected, id) }) {
			return errors.New(why)
		}
		return nil
	}
	t := hosts.Target{BridgePath: c.d.BridgePath, ConfigPath: c.d.ConfigPath, Port: c.d.Port, Token: c.d.Token}
	if err := cfg.Connect(t, add...); err != nil {
		return fmt.Errorf("adding entries to %s: %w", det.Name, err)
	}
	return nil
}

// planned loads host's file and makes in memory the change that leaves
// exactly servers connected. c.mu must be held.
func (c *Connect) planned(ctx context.Context, host string, servers []string) (*hosts.Config, hosts.Detection, error) {
	if err := ctx.Err(); err != nil {
		return nil, hosts.Detection{}, err
	}
	cfg, det, err := c.load(host)
	if err != nil {
		return nil, hosts.Detection{}, err
	}
	if err := c.plan(cfg, det, servers); err != nil {
		return nil, hosts.Detection{}, err
	}
	return cfg, det, nil
}

// Preview shows the change that would leave exactly servers connected in
// the AI app host: entries are added, updated (a new port or bridge path)
// or removed. Nothing is written.
func (c *Connect) Preview(ctx context.Context, host string, servers []string) (ConnectPreview, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, det, err := c.planned(ctx, host, servers)
	if err != nil {
		return ConnectPreview{}, err
	}
	p := ConnectPreview{Host: host, Path: det.Path, Changes: cfg.Changes(), Diff: cfg.Diff()}
	if cfg.Changed() && cfg.HoldsToken() {
		p.Note = PrivateFileNote
	}
	return p, nil
}

// Apply makes the change Preview showed: a backup of the file first, then
// the new file written atomically. previewed is the diff the person saw;
// if the change is no longer that one, nothing is written and the error is
// ErrPreviewStale. Applying twice changes nothing the second time.
func (c *Connect) Apply(ctx context.Context, host string, servers []string, previewed string) (ConnectResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, _, err := c.planned(ctx, host, servers)
	if err != nil {
		return ConnectResult{}, err
	}
	switch diff := cfg.Diff(); {
	case diff == "":
		// Already as the person wants it (applied twice): nothing to write.
		return ConnectResult{Host: host}, nil
	case diff != previewed:
		return ConnectResult{}, ErrPreviewStale
	}
	r, err := c.save(cfg, host)
	if err == nil {
		c.record(ctx, "connected", cfg, r, map[string]any{"servers": servers})
	}
	return r, err
}

func (c *Connect) save(cfg *hosts.Config, host string) (ConnectResult, error) {
	saved, err := cfg.Save()
	if err != nil {
		return ConnectResult{}, fmt.Errorf("saving %s's configuration: %w", cfg.Host().Name(), err)
	}
	return ConnectResult{Host: host, Path: saved.Path, Backup: saved.Backup, Sidecar: saved.Sidecar, Changes: saved.Changes, Diff: saved.Diff}, nil
}

// Disable turns off the AI app's direct connections named, so its calls to
// those vendors can only go through Countersign. Each entry is removed from
// the file and kept verbatim next to it, to be turned on again by Enable.
// Only entries Overview listed as direct can be turned off.
func (c *Connect) Disable(ctx context.Context, host string, names []string) (ConnectResult, error) {
	if err := ctx.Err(); err != nil {
		return ConnectResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, _, err := c.load(host)
	if err != nil {
		return ConnectResult{}, err
	}
	direct := cfg.FindDirect(c.matchers())
	for _, n := range names {
		if !slices.ContainsFunc(direct, func(d hosts.Direct) bool { return d.Name == n }) {
			return ConnectResult{}, fmt.Errorf("%q is not a direct connection to an approved vendor server in %s", n, cfg.Path())
		}
	}
	if err := cfg.Disable(names...); err != nil {
		return ConnectResult{}, fmt.Errorf("turning off entries in %s: %w", cfg.Path(), err)
	}
	r, err := c.save(cfg, host)
	if err == nil {
		c.record(ctx, "turned off direct connections", cfg, r, map[string]any{"disabled": names})
	}
	return r, err
}

// Enable puts entries Disable turned off back where they were.
func (c *Connect) Enable(ctx context.Context, host string, names []string) (ConnectResult, error) {
	if err := ctx.Err(); err != nil {
		return ConnectResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, _, err := c.load(host)
	if err != nil {
		return ConnectResult{}, err
	}
	if err := cfg.Enable(names...); err != nil {
		return ConnectResult{}, fmt.Errorf("turning entries back on in %s: %w", cfg.Path(), err)
	}
	r, err := c.save(cfg, host)
	if err == nil {
		c.record(ctx, "turned direct connections back on", cfg, r, map[string]any{"enabled": names})
	}
	return r, err
}

// RouteAll sends every AI app's calls through Countersign: in each app
// whose file can be changed, every direct connection to a vendor is turned
// off, and Countersign's servers for the same vendors are connected in its
// place, so the app keeps its tools but each call waits for review. Where
// Countersign's servers cannot be added (Claude Desktop without the
// bridge), the direct connections are still turned off: nothing may bypass
// review, and the error says what is missing. It returns what was written,
// one result per app changed, and every app's failure joined.
func (c *Connect) RouteAll(ctx context.Context) ([]ConnectResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	env, err := c.env()
	if err != nil {
		return nil, err
	}
	var out []ConnectResult
	var errs []error
	for _, det := range c.ed.Detect(env) {
		if det.Status != hosts.Found {
			continue
		}
		r, changed, err := c.routeHost(ctx, det)
		if changed {
			out = append(out, r)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// routeHost is RouteAll for one app. c.mu must be held.
func (c *Connect) routeHost(ctx context.Context, det hosts.Detection) (ConnectResult, bool, error) {
	cfg, _, err := c.load(string(det.Host))
	if err != nil {
		return ConnectResult{}, false, err
	}
	direct := cfg.FindDirect(c.matchers())
	if len(direct) == 0 {
		return ConnectResult{}, false, nil
	}
	servers := cfg.Connected()
	var names []string
	for _, d := range direct {
		names = append(names, d.Name)
		for _, es := range c.d.Current().Servers {
			if es.Server.Kind == d.Server && es.Connect && !slices.Contains(servers, es.Server.ID) {
				servers = append(servers, es.Server.ID)
			}
		}
	}
	if err := cfg.Disable(names...); err != nil {
		return ConnectResult{}, false, fmt.Errorf("turning off entries in %s: %w", cfg.Path(), err)
	}
	what := "sent every call through Countersign"
	planErr := c.plan(cfg, det, servers)
	if planErr != nil {
		// Turn the bypasses off all the same, without the replacements.
		if cfg, _, err = c.load(string(det.Host)); err != nil {
			return ConnectResult{}, false, err
		}
		if err := cfg.Disable(names...); err != nil {
			return ConnectResult{}, false, fmt.Errorf("turning off entries in %s: %w", cfg.Path(), err)
		}
		what = "turned off direct connections"
		planErr = fmt.Errorf("in %s the direct connections were turned off, but Countersign's servers could not be added: %w", det.Name, planErr)
	}
	r, err := c.save(cfg, string(det.Host))
	if err != nil {
		return ConnectResult{}, false, err
	}
	c.record(ctx, what, cfg, r, map[string]any{"disabled": names, "servers": servers})
	return r, true, planErr
}

// record puts a change made to an AI app's file in the audit log: the app,
// the file, the backup, what changed in words and the diff, with
// Countersign's token masked wherever it could appear.
func (c *Connect) record(ctx context.Context, what string, cfg *hosts.Config, r ConnectResult, extra map[string]any) {
	if c.d.Audit == nil || (r.Path == "" && r.Sidecar == "") {
		return
	}
	mask := func(s string) string {
		if c.d.Token == "" {
			return s
		}
		return strings.ReplaceAll(s, c.d.Token, "••••")
	}
	detail := map[string]any{"setting": "connect", "app": cfg.Host().Name(), "file": cfg.Path()}
	if r.Backup != "" {
		detail["backup"] = r.Backup
	}
	if r.Sidecar != "" {
		detail["turnedOffKeptIn"] = r.Sidecar
	}
	var changes []string
	for _, ch := range r.Changes {
		changes = append(changes, mask(ch))
	}
	if len(changes) > 0 {
		detail["changes"] = changes
	}
	if r.Diff != "" {
		detail["diff"] = mask(r.Diff)
	}
	for k, v := range extra {
		detail[k] = v
	}
	ev := audit.Event{Kind: audit.KindSettingsChanged, Actor: audit.ActorPerson,
		Reason: what + " in " + cfg.Host().Name(), Detail: jsonDetail(detail)}
	if _, err := c.d.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		c.d.Log.Error("writing the audit log", "kind", string(ev.Kind), "err", err)
	}
}

// AdminSnippets returns, for an administrator, the managed-configuration
// snippets that lock VS Code, GitHub Copilot, Claude Code and Claude
// Desktop to this machine's Countersign servers (docs/ADMIN-HOSTS.md),
// as text to copy. They reach Countersign through the bridge and never
// hold the local token.
func (c *Connect) AdminSnippets(context.Context) (string, error) {
	m := lockdown.Machine{GOOS: runtime.GOOS, Port: c.d.Port, BridgePath: c.d.BridgePath}
	for _, s := range c.d.Current().Servers {
		m.Servers = append(m.Servers, s.Server.ID)
	}
	snippets, err := lockdown.Snippets(m)
	if err != nil {
		return "", err
	}
	return lockdown.Text(snippets), nil
}
