package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/notify"
	"github.com/countersign/countersign/internal/pins"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/internal/vault"
)

// settingsDeps is what the settings service is built on.
type settingsDeps struct {
	store    *config.Store            // the settings file: Load(), Update(func(*config.Config) error) error
	current  func() *config.Effective // effective settings now (user ∩ admin policy), from the config.Watcher
	reload   func()                   // call after a successful store.Update so the change applies at once (watcher.Reload)
	auth     *auth.Service            // sign-in per server; may be nil in tests
	queue    *gate.Queue              // SetTimeout applies here too
	audit    *audit.Log               // may be nil: record settings_changed / sign_in / sign_out / sign_in_failed events
	problems func(id string) string   // why a server is not connected right now ("" if it is), from the lead's server build
	login    autostart                // start at login (autostart.go)
	pins     *pins.Store              // tool definitions seen; may be nil in tests
	outside  outsideChanges           // settings file changes made outside the app (the config.Watcher); may be nil in tests
	notifier notify.Notifier          // tells the person of a change waiting for them; may be nil
	log      *slog.Logger
}

// outsideChanges is what the settings service needs of the config.Watcher
// for changes of the settings file made outside the app.
type outsideChanges interface {
	Pending() (config.OutsideChange, bool)
	Confirm(id uint64) ([]config.Change, error)
}

// Settings is the settings window's view of the app: the servers and their
// sign-in, their allowlists, the approval timeout and start at login. It
// shows the effective settings (the person's, narrowed by the admin
// policy); changes are checked against the catalog and the policy, saved
// atomically to the settings file, applied at once and audited.
type Settings struct {
	settingsDeps

	loginMu sync.Mutex // serialises SetStartAtLogin: the autostart entry and the file change together

	formsMu sync.Mutex
	forms   map[string]allowForm // server id → its allowlist's form, as last read off the UI goroutine

	subsMu sync.Mutex
	subs   map[chan struct{}]bool // OutsideChanges subscribers
}

func newSettings(d settingsDeps) *Settings {
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.reload == nil {
		d.reload = func() {}
	}
	if d.problems == nil {
		d.problems = func(string) string { return "" }
	}
	return &Settings{settingsDeps: d, forms: map[string]allowForm{}, subs: map[chan struct{}]bool{}}
}

// Problem is a failure told in plain words: Message says what happened and
// what to do; Detail is the technical account behind "Technical details",
// with anything that looks like a secret redacted. It unwraps to the
// failure itself, so callers can still branch on it.
type Problem struct {
	Message string
	Detail  string
	err     error
}

// Error is the plain message.
func (p *Problem) Error() string { return p.Message }

// Unwrap is the failure behind the message.
func (p *Problem) Unwrap() error { return p.err }

// unavailable is an error that reads as a sentence for the person and
// matches ErrNotAvailable.
type unavailable string

func (e unavailable) Error() string        { return string(e) }
func (e unavailable) Is(target error) bool { return target == ErrNotAvailable }

func (s *Settings) server(id string) (config.EffectiveServer, error) {
	es, ok := s.current().Server(id)
	if !ok {
		return config.EffectiveServer{}, fmt.Errorf("there is no server %q in the settings", id)
	}
	return es, nil
}

// Servers lists the servers in the settings, with how each is reached and
// where its sign-in stands.
func (s *Settings) Servers(ctx context.Context) ([]ServerStatus, error) {
	eff := s.current()
	out := make([]ServerStatus, 0, len(eff.Servers))
	for _, es := range eff.Servers {
		out = append(out, s.status(es))
	}
	return out, nil
}

// errNoAuth stands in for the sign-in service's answer when there is none.
var errNoAuth = errors.New("no sign-in service")

func (s *Settings) status(es config.EffectiveServer) ServerStatus {
	id := es.Server.ID
	as, err := auth.Status{}, errNoAuth
	if s.auth != nil {
		as, err = s.auth.Status(id)
	}
	return describe(es, as, err, s.problems(id))
}

