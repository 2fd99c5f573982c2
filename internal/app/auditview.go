package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/config"
)

// maxToolChoices caps the tool names the viewer's filter offers; the
// search box finds the rest.
const maxToolChoices = 500

// AuditView is the audit viewer's source: the stored, tamper-evident audit
// log, read in the words the person knows (server names from the current
// settings, outcomes and kinds of event in plain words). It only reads, on
// the viewer's goroutines, never on a call's path.
type AuditView struct {
	log     *audit.Log
	path    string                   // the log's file, to say where events are kept
	current func() *config.Effective // the settings in force, for server names and retention
	// anchor reads the head recorded outside the database (the keychain);
	// nil when there is none to read.
	anchor func() (h audit.Head, found bool, err error)
}

// newAuditView reads l, stored at path; current returns the settings in
// force.
func newAuditView(l *audit.Log, path string, current func() *config.Effective) *AuditView {
	return &AuditView{log: l, path: path, current: current}
}

// outcomeWords are the viewer's words for the outcomes the log stores.
var outcomeWords = []struct {
	o    audit.Outcome
	word string
}{
	{audit.OutcomeApproved, "approved"},
	{audit.OutcomeDenied, "denied"},
	{audit.OutcomeTimedOut, "timed out"},
	{audit.OutcomeCancelled, "cancelled by the AI app"},
	{audit.OutcomeDisconnected, "AI app disconnected"},
	{audit.OutcomeUpstreamLost, "server connection lost"},
	{audit.OutcomeShutDown, "Countersign shut down"},
	{audit.OutcomePaused, "paused"},
	{audit.OutcomeAskAgain, "AI app told to call again"},
	{audit.OutcomeInterrupted, "interrupted: Countersign stopped"},
	{audit.OutcomeNotSent, "not sent to the server"},
	{audit.OutcomeNotDelivered, "not delivered: the AI app had gone"},
}

// outcomeWord is how an outcome reads; one the app does not know yet is
// shown as stored, with spaces for underscores.
func outcomeWord(o audit.Outcome) string {
	for _, w := range outcomeWords {
		if w.o == o {
			return w.word
		}
	}
	return strings.ReplaceAll(string(o), "_", " ")
}

// storedOutcome is the stored form of an outcome word; words it does not
// know are taken as stored outcomes.
func storedOutcome(word string) audit.Outcome {
	for _, w := range outcomeWords {
		if w.word == word {
			return w.o
		}
	}
	return audit.Outcome(word)
}

// kindWords are the viewer's words for each kind of event.
var kindWords = map[audit.Kind]string{
	audit.KindCallSubmitted:   "Asked",
	audit.KindCallDecided:     "Decided",
	audit.KindCallForwarded:   "Sent to server",
	audit.KindCallResult:      "Result",
	audit.KindPolicyDenied:    "Blocked by policy",
	audit.KindSignIn:          "Signed in",
	audit.KindSignOut:         "Signed out",
	audit.KindSignInFailed:    "Sign-in failed",
	audit.KindSettingsChanged: "Settings changed",
	audit.KindAppStarted:      "Countersign started",
	audit.KindAppStopped:      "Countersign stopped",
	audit.KindPruned:          "Old events removed",
	audit.KindMessageRedacted: "Secrets removed",
}

var actorWords = map[audit.Actor]string{
	audit.ActorPerson:  "person",
	audit.ActorTimeout: "timeout",
	audit.ActorPolicy:  "policy",
	audit.ActorApp:     "Countersign",
	audit.ActorFile:    "settings file",
}

// kinds is the log's filter for an event set; nil selects every kind.
func (s EventSet) kinds() []audit.Kind {
	switch s {
	case Decisions:
		return []audit.Kind{audit.KindCallDecided, audit.KindPolicyDenied}
	case CallSteps:
		return []audit.Kind{audit.KindCallSubmitted, audit.KindCallDecided, audit.KindCallForwarded,
			audit.KindCallResult, audit.KindPolicyDenied, audit.KindMessageRedacted}
	case AppEvents:
		return []audit.Kind{audit.KindSignIn, audit.KindSignOut, audit.KindSignInFailed,
			audit.KindSettingsChanged, audit.KindAppStarted, audit.KindAppStopped, audit.KindPruned}
	}
	return nil
}

