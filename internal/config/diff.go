package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/countersign/countersign/internal/redact"
)

// Change is one difference between two effective settings, in words a
// person can read ("GitHub: allowlist added DEFRA/*"). Its text never holds
// a secret: addresses lose their query, and command lines and parameters
// pass through the redaction detectors.
type Change struct {
	// Server is the id of the server changed, "" for an app-wide setting.
	Server string
	// Text says what changed, starting with the server's name.
	Text string
	// Widens is set when the change may let something run, or reach
	// something, that was refused before, or turns a protection off. A
	// change Diff is not sure of widens.
	Widens bool
}

// Widens reports whether any of the changes widens.
func Widens(cs []Change) bool {
	return slices.ContainsFunc(cs, func(c Change) bool { return c.Widens })
}

// Texts returns the changes' words, one per change.
func Texts(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Text
	}
	return out
}

// Diff lists what differs from old to next, each change marked narrowing or
// widening. Both should be resolved against the same admin policy, so that
// only the person's settings differ. It fails closed: anything it does not
// recognise is one widening change ("other settings changed").
func Diff(old, next *Effective) []Change {
	out := diffEffective(old, next)
	if old.Policy != nil || next.Policy != nil || old.Err != nil || next.Err != nil {
		// A change the policy hides now (an allowlist entry it does not
		// apply) would take effect once the policy changes: it is listed
		// too, as the person's own settings read without the policy.
		raw := diffEffective(Resolve(old.Settings, nil, Checks{}), Resolve(next.Settings, nil, Checks{}))
		for _, c := range raw {
			if !c.Widens || slices.ContainsFunc(out, func(e Change) bool { return e.Text == c.Text }) {
				continue
			}
			c.Text += " (not in force while your organisation's policy applies)"
			out = append(out, c)
		}
	}
	if !sameSettings(old.Settings, next.Settings) && (len(out) == 0 || !explained(old.Settings, next.Settings)) {
		// Something changed that the lines above do not account for: say
		// so, and let the person decide, even when every line above
		// narrows.
		out = append(out, Change{Text: "Other settings changed", Widens: true})
	}
	return out
}