// describe is a server as the settings window shows it, from its effective
// settings, its sign-in status (asErr set when the sign-in service does not
// know it) and why it is not connected (problem, "" when it is).
func describe(es config.EffectiveServer, as auth.Status, asErr error, problem string) ServerStatus {
	srv := es.Server
	st := ServerStatus{ID: srv.ID, Name: displayName(srv)}
	var entry catalog.Entry
	inCatalog := false
	if !srv.Custom() {
		entry, inCatalog = catalog.Lookup(srv.Kind)
	}
	switch {
	case srv.Custom():
		st.Transport, st.Endpoint = srv.Transport, customEndpoint(srv)
	case inCatalog:
		st.Transport, st.Endpoint = string(entry.Transport), catalogEndpoint(entry, es)
	}
	known := asErr == nil
	if known {
		st.SignedIn = as.State == auth.StateSignedIn
		st.Scopes = slices.Clone(as.Scopes)
	}
	local := st.Transport == config.TransportStdio
	noSignIn := srv.Custom() || local || (inCatalog && entry.Auth.Kind == catalog.AuthNone)
	switch {
	case !es.Connect:
		st.SignInUnavailable = sentence(es.Why)
	case local:
		st.SignInUnavailable = "This server runs on this computer, so there is nothing to sign in to."
	case srv.Custom():
		st.SignInUnavailable = "Countersign signs in only to servers from its catalog; this one is used without signing in."
	case !inCatalog:
		st.SignInUnavailable = sentence(checkKind(srv.Kind).Error())
	case !entry.Supported:
		st.SignInUnavailable = sentence(entry.Unsupported)
	case noSignIn:
		st.SignInUnavailable = "This server needs no sign-in."
	case !known && problem != "":
		st.SignInUnavailable = "Signing in is possible once the server can be connected."
	case !known:
		st.SignInUnavailable = "Signing in to this server is not available right now."
	}
	if known && st.SignInUnavailable == "" {
		st.TakesToken = as.Kind == auth.KindBearer
		st.NeedsSignIn = as.State == auth.StateSignInAgain
	}
	switch {
	case !es.Connect:
		st.State = "Not connected: " + es.Why
	case inCatalog && !entry.Supported:
		st.State = "Not connected: " + entry.Unsupported
	case problem != "":
		st.State = "Not connected: " + problem
	case known:
		st.State = authState(as)
	case noSignIn:
		st.State = "No sign-in needed"
	default:
		st.State = "Not signed in"
	}
	if inCatalog {
		st.Locked = lockedWhy(es, entry)
		if note := siteless(entry, es); note != "" {
			st.State += ". " + note
		}
	}
	if inCatalog && entry.Auth.Kind == catalog.AuthSigV4 && st.SignedIn && st.SignInUnavailable == "" {
		st.ChoosesRole = true
		if acct, role := es.Params["account"].Value, es.Params["role"].Value; acct != "" && role != "" {
			st.Role = "Account " + acct + ", role " + role
		}
	}
	return st
}

// siteless says what to do about a server saved before its catalog entry
// tied servers to one vendor site (Atlassian): its calls still go to the
// person, flagged, until it is added again with its site.
func siteless(e catalog.Entry, es config.EffectiveServer) string {
	if !es.Connect || e.Targets == nil || e.Targets.Site == nil || es.Params[e.Targets.Site.Param].Value != "" {
		return ""
	}
	return "Not tied to an " + e.Targets.Site.Noun + " yet, so calls naming a site are flagged for you: remove this server and add it again with its site"
}

// authState is a sign-in status in plain words.
func authState(as auth.Status) string {
	with := func(s string) string {
		if as.Reason != "" {
			return s + ": " + as.Reason
		}
		return s
	}
	switch as.State {
	case auth.StateNone:
		return "No sign-in needed"
	case auth.StateSignedOut:
		return with("Not signed in")
	case auth.StateSigningIn:
		return "Signing in…"
	case auth.StateSignedIn:
		if as.PolicyException {
			return with("Signed in with a token you pasted")
		}
		return with("Signed in")
	case auth.StateSignInAgain:
		return with("Sign in again")
	}
	return with(upperFirst(as.State.String()))
}

// catalogEndpoint is where a catalog server is reached: its URL built from
// the parameters, or its command line. Parameters are validated names, not
// secrets.
func catalogEndpoint(entry catalog.Entry, es config.EffectiveServer) string {
	params := es.ParamValues()
	if hasParam(entry, "write") {
		params["write"] = strconv.FormatBool(es.AllowWrite)
	}
	switch entry.Transport {
	case catalog.TransportStreamableHTTP:
		if u, err := entry.Endpoint(params); err == nil {
			return u
		}
		if len(entry.Endpoints) > 0 {
			return entry.Endpoints[len(entry.Endpoints)-1].URL // the template, until the parameters are complete
		}
	case catalog.TransportStdio:
		if argv, err := entry.CommandLine(params); err == nil {
			return strings.Join(argv, " ")
		}
		return strings.Join(entry.Command, " ")
	}
	return ""
}

