package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// WhyPolicy is shown next to anything the admin policy sets.
const WhyPolicy = "Set by your organisation's policy"

// Lock says whether the person can change something, and why not.
type Lock struct {
	Locked bool
	// Why is the sentence the UI shows next to a locked setting.
	Why string
}

// Entry is one value in the effective settings, marked when the admin policy
// set it (the person cannot remove or change it).
type Entry struct {
	Value string
	Lock
}

// Effective is the person's settings narrowed by the admin policy: what the
// app runs with and what the settings window shows. It is computed by
// Resolve or FailClosed and is read-only once made.
type Effective struct {
	// Settings are the person's settings this was computed from.
	Settings *Config
	// Policy is the admin policy applied, nil when there is none (or when
	// it is unusable, see Err).
	Policy *Policy
	// Err is set when the admin policy exists but cannot be used: no server
	// may connect, and the app says so with this error.
	Err error
	// SettingsErr is set when the settings file is invalid; Settings are
	// then the last good settings read (or the defaults).
	SettingsErr error

	ApprovalTimeout time.Duration
	// MaxApprovalTimeout is the longest timeout the person may choose.
	MaxApprovalTimeout time.Duration
	// ApprovalTimeoutWhy explains a cap set by the policy ("" when none).
	ApprovalTimeoutWhy string

	AuditRetentionDays int
	// MinAuditRetentionDays and MaxAuditRetentionDays bound the person's
	// choice; they are equal when the policy fixes the retention.
	MinAuditRetentionDays, MaxAuditRetentionDays int
	// AuditRetentionWhy explains bounds set by the policy ("" when none).
	AuditRetentionWhy string

	// ExportEndpoint is where audit events are sent as OTLP logs, set only
	// by the policy ("" for none).
	ExportEndpoint string
	StartAtLogin   bool
	// Servers are in the order of Settings.Servers.
	Servers []EffectiveServer
}

// EffectiveServer is one of the person's servers with the policy applied.
type EffectiveServer struct {
	// Server is the person's entry as written.
	Server Server
	// Connect reports whether the server may be connected; Why says why
	// not.
	Connect bool
	Why     string
	// Params are the catalog parameters to connect with; those the policy
	// fixes are locked.
	Params map[string]Entry
	// ClientID and Tenant are the OAuth client id and Entra ID tenant the
	// policy set ("" for none).
	ClientID, Tenant string
	// Allowlist is what calls may touch, per target kind: the policy's
	// entries (locked) first, then the person's.
	Allowlist map[string][]Entry
	// AllowlistLock is locked when the person cannot add entries.
	AllowlistLock Lock
	// Dropped are the person's allowlist entries the policy does not
	// apply, per target kind, each with the reason.
	Dropped map[string][]Entry
	// HiddenTools are the policy's (locked) and the person's hidden tools.
	HiddenTools []Entry
	// AllowWrite reports whether write tools are on; AllowWriteLock is
	// locked when the policy keeps the server read-only.
	AllowWrite     bool
	AllowWriteLock Lock
}

// ParamValues returns the effective parameters as a plain map. The catalog's
// "write" parameter is not among them: set it from AllowWrite.
func (s EffectiveServer) ParamValues() map[string]string {
	m := make(map[string]string, len(s.Params))
	for k, e := range s.Params {
		m[k] = e.Value
	}
	return m
}

// Patterns returns the effective allowlist entries per target kind, the
// shape the policy engine takes.
func (s EffectiveServer) Patterns() map[string][]string {
	m := make(map[string][]string, len(s.Allowlist))
	for k, es := range s.Allowlist {
		m[k] = values(es)
	}
	return m
}

// HiddenToolNames returns the effective hidden tool names and globs.
func (s EffectiveServer) HiddenToolNames() []string { return values(s.HiddenTools) }

func values(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Value
	}
	return out
}

// Server returns the effective settings of the server with the given id.
func (e *Effective) Server(id string) (EffectiveServer, bool) {
	for _, s := range e.Servers {
		if s.Server.ID == id {
			return s, true
		}
	}
	return EffectiveServer{}, false
}