// explained reports whether every difference between old and next lies in
// what diffEffective compares: the settings read the same once those parts
// are set aside. A part is set aside by clearing it, so a field added to
// Config or Server later counts as unexplained until Diff learns it (fail
// closed).
func explained(old, next *Config) bool {
	a, err1 := unexplained(old, next).Marshal()
	b, err2 := unexplained(next, old).Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// unexplained returns c without what diffEffective, comparing c with
// other, compares: the app-wide settings it lists, every server it lists as
// added or removed (no counterpart of the same kind in other), and, of a
// server it compares, all but its id and kind. What is left (the order of
// the servers compared, a second server of the same id, anything Diff does
// not know) must read the same on both sides once written.
func unexplained(c, other *Config) *Config {
	c, other = settingsOrDefaults(c), settingsOrDefaults(other)
	r := c.Clone()
	r.Port, r.ApprovalTimeout, r.AllowedOrigins, r.StartAtLogin, r.AuditRetentionDays = 0, 0, nil, false, 0
	r.Servers = r.Servers[:0]
	for _, s := range c.Servers {
		// diffEffective pairs a server with the first of the same id.
		i := slices.IndexFunc(other.Servers, func(o Server) bool { return o.ID == s.ID })
		if i < 0 || other.Servers[i].Kind != s.Kind {
			continue
		}
		s = s.clone()
		s.Name, s.Params, s.Transport, s.URL, s.Command, s.Args, s.Env = "", nil, "", "", "", nil, nil
		s.Allowlist, s.HiddenTools, s.AllowWrite = nil, nil, false
		r.Servers = append(r.Servers, s)
	}
	return r
}

func diffEffective(old, next *Effective) []Change {
	var d differ
	d.global(old, next)
	for _, os := range old.Servers {
		ns, ok := next.Server(os.Server.ID)
		if !ok || ns.Server.Kind != os.Server.Kind {
			d.add("", false, "Removed server %s", serverLabel(os.Server))
			continue
		}
		d.server(os, ns)
	}
	for _, ns := range next.Servers {
		os, ok := old.Server(ns.Server.ID)
		if !ok || os.Server.Kind != ns.Server.Kind {
			d.add(ns.Server.ID, true, "Added server %s (%s)", serverLabel(ns.Server), serverWhere(ns.Server))
		}
	}
	return d.out
}

type differ struct{ out []Change }

func (d *differ) add(server string, widens bool, format string, a ...any) {
	text := fmt.Sprintf(format, a...)
	text, _ = redact.Redact(text)
	d.out = append(d.out, Change{Server: server, Text: showable(text), Widens: widens})
}

// showable escapes every character of text the person would not see as
// itself (a line break that starts a made-up line, a bidirectional
// override that shows a command reversed), as Go writes it in a string.
func showable(text string) string {
	if !strings.ContainsFunc(text, hidden) {
		return text
	}
	var b strings.Builder
	for _, r := range text {
		if hidden(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hidden(r rune) bool { return r != ' ' && !unicode.IsGraphic(r) }

func (d *differ) global(old, next *Effective) {
	if o, n := old.ApprovalTimeout, next.ApprovalTimeout; o != n {
		d.add("", n > o, "Approval timeout changed from %s to %s", humanDuration(o), humanDuration(n))
	}
	if o, n := old.AuditRetentionDays, next.AuditRetentionDays; o != n {
		d.add("", n < o, "Audit records kept for %d days instead of %d", n, o)
	}
	if o, n := old.StartAtLogin, next.StartAtLogin; o != n {
		// Neither way reaches anything: while Countersign is not running,
		// AI apps' calls to it fail.
		d.add("", false, "Start at login turned %s", onOffWord(n))
	}
	os, ns := settingsOrDefaults(old.Settings), settingsOrDefaults(next.Settings)
	if os.Port != ns.Port {
		d.add("", true, "Port changed from %d to %d (applies when Countersign starts again)", os.Port, ns.Port)
	}
	added, removed := listDiff(os.AllowedOrigins, ns.AllowedOrigins)
	for _, o := range added {
		d.add("", true, "Browser origin allowed: %s", o)
	}
	for _, o := range removed {
		d.add("", false, "Browser origin no longer allowed: %s", o)
	}
	if old.ExportEndpoint != next.ExportEndpoint || !old.Policy.exportSettings().equal(next.Policy.exportSettings()) {
		d.add("", true, "Audit export changed")
	}
}

func (d *differ) server(o, n EffectiveServer) {
	id := n.Server.ID
	name := serverLabel(o.Server)
	if o.Server.Name != n.Server.Name {
		// A name is what the review window shows: another one could pass
		// a server off as a trusted one.
		d.add(id, true, "%s: name changed to %q", name, n.Server.DisplayName())
	}
	if o.Connect != n.Connect {
		if n.Connect {
			d.add(id, true, "%s: can connect now", name)
		} else {
			d.add(id, false, "%s: no longer connects", name)
		}
	}
	// Where the server is reached: any change widens.
	if o.Server.Transport != n.Server.Transport || o.Server.URL != n.Server.URL {
		d.add(id, true, "%s: address changed to %s", name, serverWhere(n.Server))
	} else if o.Server.Command != n.Server.Command || !slices.Equal(o.Server.Args, n.Server.Args) {
		d.add(id, true, "%s: command changed to %s", name, serverWhere(n.Server))
	}
	// An environment variable can change what the command runs
	// (NODE_OPTIONS=--require …): any change widens, shown with its value.
	for _, k := range changedKeys(o.Server.Env, n.Server.Env) {
		v, ok := n.Server.Env[k]
		switch {
		case !ok:
			d.add(id, true, "%s: environment %s removed", name, k)
		case v == "":
			d.add(id, true, "%s: environment %s set to an empty value", name, k)
		case secretEnv.MatchString(k) || credentialEnv.MatchString(k):
			// Its value may be a credential the detectors do not know
			// the shape of: never shown.
			d.add(id, true, "%s: environment %s set (its value is not shown)", name, k)
		default:
			d.add(id, true, "%s: environment %s set to %s", name, k, envValue(k, v))
		}
	}
	op, np := o.ParamValues(), n.ParamValues()
	for _, k := range changedKeys(op, np) {
		v, ok := np[k]
		if !ok {
			d.add(id, true, "%s: parameter %s removed", name, k)
			continue
		}
		d.add(id, true, "%s: parameter %s set to %q", name, k, v)
	}
	if o.ClientID != n.ClientID || o.Tenant != n.Tenant {
		d.add(id, true, "%s: sign-in settings changed", name)
	}
	if o.AllowWrite != n.AllowWrite {
		if n.AllowWrite {
			d.add(id, true, "%s: write tools turned on", name)
		} else {
			d.add(id, false, "%s: write tools turned off", name)
		}
	}
	oa, na := o.Patterns(), n.Patterns()
	for _, kind := range sortedKeys(mergeKeys(oa, na)) {
		added, removed := listDiff(oa[kind], na[kind])
		for _, p := range added {
			d.add(id, true, "%s: allowlist added %s", name, p)
		}
		for _, p := range removed {
			d.add(id, false, "%s: allowlist removed %s", name, p)
		}
	}
	added, removed := listDiff(o.HiddenToolNames(), n.HiddenToolNames())
	for _, t := range removed {
		d.add(id, true, "%s: %s is no longer hidden", name, t)
	}
	for _, t := range added {
		d.add(id, false, "%s: %s is now hidden", name, t)
	}
}

// credentialEnv matches environment variable names beyond secretEnv (which
// valid settings never hold) whose value may be a credential: a change
// shows that they were set, not their value.
var credentialEnv = regexp.MustCompile(`(?i)(key|auth|authorization|sig|signature|cookie|session|dsn|cert)($|_)`)

// envValue is an environment variable's value as a change may show it:
// redacted as a JSON member of that name, so that a name the redaction
// detectors take as secret-like hides a value they alone would not
// recognise. The change's text is then redacted and escaped as a whole
// (differ.add).
func envValue(name, value string) string {
	const unshowable = "a value that can't be shown"
	doc, err := json.Marshal(map[string]string{name: value})
	if err != nil {
		return unshowable
	}
	red, _, err := redact.RedactJSON(doc)
	if err != nil {
		return unshowable
	}
	var m map[string]string
	if err := json.Unmarshal(red, &m); err != nil || len(m) != 1 {
		return unshowable
	}
	for _, v := range m {
		return v
	}
	return unshowable
}

// serverLabel names a server as the person knows it: its name, or its id.
func serverLabel(s Server) string { return s.DisplayName() }

// serverWhere says how a server is reached, without anything that could be
// a credential: a URL loses user, query and fragment; a catalog server is
// named by its kind.
func serverWhere(s Server) string {
	switch {
	case s.Kind != "":
		return "from the catalog: " + s.Kind
	case s.Transport == TransportStdio:
		return "runs " + strings.Join(append([]string{s.Command}, s.Args...), " ")
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "an address that can't be read"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

func settingsOrDefaults(c *Config) *Config {
	if c == nil {
		return Defaults()
	}
	return c
}

// Equal reports whether two settings read the same once written (nil
// reads as the defaults).
func (c *Config) Equal(o *Config) bool { return sameSettings(c, o) }

// sameSettings reports whether two settings read the same once written.
func sameSettings(a, b *Config) bool {
	ab, err1 := settingsOrDefaults(a).Marshal()
	bb, err2 := settingsOrDefaults(b).Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

// listDiff returns what next has that old has not, and the reverse, in
// their own order.
func listDiff(old, next []string) (added, removed []string) {
	for _, v := range next {
		if !slices.Contains(old, v) && !slices.Contains(added, v) {
			added = append(added, v)
		}
	}
	for _, v := range old {
		if !slices.Contains(next, v) && !slices.Contains(removed, v) {
			removed = append(removed, v)
		}
	}
	return added, removed
}

// changedKeys returns the keys whose values differ, sorted.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k := range mergeKeys(a, b) {
		av, aok := a[k]
		bv, bok := b[k]
		if aok != bok || av != bv {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range maps.Keys(a) {
		out[k] = true
	}
	for k := range maps.Keys(b) {
		out[k] = true
	}
	return out
}

func onOffWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
