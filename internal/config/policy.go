package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/hostwait"
)

// PolicyVersion is the admin policy schema version this build reads.
const PolicyVersion = 1

// Policy is the machine-wide admin policy, delivered by device management
// to a file the person cannot edit. It can only narrow the person's
// settings, never widen them. A nil *Policy means there is no policy file.
type Policy struct {
	// Version must be PolicyVersion.
	Version int `json:"version"`
	// ApprovedServers lists the catalog server kinds that may be added and
	// connected. Absent: every catalog kind; empty: none.
	ApprovedServers *[]string `json:"approvedServers,omitempty"`
	// AllowCustomServers allows servers that are not in the catalog. With a
	// policy file it defaults to false.
	AllowCustomServers *bool `json:"allowCustomServers,omitempty"`
	// Servers holds rules per catalog server kind.
	Servers map[string]ServerPolicy `json:"servers,omitempty"`
	// HiddenTools are hidden on every server.
	HiddenTools []string `json:"hiddenTools,omitempty"`
	// MaxApprovalTimeout caps how long a call may wait for the person.
	MaxApprovalTimeout *Duration `json:"maxApprovalTimeout,omitempty"`
	// AIAppWaits says how long AI apps wait for a tool call's answer,
	// before Countersign's built-in figures (first match wins): Countersign
	// answers "call again" shortly before, so an approval is not lost.
	AIAppWaits []AIAppWait `json:"aiAppWaits,omitempty"`
	// MaxRetryWindow caps how long an approval given after the AI app
	// stopped waiting lets its identical call run (default 10 minutes).
	MaxRetryWindow *Duration `json:"maxRetryWindow,omitempty"`
	// Audit sets the audit retention and export.
	Audit AuditPolicy `json:"audit,omitzero"`
	// Limits changes what AI apps and servers can make Countersign hold.
	Limits LimitsPolicy `json:"limits,omitzero"`

	path string // where it was read from, for messages
}

// HostWait returns Countersign's table of how long AI apps wait, with the
// policy's figures first. A nil policy has none of its own.
func (p *Policy) HostWait() *hostwait.Table {
	t := hostwait.Default()
	if p == nil || len(p.AIAppWaits) == 0 {
		return t
	}
	var hosts []hostwait.Host
	for _, w := range p.AIAppWaits {
		d, _ := hostwait.ParseBudget(w.Wait) // checked by Validate
		hosts = append(hosts, hostwait.Host{Match: w.Match, Via: hostwait.Via(w.Via), Budget: d, Source: "your organisation's policy"})
	}
	return t.With(hosts)
}

// RetryWindow is how long an approval given after the AI app stopped
// waiting lets its identical call run: the policy's cap, or the default.
func (p *Policy) RetryWindow() time.Duration {
	if p == nil || p.MaxRetryWindow == nil {
		return DefaultRetryWindow
	}
	return time.Duration(*p.MaxRetryWindow)
}

// Path is where the policy was read from: a file path or a registry key
// ("" when parsed from bytes).
func (p *Policy) Path() string { return p.path }

// AIAppWait is how long AI apps whose name contains Match wait for a tool
// call's answer.
type AIAppWait struct {
	// Match is part of the AI app's name, as it gives it (any case).
	Match string `json:"match"`
	// Via is "bridge" (through countersign-bridge), "http", or empty for
	// either.
	Via string `json:"via,omitempty"`
	// Wait is a duration such as "60s", or "none" for an AI app that
	// waits until the person decides.
	Wait string `json:"wait"`
}