// Resolve computes the effective settings: the person's settings narrowed by
// the admin policy (nil for none). The policy is checked first, with ch; if
// it is invalid the result fails closed, as from FailClosed. A server whose
// own settings fail ch is not connectable, and says why.
func Resolve(user *Config, admin *Policy, ch Checks) *Effective {
	if user == nil {
		user = Defaults()
	}
	if admin != nil {
		if err := admin.Check(ch); err != nil {
			return FailClosed(user, &PolicyError{Path: admin.path, Err: err})
		}
	}
	e := &Effective{
		Settings:     user,
		Policy:       admin,
		StartAtLogin: user.StartAtLogin,
	}
	e.resolveTimeout(user, admin)
	e.resolveRetention(user, admin)
	if admin != nil {
		e.ExportEndpoint = admin.Audit.ExportEndpoint
	}
	for i, s := range user.Servers {
		e.Servers = append(e.Servers, resolveServer(i, s, admin, ch))
	}
	return e
}

func (e *Effective) resolveTimeout(user *Config, admin *Policy) {
	e.ApprovalTimeout = time.Duration(user.ApprovalTimeout)
	e.MaxApprovalTimeout = MaxApprovalTimeout
	if admin != nil && admin.MaxApprovalTimeout != nil {
		e.MaxApprovalTimeout = time.Duration(*admin.MaxApprovalTimeout)
		e.ApprovalTimeoutWhy = "Your organisation's policy allows at most " + humanDuration(e.MaxApprovalTimeout)
		e.ApprovalTimeout = min(e.ApprovalTimeout, e.MaxApprovalTimeout)
	}
}

func (e *Effective) resolveRetention(user *Config, admin *Policy) {
	lo, hi := 1, MaxAuditRetentionDays
	if admin != nil {
		a := admin.Audit
		switch {
		case a.RetentionDays != nil:
			lo, hi = *a.RetentionDays, *a.RetentionDays
			e.AuditRetentionWhy = WhyPolicy
		case a.MinRetentionDays != nil && a.MaxRetentionDays != nil:
			lo, hi = *a.MinRetentionDays, *a.MaxRetentionDays
			e.AuditRetentionWhy = fmt.Sprintf("Your organisation's policy keeps audit records for %d to %d days", lo, hi)
		case a.MinRetentionDays != nil:
			lo = *a.MinRetentionDays
			e.AuditRetentionWhy = fmt.Sprintf("Your organisation's policy keeps audit records for at least %d days", lo)
		case a.MaxRetentionDays != nil:
			hi = *a.MaxRetentionDays
			e.AuditRetentionWhy = fmt.Sprintf("Your organisation's policy keeps audit records for at most %d days", hi)
		}
	}
	e.MinAuditRetentionDays, e.MaxAuditRetentionDays = lo, hi
	e.AuditRetentionDays = min(max(user.AuditRetentionDays, lo), hi)
}

// rules returns the policy's rules for a catalog kind (none for custom
// servers or without a policy).
func (p *Policy) rules(kind string) ServerPolicy {
	if p == nil || kind == "" {
		return ServerPolicy{}
	}
	return p.Servers[kind]
}