// customEndpoint is where a custom server is reached, without anything that
// could be a credential: a URL loses its user info, query and fragment, and
// a command line has whatever looks like a secret redacted.
func customEndpoint(srv config.Server) string {
	if srv.Transport == config.TransportStdio {
		line, _ := redact.Redact(strings.Join(append([]string{srv.Command}, srv.Args...), " "))
		return line
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// lockedWhy says what of a catalog server the admin policy fixes.
func lockedWhy(es config.EffectiveServer, entry catalog.Entry) string {
	var labels []string
	for _, p := range entry.Params {
		if e, ok := es.Params[p.Name]; ok && e.Locked {
			labels = append(labels, p.Label)
		}
	}
	var why []string
	if len(labels) > 0 {
		why = append(why, config.WhyPolicy+": "+strings.Join(labels, ", ")+".")
	}
	if hasParam(entry, "write") && es.AllowWriteLock.Locked {
		why = append(why, sentence(es.AllowWriteLock.Why))
	}
	return strings.Join(why, " ")
}

func hasParam(entry catalog.Entry, name string) bool {
	return slices.ContainsFunc(entry.Params, func(p catalog.Param) bool { return p.Name == name })
}

// SignIn signs in to a server in the browser and waits until the person
// finishes; it may take minutes. A cancelled ctx cancels the sign-in.
func (s *Settings) SignIn(ctx context.Context, serverID string) error {
	es, err := s.server(serverID)
	if err != nil {
		return err
	}
	st := s.status(es)
	if st.SignInUnavailable != "" {
		return unavailable(st.SignInUnavailable)
	}
	if st.TakesToken {
		return unavailable(st.Name + " signs in with an access token: paste it with Enter token.")
	}
	name := displayName(es.Server)
	err = s.auth.SignIn(ctx, serverID)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// auth stops waiting but keeps the browser sign-in open; nobody
		// is left to wait for it.
		s.auth.CancelSignIn(serverID)
		err = auth.ErrSignInCanceled
	}
	if err != nil {
		reason, _ := redact.Redact(err.Error())
		s.record(ctx, audit.Event{Kind: audit.KindSignInFailed, Server: serverID, Reason: reason})
		if as, err := s.auth.Status(serverID); err == nil && as.Name != "" {
			name = as.Name // the name the server's state speaks of, so the two agree
		}
		return &Problem{Message: auth.Explain(name, err), Detail: "signing in to " + name + ": " + reason, err: err}
	}
	var detail any
	if as, err := s.auth.Status(serverID); err == nil && len(as.Scopes) > 0 {
		detail = map[string]any{"scopes": as.Scopes}
	}
	s.record(ctx, audit.Event{Kind: audit.KindSignIn, Server: serverID, Detail: jsonDetail(detail)})
	s.log.Info("signed in", "server", serverID)
	return nil
}

// SignOut forgets a server's sign-in: its tokens, registration and any
// token the person entered.
func (s *Settings) SignOut(ctx context.Context, serverID string) error {
	es, err := s.server(serverID)
	if err != nil {
		return err
	}
	if s.auth == nil {
		return unavailable("Signing in is not available right now, so there is nothing to sign out of.")
	}
	if _, err := s.auth.Status(serverID); err != nil {
		return unavailable(displayName(es.Server) + " has no sign-in to sign out of.")
	}
	err = s.auth.SignOut(ctx, serverID)
	ev := audit.Event{Kind: audit.KindSignOut, Server: serverID}
	if err != nil {
		ev.Reason, _ = redact.Redact(err.Error())
	}
	s.record(ctx, ev)
	if err != nil {
		return err
	}
	s.log.Info("signed out", "server", serverID)
	return nil
}

// allowForm is how a server's allowlist entries are written in the
// settings window. A server whose allowlist holds one target kind takes
// plain patterns ("DEFRA/ffc-*"). One that holds several (Atlassian: Jira
// projects and Confluence spaces) takes each entry with its kind's prefix,
// "jira:FFC" or "confluence:DOCS", so one list can hold them all.
type allowForm struct {
	kinds    []catalog.Kind // none when the server has no allowlist
	prefixes []string       // per kind, when there are several
	why      string         // why entries cannot be added or changed; "" when they can
}

func formOf(es config.EffectiveServer) allowForm {
	kinds, err := targetKinds(es.Server.Kind)
	if err != nil {
		if errors.As(err, new(noRulesError)) {
			return allowForm{why: upperFirst(err.Error()) + ", so every call waits for your review."}
		}
		return allowForm{why: sentence(err.Error())}
	}
	f := allowForm{kinds: kinds}
	if len(kinds) > 1 {
		f.prefixes = prefixes(kinds)
	}
	if es.AllowlistLock.Locked {
		f.why = sentence(es.AllowlistLock.Why)
		var dropped []string
		for _, k := range kinds {
			for _, e := range es.Dropped[string(k)] {
				dropped = append(dropped, f.show(k, e.Value))
			}
		}
		if len(dropped) > 0 {
			f.why += " Your own entries are not applied: " + strings.Join(dropped, ", ") + "."
		}
	}
	return f
}

// prefixes names each kind by the part of its id before the first dash
// ("jira-project" → "jira"), or by the whole id if that is ambiguous.
func prefixes(kinds []catalog.Kind) []string {
	out := make([]string, len(kinds))
	seen := map[string]int{}
	for i, k := range kinds {
		out[i], _, _ = strings.Cut(string(k), "-")
		seen[out[i]]++
	}
	for i, k := range kinds {
		if seen[out[i]] > 1 {
			out[i] = string(k)
		}
	}
	return out
}

// show writes a pattern of kind k as the settings window shows it.
func (f allowForm) show(k catalog.Kind, pattern string) string {
	if f.prefixes == nil {
		return pattern
	}
	return f.prefixes[slices.Index(f.kinds, k)] + ":" + pattern
}

// parse reads an entry as the person wrote it and checks it.
func (f allowForm) parse(text string) (catalog.Kind, string, error) {
	switch {
	case len(f.kinds) == 0:
		return "", "", unavailable(f.why)
	case f.prefixes == nil:
		text = forgiveEntry(f.kinds[0], text)
		return f.kinds[0], text, policy.ValidatePattern(f.kinds[0], text)
	}
	if p, rest, ok := strings.Cut(text, ":"); ok {
		for i, k := range f.kinds {
			if strings.EqualFold(p, f.prefixes[i]) {
				return k, rest, policy.ValidatePattern(k, rest)
			}
		}
	}
	ways := make([]string, len(f.kinds))
	for i, k := range f.kinds {
		ways[i] = f.prefixes[i] + ": for " + article(k)
	}
	return "", "", fmt.Errorf("start with %s, such as %s", strings.Join(ways, " or "), f.example())
}

// example is a valid entry to show as a hint.
func (f allowForm) example() string {
	var out []string
	for _, k := range f.kinds {
		if info, ok := catalog.LookupKind(k); ok {
			out = append(out, f.show(k, info.Example))
		}
	}
	return strings.Join(out, " or ")
}

// article is "a Jira project", "an Azure DevOps project".
func article(k catalog.Kind) string {
	noun := string(k)
	if info, ok := catalog.LookupKind(k); ok {
		noun = info.Noun
	}
	if strings.ContainsRune("AEIOUaeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

func (s *Settings) remember(id string, f allowForm) {
	s.formsMu.Lock()
	s.forms[id] = f
	s.formsMu.Unlock()
}

// Allowlist returns what a server's calls may touch: the policy's entries
// (locked) and the person's.
func (s *Settings) Allowlist(ctx context.Context, serverID string) (Allowlist, error) {
	es, err := s.server(serverID)
	if err != nil {
		return Allowlist{}, err
	}
	f := formOf(es)
	s.remember(serverID, f)
	if len(f.kinds) == 0 {
		return Allowlist{Kind: "repositories or projects", Unavailable: f.why}, nil
	}
	al := Allowlist{Kind: kindList(f.kinds), Example: f.example(), Unavailable: f.why}
	for i, k := range f.prefixes {
		ak := AllowKind{Prefix: k, Noun: string(f.kinds[i])}
		if info, ok := catalog.LookupKind(f.kinds[i]); ok {
			ak.Noun, ak.Example = info.Noun, info.Example
		}
		al.Kinds = append(al.Kinds, ak)
	}
	for _, k := range f.kinds {
		for _, e := range es.Allowlist[string(k)] {
			al.Entries = append(al.Entries, AllowEntry{Pattern: f.show(k, e.Value), Locked: e.Locked})
		}
	}
	return al, nil
}

// CheckAllowEntry says what is wrong with an allowlist entry, or nil. It
// runs on every keystroke on the UI goroutine, so it touches no file and
// waits on nothing but a short lock: the server's form comes from the last
// Allowlist call.
func (s *Settings) CheckAllowEntry(serverID, pattern string) error {
	s.formsMu.Lock()
	f, ok := s.forms[serverID]
	s.formsMu.Unlock()
	if !ok {
		es, err := s.server(serverID)
		if err != nil {
			return err
		}
		f = formOf(es)
		s.remember(serverID, f)
	}
	if f.why != "" {
		return unavailable(f.why)
	}
	_, _, err := f.parse(pattern)
	return err
}

// SetAllowlist replaces the person's allowlist entries of a server. The
// policy's entries stay as they are and are never written to the settings
// file; entries it already has are left out.
func (s *Settings) SetAllowlist(ctx context.Context, serverID string, patterns []string) error {
	es, err := s.server(serverID)
	if err != nil {
		return err
	}
	f := formOf(es)
	s.remember(serverID, f)
	if f.why != "" {
		return unavailable(f.why)
	}
	fromPolicy := func(k catalog.Kind, v string) bool {
		return slices.ContainsFunc(es.Allowlist[string(k)], func(e config.Entry) bool { return e.Locked && e.Value == v })
	}
	mine := map[string][]string{}
	count := 0
	for _, text := range patterns {
		k, v, err := f.parse(strings.TrimSpace(text))
		if err != nil {
			return err
		}
		if fromPolicy(k, v) || slices.Contains(mine[string(k)], v) {
			continue
		}
		mine[string(k)] = append(mine[string(k)], v)
		count++
	}
	changes, changed, err := s.updateDiff(func(c *config.Config) error {
		i := slices.IndexFunc(c.Servers, func(x config.Server) bool { return x.ID == serverID })
		if i < 0 {
			return fmt.Errorf("there is no server %q in the settings file", serverID)
		}
		if sameLists(c.Servers[i].Allowlist, mine) {
			return errUnchanged
		}
		c.Servers[i].Allowlist = mine
		if count == 0 {
			c.Servers[i].Allowlist = nil
		}
		return nil
	})
	if err != nil || !changed {
		return err
	}
	name := displayName(es.Server)
	s.record(ctx, audit.Event{
		Kind: audit.KindSettingsChanged, Server: serverID,
		Reason: fmt.Sprintf("%s allowlist: %d %s of your own", name, count, plural(count, "entry", "entries")),
		Detail: changesDetail(map[string]any{"setting": "allowlist", "server": serverID, "entries": count, "allowlist": mine}, changes),
	})
	s.log.Info("allowlist changed", "server", serverID, "entries", count)
	return nil
}

func sameLists(a, b map[string][]string) bool {
	return maps.EqualFunc(nonEmpty(a), nonEmpty(b), slices.Equal)
}

func nonEmpty(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// Timeout returns how long a call waits for a decision, and the bounds a
// new value must keep to: the app's, narrowed by the admin policy.
func (s *Settings) Timeout(ctx context.Context) (TimeoutSetting, error) {
	eff := s.current()
	t := TimeoutSetting{Value: eff.ApprovalTimeout, Min: config.MinApprovalTimeout, Max: eff.MaxApprovalTimeout}
	if t.Max <= t.Min {
		t.Max = t.Min
		t.Locked = config.WhyPolicy + "."
		if eff.ApprovalTimeoutWhy != "" {
			t.Locked = sentence(eff.ApprovalTimeoutWhy)
		}
	}
	return t, nil
}

// SetTimeout saves a new approval timeout; calls arriving from now on use
// it.
func (s *Settings) SetTimeout(ctx context.Context, d time.Duration) error {
	t, _ := s.Timeout(ctx)
	switch {
	case t.Locked != "":
		return unavailable(t.Locked)
	case d < t.Min:
		return fmt.Errorf("the timeout must be at least %s, so there is time to read a call", plainDuration(t.Min))
	case d > t.Max && t.Max < config.MaxApprovalTimeout:
		return fmt.Errorf("the timeout can't be %s: %s", plainDuration(d), lowerFirst(s.current().ApprovalTimeoutWhy))
	case d > t.Max:
		return fmt.Errorf("the timeout can be at most %s", plainDuration(t.Max))
	}
	var from time.Duration
	changes, changed, err := s.updateDiff(func(c *config.Config) error {
		from = time.Duration(c.ApprovalTimeout)
		if from == d {
			return errUnchanged
		}
		c.ApprovalTimeout = config.Duration(d)
		return nil
	})
	if err != nil {
		return err
	}
	if s.queue != nil {
		s.queue.SetTimeout(d)
	}
	if !changed {
		return nil
	}
	s.record(ctx, audit.Event{
		Kind:   audit.KindSettingsChanged,
		Reason: "approval timeout: " + plainDuration(d),
		Detail: changesDetail(map[string]any{"setting": "approvalTimeout", "from": plainDuration(from), "to": plainDuration(d)}, changes),
	})
	s.log.Info("approval timeout changed", "timeout", d.String())
	return nil
}

// StartAtLogin says whether Countersign starts when the person logs in.
func (s *Settings) StartAtLogin(ctx context.Context) (LoginSetting, error) {
	return s.login.state()
}

// SetStartAtLogin turns starting at login on or off, and records the choice
// in the settings file.
func (s *Settings) SetStartAtLogin(ctx context.Context, on bool) error {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	was, err := s.login.state()
	if err != nil {
		return err
	}
	if err := s.login.set(on); err != nil {
		return err
	}
	changes, changed, err := s.updateDiff(func(c *config.Config) error {
		if c.StartAtLogin == on {
			return errUnchanged
		}
		c.StartAtLogin = on
		return nil
	})
	if err != nil {
		if was.Unavailable == "" {
			if rerr := s.login.set(was.On); rerr != nil {
				s.log.Warn("putting start at login back", "err", rerr)
			}
		}
		return err
	}
	if changed || was.On != on {
		s.record(ctx, audit.Event{
			Kind:   audit.KindSettingsChanged,
			Reason: "start at login: " + onOff(on),
			Detail: changesDetail(map[string]any{"setting": "startAtLogin", "on": on}, changes),
		})
	}
	return nil
}

// welcome sets up a first run, when there was no settings file: Countersign
// starts at login unless the person turns it off in Settings. Where this
// system offers no way to set that, the installer does, and nothing is
// written.
func (s *Settings) welcome(ctx context.Context) {
	err := s.SetStartAtLogin(ctx, true)
	switch {
	case errors.Is(err, ErrNotAvailable):
	case err != nil:
		s.log.Warn("turning on start at login for a first run", "err", err)
	default:
		s.log.Info("first run: Countersign now starts at login")
	}
}

// reconcileLogin makes starting at login match the settings file, at
// start-up and whenever the file changes: the file may have been edited by
// hand or by device management, or Countersign moved since the entry was
// written.
func (s *Settings) reconcileLogin() {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	on := s.current().StartAtLogin
	changed, err := s.login.reconcile(on)
	switch {
	case err != nil:
		s.log.Warn("making start at login match the settings", "err", err)
	case changed:
		s.log.Info("start at login now matches the settings", "on", on)
	}
}

// errUnchanged ends an update that would change nothing; nothing is
// written or audited.
var errUnchanged = errors.New("settings unchanged")

// errFileChanged ends an update when the file no longer holds the settings
// in force: a program changed it, and the change has not been applied or
// confirmed yet. Saving on top of it would pass it off as the person's own.
var errFileChanged = errors.New("settings file changed outside the app")

// update changes the settings file through the store, refusing what the
// admin policy forbids, and applies the result at once. It reports whether
// anything was written.
func (s *Settings) update(change func(*config.Config) error) (bool, error) {
	_, changed, err := s.updateDiff(change)
	return changed, err
}

// updateDiff is update, also returning what changed in the settings in
// force, in words for the audit. While a change made outside the app waits
// for the person, or the file holds one not seen yet, nothing is saved.
func (s *Settings) updateDiff(change func(*config.Config) error) ([]string, bool, error) {
	if err := s.pendingRefusal(); err != nil {
		return nil, false, err
	}
	before := s.current()
	err := s.store.Update(func(c *config.Config) error {
		if !c.Equal(before.Settings) || !c.Equal(s.current().Settings) {
			return errFileChanged
		}
		old := c.Clone()
		if err := change(c); err != nil {
			return err
		}
		if err := s.current().CheckEdit(old, c); err != nil {
			return fmt.Errorf("not saving settings: %w", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return nil, false, nil
	case errors.Is(err, errFileChanged):
		s.reload() // judge the outside change now: it applies, or waits for the person
		if perr := s.pendingRefusal(); perr != nil {
			return nil, false, perr
		}
		return nil, false, unavailable("The settings file was just changed outside Countersign, so nothing was saved. Look at your settings and try again.")
	case err != nil:
		return nil, false, err
	}
	s.reload()
	return config.Texts(config.Diff(before, s.current())), true, nil
}

// pendingRefusal is the error for a change in the app while a change made
// outside it waits for the person, or nil.
func (s *Settings) pendingRefusal() error {
	if s.outside == nil {
		return nil
	}
	if _, ok := s.outside.Pending(); ok {
		return unavailable("Your settings file was changed outside Countersign. Apply those changes or keep your current settings first.")
	}
	return nil
}

// inForceSecret names the keychain entry holding the settings last in
// force: other programs can write the settings file, but not the keychain
// without asking it.
const inForceSecret = "settings-in-force"

// secretsDir is where the vault seals values too large for the keychain,
// as Run opens it.
func secretsDir(o Options) string {
	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = filepath.Dir(o.ConfigPath)
	}
	return filepath.Join(dataDir, "secrets")
}

// keptSettings reads the settings last in force from the keychain, for
// config.WatcherOptions.InForce, and returns the function that keeps them
// there (WatcherOptions.Kept). None kept yet (the first start) takes the
// file as it is; an entry that can't be read fails closed: everything the
// file holds waits for the person, as if added outside the app.
func keptSettings(v *vault.Vault, log *slog.Logger) (*config.Config, func(*config.Config)) {
	keep := func(c *config.Config) {
		b, err := c.Marshal()
		if err == nil {
			err = v.Set(inForceSecret, b)
		}
		if err != nil {
			log.Warn("keeping the settings in force in the keychain", "err", err)
		}
	}
	b, err := v.Get(inForceSecret)
	switch {
	case errors.Is(err, vault.ErrSealedFileMissing):
		// Kept, but its sealed file was deleted: any program can do that,
		// so it is no sign of a first start.
		log.Error("the settings last in force can't be read: everything in the settings file waits for you", "err", err)
		return config.Defaults(), keep
	case errors.Is(err, vault.ErrNotFound):
		return nil, keep
	case err != nil:
		log.Error("the settings last in force can't be read: everything in the settings file waits for you", "err", err)
		return config.Defaults(), keep
	}
	c, err := config.Parse(b)
	if err != nil {
		log.Error("the settings last in force can't be read: everything in the settings file waits for you", "err", err)
		return config.Defaults(), keep
	}
	return c, keep
}

// SettingsChange is a change of the settings file made outside Countersign
// that waits for the person: shown with Apply these changes and Keep my
// current settings.
type SettingsChange struct {
	// ID names the change; the person's answer carries it, so an answer to
	// a change since replaced applies nothing.
	ID uint64
	// Changes are what would change, in plain words, one per line.
	Changes []SettingsChangeLine
}

// SettingsChangeLine is one change, marked when it widens what calls may
// do or reach.
type SettingsChangeLine struct {
	Text   string
	Widens bool
}

// PendingChange returns the change made outside Countersign that waits for
// the person, if any.
func (s *Settings) PendingChange(ctx context.Context) (SettingsChange, bool) {
	if s.outside == nil {
		return SettingsChange{}, false
	}
	p, ok := s.outside.Pending()
	if !ok {
		return SettingsChange{}, false
	}
	out := SettingsChange{ID: p.ID}
	for _, c := range p.Changes {
		out.Changes = append(out.Changes, SettingsChangeLine{Text: c.Text, Widens: c.Widens})
	}
	return out, true
}

// errChangedAgain is what the person hears when they answer a change that
// has been replaced.
var errChangedAgain = unavailable("The settings file changed again since these changes were shown. Look at the new changes.")

// ApplyOutsideChange applies the change made outside Countersign that the
// person was shown (id) and accepted. It is audited as the person's.
func (s *Settings) ApplyOutsideChange(ctx context.Context, id uint64) error {
	if s.outside == nil {
		return errChangedAgain
	}
	changes, err := s.outside.Confirm(id)
	if errors.Is(err, config.ErrNoSuchChange) {
		return errChangedAgain
	}
	if err != nil {
		return err
	}
	s.record(ctx, outsideEvent(audit.ActorPerson, "Settings changed outside Countersign applied", "applied", id, changes))
	s.signal()
	return nil
}

// KeepCurrentSettings refuses the change made outside Countersign that the
// person was shown (id): the settings file is written back, atomically, to
// the settings in force. It is audited as the person's.
func (s *Settings) KeepCurrentSettings(ctx context.Context, id uint64) error {
	if s.outside == nil {
		return errChangedAgain
	}
	p, ok := s.outside.Pending()
	if !ok || p.ID != id {
		return errChangedAgain
	}
	if err := s.store.Replace(s.current().Settings); err != nil {
		return fmt.Errorf("writing your current settings back: %w", err)
	}
	s.reload()
	s.record(ctx, outsideEvent(audit.ActorPerson, "Settings changed outside Countersign refused: kept the current settings", "refused", id, p.Changes))
	s.signal()
	return nil
}

// outsideChanged hears of every change of the settings file made outside
// the app (config.WatcherOptions.OnOutsideChange): it audits it, and a
// change that waits is also told to the person and shown in the app.
func (s *Settings) outsideChanged(c config.OutsideChange) {
	ctx := context.Background()
	switch {
	case len(c.Changes) == 0:
		s.record(ctx, outsideEvent(audit.ActorFile, "Settings change no longer waiting for confirmation: the file changed again", "withdrawn", c.Replaced, nil))
	case c.Waiting:
		ev := outsideEvent(audit.ActorFile, "Settings change waiting for confirmation", "waiting", c.ID, c.Changes)
		s.record(ctx, ev)
		if s.notifier != nil {
			if err := s.notifier.Notify("Settings were changed outside Countersign", "Nothing changes until you look: "+firstLines(config.Texts(c.Changes), 2)); err != nil {
				s.log.Warn("notifying of a settings change", "err", err)
			}
		}
	default:
		s.record(ctx, outsideEvent(audit.ActorFile, "Settings changed outside Countersign (applied at once, as it only narrows)", "applied", 0, c.Changes))
	}
	s.signal()
}

// outsideEvent is the audit event of a change made outside the app: what
// changed, in words that never hold a token (config.Diff sees to that).
func outsideEvent(actor audit.Actor, what, status string, id uint64, changes []config.Change) audit.Event {
	texts := config.Texts(changes)
	reason := what
	if len(texts) > 0 {
		reason += ": " + strings.Join(texts, "; ")
	}
	reason, _ = redact.Redact(reason)
	detail := map[string]any{"setting": "file", "status": status}
	if id != 0 {
		detail["change"] = id
	}
	server := ""
	for _, c := range changes {
		if server == "" {
			server = c.Server
		} else if c.Server != server {
			server = ""
			break
		}
	}
	return audit.Event{Kind: audit.KindSettingsChanged, Actor: actor, Server: server, Reason: reason, Detail: jsonDetail(detail)}
}

// firstLines joins up to n lines, saying how many more there are.
func firstLines(lines []string, n int) string {
	if len(lines) <= n {
		return strings.Join(lines, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(lines[:n], "; "), len(lines)-n)
}

// OutsideChanges delivers a value whenever a change made outside the app
// starts or stops waiting for the person, or was applied; stop ends the
// delivery.
func (s *Settings) OutsideChanges() (changes <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	s.subsMu.Lock()
	s.subs[ch] = true
	s.subsMu.Unlock()
	return ch, func() {
		s.subsMu.Lock()
		delete(s.subs, ch)
		s.subsMu.Unlock()
	}
}

func (s *Settings) signal() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// record appends an event to the audit log, the person's unless it names
// another actor. A change already made is not undone when the log fails;
// the failure is logged.
func (s *Settings) record(ctx context.Context, ev audit.Event) {
	if s.audit == nil {
		return
	}
	if ev.Actor == "" {
		ev.Actor = audit.ActorPerson
	}
	if _, err := s.audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		s.log.Error("writing the audit log", "kind", string(ev.Kind), "server", ev.Server, "err", err)
	}
}

// changesDetail encodes an audit event's detail with what changed in the
// settings in force, in words (config.Diff), when anything did.
func changesDetail(detail map[string]any, changes []string) json.RawMessage {
	if len(changes) > 0 {
		detail["changes"] = changes
	}
	return jsonDetail(detail)
}

// jsonDetail encodes an audit event's detail; nil stays absent.
func jsonDetail(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// plainDuration writes a duration without zero units: "5m", "1m30s", "24h".
func plainDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sentence makes s start with a capital and end with a full stop.
func sentence(s string) string {
	s = upperFirst(strings.TrimSpace(s))
	if s != "" && !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