// ServerPolicy is the admin's rules for one catalog server kind.
type ServerPolicy struct {
	// ClientID is the pre-registered OAuth client id to sign in with.
	ClientID string `json:"clientId,omitempty"`
	// Tenant is the Microsoft Entra ID tenant (id or domain) to sign in to.
	Tenant string `json:"tenant,omitempty"`
	// Params are fixed catalog parameters (organisation, region, toolsets)
	// that override the person's.
	Params map[string]string `json:"params,omitempty"`
	// Allowlist entries, per target kind, are always present and cannot be
	// removed.
	Allowlist map[string][]string `json:"allowlist,omitempty"`
	// LockAllowlist stops the person adding allowlist entries of their own.
	LockAllowlist bool `json:"lockAllowlist,omitempty"`
	// HiddenTools are hidden on servers of this kind.
	HiddenTools []string `json:"hiddenTools,omitempty"`
	// ReadOnly stops the person opting in to write tools.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// AuditPolicy sets audit retention and where audit events are exported.
type AuditPolicy struct {
	// RetentionDays fixes the retention; it excludes the minimum and maximum.
	RetentionDays *int `json:"retentionDays,omitempty"`
	// MinRetentionDays and MaxRetentionDays bound the person's choice.
	MinRetentionDays *int `json:"minRetentionDays,omitempty"`
	MaxRetentionDays *int `json:"maxRetentionDays,omitempty"`
	// ExportEndpoint is an OTLP/HTTP logs URL: https, or http on loopback.
	// Every audit event is sent there as an OpenTelemetry log record.
	ExportEndpoint string `json:"exportEndpoint,omitempty"`
	// ExportHeaders are HTTP headers sent with every export request, by
	// name, with their values as written. Never put a secret here: use
	// ExportKeychainHeaders.
	ExportHeaders map[string]string `json:"exportHeaders,omitempty"`
	// ExportKeychainHeaders are HTTP headers whose values are secrets (an API
	// key, a bearer token): header name → the name of the secret in the OS
	// keychain that holds the value (service "Countersign", account
	// "secret/NAME", value "p:" and the header value in base64), put there
	// by the organisation's device management. The policy file never holds
	// the value.
	ExportKeychainHeaders map[string]string `json:"exportKeychainHeaders,omitempty"`
	// ExportCAFile is a PEM file of certificate authorities to trust for an
	// https endpoint, beside the system's. Certificates are always checked.
	ExportCAFile string `json:"exportCAFile,omitempty"`
	// ExportKinds lists the kinds of audit event to send (such as
	// "call_decided", "policy_denied"). Absent: every kind.
	ExportKinds []string `json:"exportKinds,omitempty"`
	// ExportArguments sends each call's arguments, in the redacted form the
	// audit log stores them; by default they stay on the machine.
	ExportArguments bool `json:"exportArguments,omitempty"`
}

// LimitsPolicy changes the bounds on what AI apps and servers can make
// Countersign hold. Unlike the rest of the policy, these may raise the
// built-in figure as well as lower it, within the bounds of PolicyIntRange:
// they bound resources, not what a person may allow, and the upper bounds
// keep memory and time within what a desktop app can hold. A field left
// out keeps the built-in figure.
type LimitsPolicy struct {
	// CallTimeoutMinutes is how long a request forwarded to a server may
	// go unanswered before the AI app gets an error and the server is told
	// to cancel it.
	CallTimeoutMinutes *int `json:"callTimeoutMinutes,omitempty"`
	// MaxRequestMB bounds one message from an AI app, in megabytes.
	MaxRequestMB *int `json:"maxRequestMB,omitempty"`
	// MaxServerAnswerMB bounds one message from a server, in megabytes.
	MaxServerAnswerMB *int `json:"maxServerAnswerMB,omitempty"`
	// MaxSessionsPerAIApp bounds the open sessions of one AI app.
	MaxSessionsPerAIApp *int `json:"maxSessionsPerAIApp,omitempty"`
}

// Bounds of the policy's limits; docs/ADMIN-POLICY.md says why.
const (
	// MaxCallTimeoutMinutes: a forwarded call holds a session, its
	// upstream connection and the call's memory for as long as it runs.
	MaxCallTimeoutMinutes = 120
	// MaxRequestMB: a tool call costs Countersign many times its size
	// while it is handled (parsed, reviewed, redacted, audited).
	MaxRequestMB = 32
	// MaxServerAnswerMB: an answer is read whole before it is redacted
	// and passed on.
	MaxServerAnswerMB = 64
	// MaxSessionsPerAIApp is the cap on every AI app's sessions together,
	// which one AI app cannot exceed.
	MaxSessionsPerAIApp = 256
)

// IntRange is the allowed values of a whole-number policy field, with
// the unit people read them in.
type IntRange struct {
	Min, Max int
	Unit     string
}

// PolicyIntRange gives the allowed values of each whole-number policy
// field, by its path in policy.json. The administrative template's number
// boxes use the same ranges.
var PolicyIntRange = map[string]IntRange{
	"audit.retentionDays":        {1, MaxAuditRetentionDays, "days"},
	"audit.minRetentionDays":     {1, MaxAuditRetentionDays, "days"},
	"audit.maxRetentionDays":     {1, MaxAuditRetentionDays, "days"},
	"limits.callTimeoutMinutes":  {1, MaxCallTimeoutMinutes, "minutes"},
	"limits.maxRequestMB":        {1, MaxRequestMB, "MB"},
	"limits.maxServerAnswerMB":   {1, MaxServerAnswerMB, "MB"},
	"limits.maxSessionsPerAIApp": {1, MaxSessionsPerAIApp, "sessions"},
}

func (l LimitsPolicy) validate(field string) error {
	for _, f := range []struct {
		name string
		v    *int
	}{{"callTimeoutMinutes", l.CallTimeoutMinutes}, {"maxRequestMB", l.MaxRequestMB}, {"maxServerAnswerMB", l.MaxServerAnswerMB}, {"maxSessionsPerAIApp", l.MaxSessionsPerAIApp}} {
		r := PolicyIntRange[field+"."+f.name]
		if f.v != nil && (*f.v < r.Min || *f.v > r.Max) {
			return fieldErr(field+"."+f.name, "%d is outside %d to %d %s", *f.v, r.Min, r.Max, r.Unit)
		}
	}
	return nil
}

// AuditEventKinds are the kinds of audit event ExportKinds may name.
var AuditEventKinds = []string{
	"call_submitted", "call_decided", "call_forwarded", "call_result", "policy_denied",
	"sign_in", "sign_out", "sign_in_failed", "settings_changed", "app_started",
	"app_stopped", "audit_pruned", "message_redacted",
}

// Approves reports whether the policy lets servers of the catalog kind be
// added and connected.
func (p *Policy) Approves(kind string) bool {
	if p == nil || p.ApprovedServers == nil {
		return true
	}
	return slices.Contains(*p.ApprovedServers, kind)
}

// CustomAllowed reports whether servers outside the catalog are allowed: yes
// without a policy file, no by default with one.
func (p *Policy) CustomAllowed() bool {
	if p == nil {
		return true
	}
	return p.AllowCustomServers != nil && *p.AllowCustomServers
}

// PolicyError says that the policy file exists but cannot be used. The app
// must then connect no server (fail closed) and show this message.
type PolicyError struct {
	Path string
	// Unreadable is set when the file could not be read at all.
	Unreadable bool
	Err        error
}

// Error names the file and the problem, with its line where known.
func (e *PolicyError) Error() string {
	where := "the organisation policy"
	if e.Path != "" {
		where += " at " + e.Path
	}
	if e.Unreadable {
		return fmt.Sprintf("%s cannot be read: %v", where, e.Err)
	}
	return fmt.Sprintf("%s is invalid: %v", where, e.Err)
}

// Unwrap returns the underlying problem.
func (e *PolicyError) Unwrap() error { return e.Err }

// AdminPolicyPath is where device management puts the policy on this OS:
// /etc/countersign/policy.json on Linux (and other Unix),
// %ProgramData%\Countersign\policy.json on Windows and
// /Library/Application Support/Countersign/policy.json on macOS. No
// environment variable or flag can move it; tests pass their own path.
func AdminPolicyPath() string { return policyPathFor(runtime.GOOS, programData()) }

func policyPathFor(goos, programData string) string {
	switch goos {
	case "windows":
		return programData + `\Countersign\policy.json`
	case "darwin":
		return "/Library/Application Support/Countersign/policy.json"
	default:
		return "/etc/countersign/policy.json"
	}
}

// LoadPolicy reads the policy file. A missing file is no policy: (nil, nil).
// Any other problem is a *PolicyError, on which the app fails closed. On
// Unix a file that other users could change is refused.
func LoadPolicy(path string) (*Policy, error) {
	return LoadAdminPolicy([]PolicySource{FilePolicySource(path)})
}

func readFileMode(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, fmt.Errorf("%s is a directory", filepath.Base(path))
	}
	b, err := readAllLimited(f, path)
	return b, fi.Mode(), err
}