func resolveServer(i int, s Server, admin *Policy, ch Checks) EffectiveServer {
	rules := admin.rules(s.Kind)
	locked := Lock{Locked: true, Why: WhyPolicy}
	es := EffectiveServer{Server: s.clone(), Connect: true, ClientID: rules.ClientID, Tenant: rules.Tenant}

	es.Params = make(map[string]Entry, len(s.Params)+len(rules.Params))
	for k, v := range s.Params {
		es.Params[k] = Entry{Value: v}
	}
	for k, v := range rules.Params {
		es.Params[k] = Entry{Value: v, Lock: locked}
	}

	es.Allowlist = map[string][]Entry{}
	for target, list := range rules.Allowlist {
		for _, p := range list {
			es.Allowlist[target] = append(es.Allowlist[target], Entry{Value: p, Lock: locked})
		}
	}
	if rules.LockAllowlist {
		es.AllowlistLock = Lock{Locked: true, Why: "Your organisation's policy sets this list"}
	}
	for target, list := range s.Allowlist {
		for _, p := range list {
			switch {
			case slices.Contains(rules.Allowlist[target], p):
			case rules.LockAllowlist:
				if es.Dropped == nil {
					es.Dropped = map[string][]Entry{}
				}
				es.Dropped[target] = append(es.Dropped[target], Entry{Value: p, Lock: Lock{Locked: true, Why: "Not applied: your organisation's policy sets this list"}})
			default:
				es.Allowlist[target] = append(es.Allowlist[target], Entry{Value: p})
			}
		}
	}

	var policyTools []string
	if admin != nil {
		policyTools = append(slices.Clone(admin.HiddenTools), rules.HiddenTools...)
	}
	for _, t := range policyTools {
		if !slices.ContainsFunc(es.HiddenTools, func(e Entry) bool { return e.Value == t }) {
			es.HiddenTools = append(es.HiddenTools, Entry{Value: t, Lock: locked})
		}
	}
	for _, t := range s.HiddenTools {
		if !slices.Contains(policyTools, t) {
			es.HiddenTools = append(es.HiddenTools, Entry{Value: t})
		}
	}

	es.AllowWrite = s.AllowWrite && !rules.ReadOnly
	if rules.ReadOnly {
		es.AllowWriteLock = Lock{Locked: true, Why: "Your organisation's policy keeps this server read-only"}
	}

	field := fmt.Sprintf("servers[%d]", i)
	switch {
	case s.Kind == "" && !admin.CustomAllowed():
		es.Connect, es.Why = false, whyNoCustom
	case s.Kind != "" && !admin.Approves(s.Kind):
		es.Connect, es.Why = false, whyNotApproved(s.Kind)
	default:
		if err := s.check(field, ch); err != nil {
			es.Connect, es.Why = false, "This server's settings are invalid: "+err.Error()
		} else if s.Kind != "" && ch.Params != nil {
			if err := ch.Params(s.Kind, es.ParamValues()); err != nil {
				es.Connect, es.Why = false, upperFirst(err.Error())
			}
		}
	}
	return es
}

const whyNoCustom = "Your organisation's policy allows only approved servers from the catalog"

func whyNotApproved(kind string) string {
	return fmt.Sprintf("Your organisation's policy does not approve %s servers", kind)
}

// FailClosed is the effective settings when the admin policy exists but
// cannot be used (err): no server may connect, each saying why; nothing
// the person adds is accepted (see CheckEdit); and no audit record is
// removed, since the required retention is unknown.
func FailClosed(user *Config, err error) *Effective {
	if user == nil {
		user = Defaults()
	}
	why := "Countersign can't connect servers: " + err.Error()
	e := &Effective{
		Settings:              user,
		Err:                   err,
		StartAtLogin:          user.StartAtLogin,
		ApprovalTimeout:       time.Duration(user.ApprovalTimeout),
		MaxApprovalTimeout:    MaxApprovalTimeout,
		AuditRetentionDays:    MaxAuditRetentionDays,
		MinAuditRetentionDays: MaxAuditRetentionDays,
		MaxAuditRetentionDays: MaxAuditRetentionDays,
		AuditRetentionWhy:     "No audit records are removed until the organisation policy can be read",
	}
	lock := Lock{Locked: true, Why: "Locked until your organisation's policy can be read"}
	for _, s := range user.Servers {
		es := EffectiveServer{Server: s.clone(), Why: why, AllowlistLock: lock, AllowWriteLock: lock}
		es.Params = make(map[string]Entry, len(s.Params))
		for k, v := range s.Params {
			es.Params[k] = Entry{Value: v}
		}
		es.Allowlist = make(map[string][]Entry, len(s.Allowlist))
		for target, list := range s.Allowlist {
			for _, p := range list {
				es.Allowlist[target] = append(es.Allowlist[target], Entry{Value: p})
			}
		}
		for _, t := range s.HiddenTools {
			es.HiddenTools = append(es.HiddenTools, Entry{Value: t})
		}
		e.Servers = append(e.Servers, es)
	}
	return e
}