// filter is the log's filter for f.
func (f AuditFilter) filter() audit.Filter {
	af := audit.Filter{Server: f.Server, Tool: f.Tool, Kinds: f.Events.kinds(),
		Since: f.From, Until: f.To, Text: f.Text}
	if f.Outcome != "" {
		af.Outcome = storedOutcome(f.Outcome)
	}
	return af
}

// Info says where events are kept and lists the servers, tools and
// outcomes the filters offer.
func (v *AuditView) Info(ctx context.Context) (AuditInfo, error) {
	eff := v.current()
	servers, _, err := v.log.Distinct(ctx, audit.ColumnServer, 0)
	if err != nil {
		return AuditInfo{}, err
	}
	tools, _, err := v.log.Distinct(ctx, audit.ColumnTool, maxToolChoices)
	if err != nil {
		return AuditInfo{}, err
	}
	names := serverNames(eff)
	ids := slices.Clone(servers)
	for id := range names {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	info := AuditInfo{Tools: tools}
	for _, id := range slices.Compact(ids) {
		info.Servers = append(info.Servers, AuditServer{ID: id, Name: serverName(names, id)})
	}
	for _, w := range outcomeWords {
		info.Outcomes = append(info.Outcomes, w.word)
	}
	kept := "Events are kept until removed by hand"
	if eff != nil && eff.AuditRetentionDays > 0 {
		kept = fmt.Sprintf("Events are kept for %d days", eff.AuditRetentionDays)
	}
	info.Store = fmt.Sprintf("%s in %s, each chained to the one before it so that a change shows: Verify integrity checks them. Arguments are stored with secrets removed.",
		kept, v.path)
	return info, nil
}

// Query returns up to limit events f selects with ids below before (0 for
// the newest), newest first.
func (v *AuditView) Query(ctx context.Context, f AuditFilter, before int64, limit int) (AuditPage, error) {
	if before < 0 {
		return AuditPage{}, fmt.Errorf("querying the audit log: bad page start %d", before)
	}
	p, err := v.log.Query(ctx, f.filter(), before, limit)
	if err != nil {
		return AuditPage{}, err
	}
	names := serverNames(v.current())
	out := AuditPage{More: p.More, Next: p.Next, Events: make([]AuditEvent, 0, len(p.Records))}
	for _, r := range p.Records {
		e := viewEvent(r, names)
		if e.Waited, err = v.waited(ctx, r); err != nil {
			return AuditPage{}, err
		}
		out.Events = append(out.Events, e)
	}
	return out, nil
}

// waited is how long a decided call waited: from its call_submitted event
// (the newest one of the same call before the decision) to the decision.
func (v *AuditView) waited(ctx context.Context, r audit.Record) (time.Duration, error) {
	if r.Kind != audit.KindCallDecided || r.CallID == "" {
		return 0, nil
	}
	p, err := v.log.Query(ctx, audit.Filter{CallID: r.CallID, Server: r.Server, Kinds: []audit.Kind{audit.KindCallSubmitted}}, r.ID, 1)
	if err != nil || len(p.Records) == 0 {
		return 0, err
	}
	return r.Time.Sub(p.Records[0].Time), nil
}

// Export writes every event f selects, oldest first, to w with every stored
// column and the hash chain, and returns how many it wrote. A JSON Lines
// export can be checked with audit.CheckExport.
func (v *AuditView) Export(ctx context.Context, f AuditFilter, format ExportFormat, w io.Writer) (int64, error) {
	var af audit.Format
	switch format {
	case ExportCSV:
		af = audit.FormatCSV
	case ExportJSONL:
		af = audit.FormatJSONL
	default:
		return 0, fmt.Errorf("exporting the audit log: unknown format %q", format)
	}
	return v.log.Export(ctx, w, f.filter(), af)
}

// Verify walks the stored log's hash chain and says what it found.
func (v *AuditView) Verify(ctx context.Context) (Integrity, error) {
	var head audit.Head
	anchor := ""
	if v.anchor != nil {
		h, found, err := v.anchor()
		switch {
		case err != nil:
			anchor = "The copy of the log's end kept in the keychain could not be read, so events removed from the end of the log would not show: " + err.Error()
		case !found:
			anchor = "No copy of the log's end is kept in the keychain yet, so events removed from the end of the log would not show."
		default:
			head = h
		}
	}
	rep, err := v.log.VerifyHead(ctx, head)
	if err != nil {
		return Integrity{}, err
	}
	in := Integrity{OK: rep.OK(), Checked: rep.Events, LastID: rep.LastID, Anchor: anchor}
	if b := rep.Break; b != nil {
		in.Problem = fmt.Sprintf("event %d (%s): %s.", b.ID, b.Problem, b.Detail)
	}
	if a := rep.Anchor; a != nil {
		in.Pruned = fmt.Sprintf("Events up to number %d (the last written on %s) were removed after the retention period; the chain starts after them.",
			a.ID, a.Time.Local().Format("2 January 2006"))
	}
	return in, nil
}

// serverNames maps configured server ids to their names.
func serverNames(eff *config.Effective) map[string]string {
	m := map[string]string{}
	if eff == nil || eff.Settings == nil {
		return m
	}
	for _, s := range eff.Settings.Servers {
		m[s.ID] = displayName(s)
	}
	return m
}

func serverName(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

// viewEvent is a stored record in the viewer's words.
func viewEvent(r audit.Record, names map[string]string) AuditEvent {
	e := AuditEvent{
		ID: r.ID, Time: r.Time, Kind: kindWords[r.Kind], Server: r.Server, Tool: r.Tool,
		Client: r.Client, CallID: r.CallID, Target: r.Target, Actor: actorWords[r.Actor],
		Edited: len(r.EditedArguments) > 0, Details: details(r),
		Arguments: indentJSON(r.Arguments), EditedArguments: indentJSON(r.EditedArguments),
		Redactions: redactionText(r.Redactions), Hash: r.Hash.String(), PrevHash: r.PrevHash.String(),
	}
	if e.Kind == "" {
		e.Kind = string(r.Kind)
	}
	if e.Actor == "" {
		e.Actor = string(r.Actor)
	}
	if r.Server != "" {
		e.ServerName = serverName(names, r.Server)
	}
	switch {
	case r.Outcome != "":
		e.Outcome = outcomeWord(r.Outcome)
	case r.Kind == audit.KindCallResult && r.IsError:
		e.Outcome = "error"
	case r.Kind == audit.KindCallResult:
		e.Outcome = "answered"
	}
	return e
}

// details is the reason an event records, or else what its result and
// detail say, in one line.
func details(r audit.Record) string {
	var parts []string
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	// (A call that ended without the server's answer has no size.)
	if (r.Kind == audit.KindCallResult && r.Outcome != audit.OutcomeInterrupted && r.Outcome != audit.OutcomeNotSent) ||
		r.Kind == audit.KindMessageRedacted {
		parts = append(parts, fmt.Sprintf("%d bytes", r.ResultSize))
	}
	if len(r.Redactions) > 0 {
		parts = append(parts, "secrets removed: "+redactionText(r.Redactions))
	}
	if d := detailText(r.Detail); d != "" {
		parts = append(parts, d)
	}
	for _, a := range []struct {
		what   string
		stored json.RawMessage
	}{{"arguments", r.Arguments}, {"edited arguments", r.EditedArguments}} {
		if o, ok := audit.Omitted(a.stored); ok {
			parts = append(parts, fmt.Sprintf("the %s were too large to keep (%d bytes): only their SHA-256 hash %s and their beginning are stored",
				a.what, o.Bytes, o.SHA256))
		}
	}
	return strings.Join(parts, "; ")
}

// redactionText lists redaction counts by detector name: "2 github token,
// 1 jwt".
func redactionText(m map[string]int) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	removed := make([]string, 0, len(names))
	for _, name := range names {
		removed = append(removed, fmt.Sprintf("%d %s", m[name], name))
	}
	return strings.Join(removed, ", ")
}

// indentJSON is stored JSON indented for reading; "" when absent.
func indentJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// detailText writes a detail object as "key: value, key: value" in key
// order, and anything else as its compact JSON.
func detailText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return string(raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+valueText(m[k]))
	}
	return strings.Join(parts, ", ")
}

// valueText writes a JSON string without quotes, a list of strings joined
// by spaces, and anything else as compact JSON.
func valueText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