// ParsePolicy reads and validates a policy (without Checks). Errors name the
// field path and line.
func ParsePolicy(b []byte) (*Policy, error) {
	b = trimBOM(b)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err == nil {
		raw, ok := probe["version"]
		if !ok {
			return nil, &FieldError{Line: 1, Path: "version", Msg: fmt.Sprintf("missing: this Countersign reads policy version %d", PolicyVersion)}
		}
		if v, err := strconv.Atoi(string(raw)); err == nil && v != PolicyVersion {
			s := newSchema(b)
			// Only the version's line is wanted; a newer file may have
			// fields this version does not know, so the walk's own error
			// is not the one to report.
			_ = s.check(reflect.TypeFor[Policy](), "policy")
			return nil, s.locate(fieldErr("version", "policy version %d is not one this Countersign reads (%d); update Countersign", v, PolicyVersion))
		}
	}
	p := &Policy{}
	s, err := decodeStrict(b, p, "policy", nil)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, s.locate(err)
	}
	return p, nil
}

// Validate checks every field of the policy and names the first bad one.
func (p *Policy) Validate() error {
	if p.Version != PolicyVersion {
		return fieldErr("version", "%d is not policy version %d", p.Version, PolicyVersion)
	}
	if p.ApprovedServers != nil {
		seen := map[string]bool{}
		for i, k := range *p.ApprovedServers {
			f := fmt.Sprintf("approvedServers[%d]", i)
			if !idPattern.MatchString(k) {
				return fieldErr(f, "%q is not a catalog server id", k)
			}
			if seen[k] {
				return fieldErr(f, "%q is listed twice", k)
			}
			seen[k] = true
		}
	}
	for _, kind := range sortedKeys(p.Servers) {
		f := mapKeyPath("servers", kind)
		if !idPattern.MatchString(kind) {
			return fieldErr(f, "%q is not a catalog server id", kind)
		}
		if !p.Approves(kind) {
			return fieldErr(f, "%s is not in approvedServers, so rules for it have no effect", kind)
		}
		if err := p.Servers[kind].validate(f); err != nil {
			return err
		}
	}
	if err := validatePatterns("hiddenTools", p.HiddenTools, maxToolLen); err != nil {
		return err
	}
	if d := p.MaxApprovalTimeout; d != nil {
		if t := time.Duration(*d); t < MinApprovalTimeout || t > MaxApprovalTimeout {
			return fieldErr("maxApprovalTimeout", "%v is outside 10s to 24h", t)
		}
	}
	for i, w := range p.AIAppWaits {
		f := fmt.Sprintf("aiAppWaits[%d]", i)
		if strings.TrimSpace(w.Match) == "" || len(w.Match) > 200 {
			return fieldErr(f+".match", "want part of an AI app's name, up to 200 characters")
		}
		if w.Via != "" && w.Via != string(hostwait.ViaBridge) && w.Via != string(hostwait.ViaHTTP) {
			return fieldErr(f+".via", "%q is not bridge, http or empty", w.Via)
		}
		if _, err := hostwait.ParseBudget(w.Wait); err != nil {
			return fieldErr(f+".wait", "%v", err)
		}
	}
	if d := p.MaxRetryWindow; d != nil {
		if t := time.Duration(*d); t < time.Second || t > DefaultRetryWindow {
			return fieldErr("maxRetryWindow", "%v is outside 1s to %v", t, DefaultRetryWindow)
		}
	}
	if err := p.Audit.validate("audit"); err != nil {
		return err
	}
	return p.Limits.validate("limits")
}