// CanAdd reports whether the person may add a server of the catalog kind
// ("" for a custom server), and if not, why.
func (e *Effective) CanAdd(kind string) (bool, string) {
	switch {
	case e.Err != nil:
		return false, "Countersign can't add servers: " + e.Err.Error()
	case kind == "" && !e.Policy.CustomAllowed():
		return false, whyNoCustom
	case kind != "" && !e.Policy.Approves(kind):
		return false, whyNotApproved(kind)
	}
	return true, ""
}

// CheckEdit refuses an edit of the settings (old → next) that the admin
// policy does not allow: adding a server it does not approve, adding
// allowlist entries to a list it sets, changing a parameter it fixes,
// opting in to write on a server it keeps read-only, or choosing a timeout
// or retention outside its bounds. What was already in old is left alone,
// so a stricter policy never makes the file unsaveable. While the policy is
// unusable (Err), nothing that widens access is accepted.
func (e *Effective) CheckEdit(old, next *Config) error {
	for i, s := range next.Servers {
		field := fmt.Sprintf("servers[%d]", i)
		prev, existed := old.Server(s.ID)
		if existed && prev.Kind != s.Kind {
			existed, prev = false, Server{}
		}
		if !existed {
			if ok, why := e.CanAdd(s.Kind); !ok {
				return fieldErr(field, "%s", lowerFirst(why))
			}
		}
		rules := e.Policy.rules(s.Kind)
		if e.Err != nil {
			rules = ServerPolicy{LockAllowlist: true, ReadOnly: true}
		}
		if rules.LockAllowlist {
			for _, target := range sortedKeys(s.Allowlist) {
				for j, p := range s.Allowlist[target] {
					if !slices.Contains(prev.Allowlist[target], p) && !slices.Contains(rules.Allowlist[target], p) {
						return fieldErr(fmt.Sprintf("%s[%d]", mapKeyPath(field+".allowlist", target), j), "%q can't be added: %s", p, e.allowlistWhy())
					}
				}
			}
		}
		for _, k := range sortedKeys(s.Params) {
			fixed, ok := rules.Params[k]
			if ok && s.Params[k] != fixed && prev.Params[k] != s.Params[k] {
				return fieldErr(mapKeyPath(field+".params", k), "your organisation's policy sets this to %q", fixed)
			}
		}
		if s.AllowWrite && !prev.AllowWrite && rules.ReadOnly {
			return fieldErr(field+".allowWrite", "%s", e.readOnlyWhy())
		}
	}
	if t := time.Duration(next.ApprovalTimeout); t != time.Duration(old.ApprovalTimeout) && t > e.MaxApprovalTimeout {
		return fieldErr("approvalTimeout", "%s", lowerFirst(e.ApprovalTimeoutWhy))
	}
	if d := next.AuditRetentionDays; d != old.AuditRetentionDays && e.Err == nil && (d < e.MinAuditRetentionDays || d > e.MaxAuditRetentionDays) {
		return fieldErr("auditRetentionDays", "%d days: %s", d, lowerFirst(e.AuditRetentionWhy))
	}
	return nil
}

func (e *Effective) allowlistWhy() string {
	if e.Err != nil {
		return "the organisation policy can't be read"
	}
	return "your organisation's policy sets this list"
}

func (e *Effective) readOnlyWhy() string {
	if e.Err != nil {
		return "write tools can't be turned on while the organisation policy can't be read"
	}
	return "your organisation's policy keeps this server read-only"
}

// humanDuration writes a duration for people: "10 minutes", "1 hour 30 minutes".
func humanDuration(d time.Duration) string {
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		n := d / u.d
		d -= n * u.d
		switch {
		case n == 1:
			parts = append(parts, "1 "+u.name)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, u.name))
		}
	}
	if len(parts) == 0 {
		return "0 seconds"
	}
	return strings.Join(parts, " ")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