func (sp ServerPolicy) validate(field string) error {
	if sp.ClientID != "" && (len(sp.ClientID) > 256 || hasSpaceOrControl(sp.ClientID)) {
		return fieldErr(field+".clientId", "want up to 256 characters without spaces")
	}
	if sp.Tenant != "" && (len(sp.Tenant) > 256 || hasSpaceOrControl(sp.Tenant)) {
		return fieldErr(field+".tenant", "want up to 256 characters without spaces")
	}
	if err := validateParams(field+".params", sp.Params, "readOnly"); err != nil {
		return err
	}
	if err := validateAllowlist(field+".allowlist", sp.Allowlist); err != nil {
		return err
	}
	return validatePatterns(field+".hiddenTools", sp.HiddenTools, maxToolLen)
}

func (a AuditPolicy) validate(field string) error {
	for _, d := range []struct {
		name string
		v    *int
	}{{"retentionDays", a.RetentionDays}, {"minRetentionDays", a.MinRetentionDays}, {"maxRetentionDays", a.MaxRetentionDays}} {
		if d.v != nil && (*d.v < 1 || *d.v > MaxAuditRetentionDays) {
			return fieldErr(field+"."+d.name, "%d is outside 1 to %d days", *d.v, MaxAuditRetentionDays)
		}
	}
	if a.RetentionDays != nil && (a.MinRetentionDays != nil || a.MaxRetentionDays != nil) {
		return fieldErr(field+".retentionDays", "fixes the retention: leave out minRetentionDays and maxRetentionDays")
	}
	if a.MinRetentionDays != nil && a.MaxRetentionDays != nil && *a.MinRetentionDays > *a.MaxRetentionDays {
		return fieldErr(field+".minRetentionDays", "%d is more than maxRetentionDays %d", *a.MinRetentionDays, *a.MaxRetentionDays)
	}
	if a.ExportEndpoint != "" {
		if err := checkExportEndpoint(a.ExportEndpoint); err != nil {
			return fieldErr(field+".exportEndpoint", "%v", err)
		}
	} else if len(a.ExportHeaders) > 0 || len(a.ExportKeychainHeaders) > 0 || a.ExportCAFile != "" || len(a.ExportKinds) > 0 || a.ExportArguments {
		return fieldErr(field+".exportEndpoint", "is needed by the other export settings")
	}
	for name, value := range a.ExportHeaders {
		if !validHeaderName(name) {
			return fieldErr(field+".exportHeaders", "%q is not an HTTP header name", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fieldErr(field+".exportHeaders."+name, "the value holds a line break")
		}
	}
	for name, secret := range a.ExportKeychainHeaders {
		if !validHeaderName(name) {
			return fieldErr(field+".exportKeychainHeaders", "%q is not an HTTP header name", name)
		}
		if _, ok := a.ExportHeaders[name]; ok {
			return fieldErr(field+".exportKeychainHeaders", "%q is also in exportHeaders", name)
		}
		if secret == "" || len(secret) > 200 || strings.ContainsFunc(secret, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fieldErr(field+".exportKeychainHeaders."+name, "%q is not a keychain secret name", secret)
		}
	}
	if a.ExportCAFile != "" && !filepath.IsAbs(a.ExportCAFile) {
		return fieldErr(field+".exportCAFile", "%q is not an absolute path", a.ExportCAFile)
	}
	for _, k := range a.ExportKinds {
		if !slices.Contains(AuditEventKinds, k) {
			return fieldErr(field+".exportKinds", "%q is not a kind of audit event (%s)", k, strings.Join(AuditEventKinds, ", "))
		}
	}
	return nil
}

// exportSettings is the policy's audit export settings, retention left
// out; a nil policy has none.
func (p *Policy) exportSettings() AuditPolicy {
	if p == nil {
		return AuditPolicy{}
	}
	a := p.Audit
	a.RetentionDays, a.MinRetentionDays, a.MaxRetentionDays = nil, nil, nil
	return a
}

func (a AuditPolicy) equal(b AuditPolicy) bool { return reflect.DeepEqual(a, b) }

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// checkExportEndpoint accepts https URLs, and http only on loopback.
func checkExportEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.User != nil {
		return errors.New("must not hold a user name or password")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not have a #fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only to this machine (127.0.0.1, ::1, localhost); use https", s)
	}
	return fmt.Errorf("%q: want an https URL", s)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check validates the policy (Validate) and then its catalog kinds,
// parameters and allowlist patterns with the given checks.
func (p *Policy) Check(ch Checks) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.ApprovedServers != nil && ch.Kind != nil {
		for i, k := range *p.ApprovedServers {
			if err := ch.Kind(k); err != nil {
				return fieldErr(fmt.Sprintf("approvedServers[%d]", i), "%v", err)
			}
		}
	}
	for _, kind := range sortedKeys(p.Servers) {
		f := mapKeyPath("servers", kind)
		sp := p.Servers[kind]
		if ch.Kind != nil {
			if err := ch.Kind(kind); err != nil {
				return fieldErr(f, "%v", err)
			}
		}
		if ch.Param != nil {
			for _, k := range sortedKeys(sp.Params) {
				if err := ch.Param(kind, k, sp.Params[k]); err != nil {
					return fieldErr(mapKeyPath(f+".params", k), "%v", err)
				}
			}
		}
		if err := checkAllowlist(f+".allowlist", kind, sp.Allowlist, ch); err != nil {
			return err
		}
		if err := checkTools(f+".hiddenTools", sp.HiddenTools, ch); err != nil {
			return err
		}
	}
	return checkTools("hiddenTools", p.HiddenTools, ch)
}
