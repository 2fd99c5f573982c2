// Package guard applies Countersign's rules where the relay intercepts
// traffic: policy decides a tool call before a person is asked, the call
// goes to the person with its targets and warnings, tools/list results are
// pinned and filtered, and every step is audited. Nothing the server sends
// toward the AI app keeps a secret: tool and resource results, prompts,
// listings, completions, error answers, sampling and elicitation requests
// and notifications all pass through redaction.
//
// The guard fails closed: a call whose audit record cannot be written is
// denied, and so is a call to a server it has no policy for.
package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/phases"
	"github.com/countersign/countersign/internal/pins"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/internal/relay"
)

// Queue is the person's approval queue.
type Queue interface {
	NewID() string
	Submit(ctx context.Context, c gate.Call) gate.Verdict
}

// Recorder is the audit log.
type Recorder interface {
	// Append returns once ev is durably written: for the records a call
	// must not go on without (submitted before the person sees it, the
	// decision before the request goes upstream).
	Append(ctx context.Context, ev audit.Event) (audit.Record, error)
	// AppendAsync queues ev for the next group commit and returns at once
	// (forwarded, result): the log writes what is queued before it closes,
	// and ends at its next start any call a crash left half-done. done
	// runs once the write is done or failed, and must not block.
	AppendAsync(ev audit.Event, done func(audit.Record, error)) error
}

// Options configure a Guard.
type Options struct {
	Queue Queue
	Audit Recorder
	Pins  *pins.Store // nil: tools are not pinned
	// AuditFailed is told, off the call path, when an audit record could
	// not be written, so the app can tell the person. May be nil.
	AuditFailed func(error)
	Logger      *slog.Logger
}

// Guard implements the relay's Gate and Filter.
type Guard struct {
	o   Options
	log *slog.Logger

	now func() time.Time // the clock; a test seam

	mu       sync.RWMutex
	policies map[string]*policy.Policy // by server id
	calls    map[string]callInfo       // approved calls awaiting their result, by call id
	// closing holds the result record of each call whose answer is on its
	// way to the AI app, by call id, until Delivered says whether it got
	// there (oldest first, should a call id be answered twice).
	closing map[string][]audit.Event
	asked   map[string]asked // questions of input_required results, by askedKey
	// approvedLate holds the audit event of each approval given after
	// the AI app stopped waiting, by call id, for the record of the retry
	// that runs under it.
	approvedLate map[string]int64
	// listed is each server's last tools/list result and what became of
	// it: servers list the same bytes again and again.
	listed map[string]listing
}

// listing is a tools/list result as a server sent it, redacted, and as
// filtered by the policy pol.
type listing struct {
	in, redacted []byte
	counts       map[string]int
	pol          *policy.Policy
	out          []byte
}

// maxKeptListing bounds the tools/list result kept per server.
const maxKeptListing = 1 << 20

var (
	_ relay.Gate        = (*Guard)(nil)
	_ relay.Filter      = (*Guard)(nil)
	_ relay.DropAuditor = (*Guard)(nil)
)

// callInfo is what the audit of a result repeats from its call.
type callInfo struct {
	server, tool, client, target string
	args                         json.RawMessage // as the AI app sent them, which a retry repeats
	forwarded                    bool            // the relay sent it to the server
}

// New returns a guard with no policies: every call is denied until
// SetPolicies names the servers.
func New(o Options) *Guard {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Guard{o: o, log: o.Logger, now: time.Now, policies: map[string]*policy.Policy{}, calls: map[string]callInfo{}, closing: map[string][]audit.Event{}, asked: map[string]asked{}, listed: map[string]listing{}}
}

// SetPolicies replaces the policy of every server, as settings change.
func (g *Guard) SetPolicies(byServer map[string]*policy.Policy) {
	m := make(map[string]*policy.Policy, len(byServer))
	for id, p := range byServer {
		m[id] = p
	}
	g.mu.Lock()
	g.policies = m
	g.mu.Unlock()
}

func (g *Guard) policy(server string) *policy.Policy {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.policies[server]
}

// Submit decides a tool call: policy first, then the person.
func (g *Guard) Submit(ctx context.Context, c gate.Call) gate.Verdict {
	c.ID = g.o.Queue.NewID()
	args := redactedArgs(c.Arguments)
	pol := g.policy(c.Server)
	if pol == nil {
		return g.block(ctx, c, args, nil, fmt.Sprintf("Countersign denied this call: %s is not a server it is set up to reach.", c.ServerName))
	}
	d := pol.Check(policy.Call{Tool: c.Tool, Arguments: c.Arguments, ReadOnly: g.listedReadOnly(c.Server, c.Tool)})
	if d.Action != policy.ActionReview {
		return g.block(ctx, c, args, d.Targets, d.Reason)
	}
	g.annotate(&c, d)
	g.annotateRetry(&c)

	target := strings.Join(c.Targets, ", ")
	if err := g.record(ctx, audit.Event{
		Kind: audit.KindCallSubmitted, Server: c.Server, Tool: c.Tool, Client: c.Client,
		CallID: c.ID, Target: target, Arguments: args, Reason: warningSummary(c.Warnings), Detail: retryDetail(c),
	}); err != nil {
		return auditFailure(c, err)
	}
	phases.Mark(phases.Submitted)

	// Edited arguments go through the same rules before the person's
	// approval counts (gate.Decide calls Check).
	c.Check = g.editCheck(ctx, c, args, target, !d.TargetUnknown)
	c.Preview = g.editPreview(c.Server, c.Tool, !d.TargetUnknown)
	// A decision after the AI app stopped waiting is recorded after the
	// record that says it stopped waiting.
	told := make(chan struct{})
	defer close(told)
	c.AfterHostGone = g.decidedLate(ctx, c, args, target, told)
	v := g.o.Queue.Submit(ctx, c)
	phases.Mark(phases.Decided)

	reason, rejoined := g.verdictReason(v)
	ev := audit.Event{
		Kind: audit.KindCallDecided, Server: c.Server, Tool: c.Tool, Client: c.Client,
		CallID: v.CallID, Target: target, Outcome: auditOutcome(v.Outcome), Actor: actor(v.Outcome), Reason: reason,
	}
	if v.Arguments != nil {
		ev.Arguments = args
		ev.EditedArguments = redactedArgs(v.Arguments)
		if findings, err := redact.ScanJSON(v.Arguments); err == nil && len(findings) > 0 {
			ev.Reason = strings.TrimSpace(ev.Reason + " " + secretSentence("The edited arguments", findings))
		}
	}
	if err := g.record(ctx, ev); err != nil && v.Approved() {
		return auditFailure(c, err)
	}
	phases.Mark(phases.DecisionDurable)
	if rejoined {
		// The earlier call ends here: its decision went to this one.
		g.recordAsync(audit.Event{
			Kind: audit.KindCallDecided, Server: c.Server, Tool: c.Tool, Client: c.Client, CallID: v.Earlier, Target: target,
			Outcome: ev.Outcome, Actor: ev.Actor,
			Reason: fmt.Sprintf("The AI app called again with the same arguments: the decision went to call %s, which runs in place of this one.", v.CallID),
		})
	}
	if v.Approved() && v.Arguments != nil {
		// The gate checked the edit; check again whatever queue ran: the
		// rules may have changed while the person decided.
		if why := g.judgeEdit(c.Server, c.Tool, v.Arguments, !d.TargetUnknown); why != "" {
			c.ID = v.CallID
			return g.blockEdit(ctx, c, args, v.Arguments, target, why)
		}
	}
	if v.Approved() {
		g.mu.Lock()
		g.calls[v.CallID] = callInfo{server: c.Server, tool: c.Tool, client: c.Client, target: target, args: c.Arguments}
		g.mu.Unlock()
	}
	return v
}

// decidedLate returns the Call.AfterHostGone of c: the verdict of a call
// the AI app stopped waiting for is recorded when it comes, and an approval
// is remembered for the retry that runs under it. It waits until told is
// closed: Submit has recorded that the AI app was told to call again.
func (g *Guard) decidedLate(ctx context.Context, c gate.Call, args json.RawMessage, target string, told <-chan struct{}) func(gate.Verdict) {
	return func(v gate.Verdict) {
		<-told
		reason := v.Reason
		if v.Approved() {
			reason = strings.TrimSpace("Approved after the AI app stopped waiting: it runs once when the AI app calls again with the same arguments. " + reason)
		}
		ev := audit.Event{
			Kind: audit.KindCallDecided, Server: c.Server, Tool: c.Tool, Client: c.Client,
			CallID: v.CallID, Target: target, Outcome: auditOutcome(v.Outcome), Actor: actor(v.Outcome), Reason: reason,
		}
		if v.Arguments != nil {
			ev.Arguments, ev.EditedArguments = args, redactedArgs(v.Arguments)
		}
		if g.o.Audit == nil {
			return
		}
		rec, err := g.o.Audit.Append(context.WithoutCancel(ctx), ev)
		if err != nil {
			g.auditFailed(ev, err)
			return
		}
		if v.Approved() {
			g.mu.Lock()
			if g.approvedLate == nil {
				g.approvedLate = make(map[string]int64)
			}
			g.approvedLate[v.CallID] = rec.ID
			g.mu.Unlock()
		}
	}
}

// verdictReason is the audit's reason for v: for a call that ran under an
// earlier call's review, which review that was. rejoined says v is the
// decision on the earlier call itself, which the AI app had stopped
// waiting for (rather than an approval given to it after that).
func (g *Guard) verdictReason(v gate.Verdict) (reason string, rejoined bool) {
	switch {
	case v.Outcome == gate.OutcomeAskAgain:
		return "The AI app was told to call again: it stops waiting before the person decides (" + v.Reason + "). The call still waits in Countersign.", false
	case v.Earlier == "":
		return v.Reason, false
	}
	g.mu.Lock()
	event, late := g.approvedLate[v.Earlier]
	delete(g.approvedLate, v.Earlier)
	g.mu.Unlock()
	var why string
	switch {
	case late && v.Approved():
		why = fmt.Sprintf("Approved earlier by the person (event %d, call %s): the AI app called again with the same arguments.", event, v.Earlier)
	default:
		why = fmt.Sprintf("Decided by the person on call %s, which the AI app had stopped waiting for and called again with the same arguments.", v.Earlier)
	}
	return strings.TrimSpace(why + " " + v.Reason), !late
}

// blockEdit denies an approved call whose edited arguments the rules
// refuse, recording why.
func (g *Guard) blockEdit(ctx context.Context, c gate.Call, args, edited json.RawMessage, target, why string) gate.Verdict {
	g.log.Warn("approved edited arguments refused by policy", "server", c.Server, "tool", c.Tool, "call", c.ID)
	reason := "Countersign denied this call: the arguments the user edited break its rules. " + why
	g.record(ctx, audit.Event{
		Kind: audit.KindPolicyDenied, Server: c.Server, Tool: c.Tool, Client: c.Client, CallID: c.ID, Target: target,
		Outcome: audit.OutcomeDenied, Actor: audit.ActorPolicy, Reason: reason,
		Arguments: args, EditedArguments: redactedArgs(edited),
	})
	return gate.Verdict{CallID: c.ID, Outcome: gate.OutcomeBlocked, Reason: reason}
}

// block denies a call by policy, recording why.
func (g *Guard) block(ctx context.Context, c gate.Call, args json.RawMessage, targets []policy.Target, reason string) gate.Verdict {
	g.log.Info("tool call blocked by policy", "server", c.Server, "tool", c.Tool)
	g.record(ctx, audit.Event{
		Kind: audit.KindPolicyDenied, Server: c.Server, Tool: c.Tool, Client: c.Client, CallID: c.ID,
		Target: targetText(targets), Outcome: audit.OutcomeDenied, Actor: audit.ActorPolicy, Reason: reason, Arguments: args,
	})
	return gate.Verdict{CallID: c.ID, Outcome: gate.OutcomeBlocked, Reason: reason}
}

func auditFailure(c gate.Call, err error) gate.Verdict {
	return gate.Verdict{CallID: c.ID, Outcome: gate.OutcomeBlocked,
		Reason: "Countersign denied this call because it could not write its audit log (" + err.Error() + "). Ask the user to check Countersign."}
}

// record appends an audit event; a failure is logged and reported.
func (g *Guard) record(ctx context.Context, ev audit.Event) error {
	if g.o.Audit == nil {
		return nil
	}
	// A call's record must be written even when the host has just gone.
	_, err := g.o.Audit.Append(context.WithoutCancel(ctx), ev)
	if err != nil {
		g.auditFailed(ev, err)
	}
	return err
}

// recordAsync queues an audit event that the call need not wait for; a
// failure to write it is logged and reported like any other.
func (g *Guard) recordAsync(ev audit.Event) {
	if g.o.Audit == nil {
		return
	}
	if err := g.o.Audit.AppendAsync(ev, func(_ audit.Record, err error) {
		if err != nil {
			g.auditFailed(ev, err)
		}
	}); err != nil {
		g.auditFailed(ev, err)
	}
}

// auditFailed logs that ev could not be written and tells the app.
func (g *Guard) auditFailed(ev audit.Event, err error) {
	g.log.Error("writing the audit log failed", "kind", string(ev.Kind), "err", err)
	if g.o.AuditFailed != nil {
		go g.o.AuditFailed(err)
	}
}

// listedReadOnly reports whether the server's listing of the tool, as
// Countersign last saw it, says readOnlyHint: true. Without pins, or for a
// tool never listed, it is not read-only.
func (g *Guard) listedReadOnly(server, tool string) bool {
	if g.o.Pins == nil {
		return false
	}
	st := g.o.Pins.Status(server, tool)
	def := st.Current
	if def == nil && st.Pinned != nil {
		def = st.Pinned.Definition
	}
	return def != nil && policy.ReadOnlyHint(def)
}

// annotate fills in what the person needs to judge the call.
func (g *Guard) annotate(c *gate.Call, d policy.Decision) {
	for _, t := range d.Targets {
		c.Targets = append(c.Targets, t.String())
	}
	var changed, secrets, destructive, unknown, fresh []gate.Warning
	if g.o.Pins != nil {
		st := g.o.Pins.Status(c.Server, c.Tool)
		def := st.Current
		if def == nil && st.Pinned != nil {
			def = st.Pinned.Definition
		}
		c.Info = toolInfo(def)
		switch {
		case st.Changed:
			changed = append(changed, gate.Warning{Kind: gate.WarnToolChanged,
				Text:   fmt.Sprintf("%s changed since Countersign first saw it on %s.", c.Tool, st.Pinned.FirstSeen.Format("2 January 2006")),
				Detail: st.Diff, Definition: st.CurrentHash})
		case st.Pinned != nil && st.Pinned.New:
			fresh = append(fresh, gate.Warning{Kind: gate.WarnToolNew,
				Text:       fmt.Sprintf("%s is new: the server added it on %s, after Countersign first listed its tools.", c.Tool, st.Pinned.FirstSeen.Format("2 January 2006")),
				Definition: st.CurrentHash})
		case st.Pinned == nil:
			fresh = append(fresh, gate.Warning{Kind: gate.WarnToolNew,
				Text: fmt.Sprintf("Countersign has never seen %s listed by this server, so its description cannot be shown.", c.Tool)})
		}
	}
	if findings, err := redact.ScanJSON(c.Arguments); err == nil && len(findings) > 0 {
		secrets = append(secrets, gate.Warning{Kind: gate.WarnSecret, Text: secretText(findings), Detail: secretDetail(findings)})
	}
	if c.Info.Destructive() {
		text := "This tool may change or delete data."
		if c.Info == nil {
			text = "Nothing says this tool is read-only, so it may change or delete data."
		}
		destructive = append(destructive, gate.Warning{Kind: gate.WarnDestructive, Text: text})
	}
	if d.TargetUnknown {
		unknown = append(unknown, gate.Warning{Kind: gate.WarnTargetUnknown, Text: d.Reason})
	}
	for _, ws := range [][]gate.Warning{changed, secrets, destructive, unknown, fresh} {
		c.Warnings = append(c.Warnings, ws...)
	}
}

// ToolsListed removes secrets from the tools a server lists, pins them and
// removes the hidden ones. Pins record the redacted definitions, so the pin
// file never holds a secret a server put in a description.
//
// A result byte-identical to the server's last one is redacted and
// filtered as that one was (under the same policy); what it removed is
// audited and its pins observed each time all the same.
func (g *Guard) ToolsListed(server string, result json.RawMessage) json.RawMessage {
	pol := g.policy(server)
	g.mu.RLock()
	l, ok := g.listed[server]
	g.mu.RUnlock()
	if !ok || !bytes.Equal(l.in, result) {
		redacted, counts, err := redact.RedactJSON(result)
		if err != nil {
			g.log.Warn("a tools/list result could not be checked for secrets: passing no tools", "server", server, "err", err)
			return json.RawMessage(`{"tools":[]}`)
		}
		l = listing{in: bytes.Clone(result), redacted: redacted, counts: counts}
	}
	if len(l.counts) > 0 {
		g.recordRedaction(server, relay.ServerMessage{Kind: jsonrpc.KindResponse, Method: "tools/list"}, len(l.redacted), maps.Clone(l.counts))
	}
	if g.o.Pins != nil {
		changed, err := g.o.Pins.Observe(server, l.redacted)
		if err != nil {
			g.log.Warn("recording tool pins failed", "server", server, "err", err)
		}
		if len(changed) > 0 {
			g.log.Warn("tools changed since first seen", "server", server, "tools", strings.Join(changed, ", "))
		}
	}
	if l.out == nil || l.pol != pol {
		hidden := func(string, []byte) bool { return true } // no policy: show nothing
		if pol != nil {
			hidden = pol.HiddenTool
		}
		out, err := policy.FilterTools(l.redacted, hidden)
		if err != nil {
			g.log.Warn("a tools/list result could not be filtered: passing no tools", "server", server, "err", err)
			return json.RawMessage(`{"tools":[]}`)
		}
		l.out, l.pol = out, pol
	}
	if len(l.in) <= maxKeptListing {
		g.mu.Lock()
		g.listed[server] = l
		g.mu.Unlock()
	}
	return bytes.Clone(l.out)
}

// CheckResource decides resources/read and resources/subscribe.
func (g *Guard) CheckResource(server, method, uri string) string {
	pol := g.policy(server)
	if pol == nil {
		return "Countersign denied this request: the server is not one it is set up to reach."
	}
	d := pol.CheckResource(uri)
	if d.Action == policy.ActionAllow {
		return ""
	}
	g.record(context.Background(), audit.Event{
		Kind: audit.KindPolicyDenied, Server: server, Tool: method, Target: targetText(d.Targets),
		Outcome: audit.OutcomeDenied, Actor: audit.ActorPolicy, Reason: d.Reason,
		Detail: mustJSON(map[string]string{"uri": redactString(uri)}),
	})
	return d.Reason
}

// Dropped records a message from the AI app the relay did not pass on: a
// request sent without an id, or an answer to no open server request.
func (g *Guard) Dropped(server, method, reason string) {
	g.record(context.Background(), audit.Event{
		Kind: audit.KindPolicyDenied, Server: server, Tool: redactString(method),
		Outcome: audit.OutcomeDenied, Actor: audit.ActorPolicy, Reason: reason,
	})
}

// Forwarded records that an approved call was sent. The record is queued,
// not waited for: the approval was durably recorded before, and if
// Countersign dies before this one is written, the audit log records at
// its next start that the call was interrupted after its approval.
func (g *Guard) Forwarded(server, callID string) {
	g.mu.Lock()
	ci, ok := g.calls[callID]
	if ok {
		ci.forwarded = true
		g.calls[callID] = ci
	}
	g.mu.Unlock()
	g.recordAsync(audit.Event{
		Kind: audit.KindCallForwarded, Server: server, Tool: ci.tool, Client: ci.client, CallID: callID, Target: ci.target,
	})
}

// Result removes secrets from a tool or resource result, or from the error
// the server answered instead, and records it.
func (g *Guard) Result(server, method, callID string, result, rpcError json.RawMessage) json.RawMessage {
	var out json.RawMessage
	var counts map[string]int
	switch {
	case result != nil:
		red, c, err := redact.RedactJSON(result)
		switch {
		case err != nil:
			// Not JSON we can walk: the host gets an error rather than
			// something unchecked.
			g.log.Warn("a result could not be checked for secrets: withheld", "server", server, "err", err)
			red, _ = json.Marshal(map[string]any{"isError": true, "content": []map[string]string{{"type": "text", "text": "Countersign withheld this result: it could not be checked for secrets."}}})
			fallthrough
		case len(c) > 0:
			out, counts = red, c
		}
	case rpcError != nil:
		out, counts = redactError(rpcError)
	}
	if callID == "" {
		if len(counts) > 0 {
			reason := "secrets removed from a resource"
			if rpcError != nil {
				reason = "secrets removed from the error answer to " + method
			}
			g.record(context.Background(), audit.Event{Kind: audit.KindMessageRedacted, Server: server, Tool: method,
				ResultSize: int64(len(result) + len(rpcError)), IsError: rpcError != nil, Redactions: counts, Reason: reason})
		}
		return out
	}
	g.mu.Lock()
	ci, known := g.calls[callID]
	delete(g.calls, callID)
	g.mu.Unlock()
	if result != nil && method == "tools/call" {
		shown := result
		if out != nil {
			shown = out // what the AI app sees, secrets removed
		}
		g.rememberAsked(server, ci, shown)
	}
	ev := audit.Event{Kind: audit.KindCallResult, Server: server, Tool: ci.tool, Client: ci.client, CallID: callID,
		Target: ci.target, ResultSize: int64(len(result)), Redactions: counts}
	if rpcError != nil {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(rpcError, &e)
		ev.IsError, ev.Reason = true, redactString(e.Message)
	} else {
		var r struct {
			IsError bool `json:"isError"`
		}
		json.Unmarshal(result, &r)
		ev.IsError = r.IsError
	}
	if known && !ci.forwarded {
		// The relay answered an approved call itself, before sending it:
		// its session ended, or the approved request could not be built.
		ev.Outcome, ev.Actor = audit.OutcomeNotSent, audit.ActorApp
		if ev.Reason == "" {
			ev.Reason = "Not sent to the server."
		}
	}
	// Written once the relay knows whether the AI app got the answer.
	g.mu.Lock()
	g.closing[callID] = append(g.closing[callID], ev)
	g.mu.Unlock()
	return out
}

// notDelivered begins the reason of a result the AI app never got.
const notDelivered = "Not delivered: the AI app had gone before the answer could be handed to it."

// Delivered records the result of an approved call, which Result
// prepared, now that the relay knows whether the answer reached the AI
// app. One the AI app never got ends "not delivered", with the size,
// error flag and redactions of the answer as it came; a call that was
// never sent stays "not sent".
func (g *Guard) Delivered(server, callID string, delivered bool) {
	g.mu.Lock()
	evs := g.closing[callID]
	if len(evs) == 0 {
		g.mu.Unlock()
		return
	}
	ev := evs[0]
	if len(evs) == 1 {
		delete(g.closing, callID)
	} else {
		g.closing[callID] = evs[1:]
	}
	g.mu.Unlock()
	if !delivered && ev.Outcome == "" {
		ev.Outcome, ev.Actor = audit.OutcomeNotDelivered, audit.ActorApp
		if ev.Reason == "" {
			ev.Reason = notDelivered
		} else {
			ev.Reason = notDelivered + " The answer was: " + ev.Reason
		}
	}
	g.recordAsync(ev)
}

// redactError removes secrets from a JSON-RPC error object. It returns nil
// when there are none, and a generic error when the object cannot be
// checked.
func redactError(rpcError json.RawMessage) (json.RawMessage, map[string]int) {
	red, counts, err := redact.RedactJSON(rpcError)
	if err != nil {
		return json.RawMessage(`{"code":-32603,"message":"Countersign withheld the server's error: it could not be checked for secrets."}`), nil
	}
	if len(counts) == 0 {
		return nil, nil
	}
	return red, counts
}

// ServerMessage removes secrets from any other message the server sends
// toward the AI app: requests such as sampling/createMessage and
// elicitation/create, notifications such as log messages and progress, and
// answers such as prompts/get, completion/complete and the listings; and
// the top-level members of any server message beside its routing and its
// payload (m.Members).
// What it removes from a request or an answer is audited, with the tool
// call it happened during; from a notification, logged at debug (counts
// only, never the secret).
func (g *Guard) ServerMessage(server string, m relay.ServerMessage) json.RawMessage {
	red, counts, err := redact.RedactJSON(m.Payload)
	if err != nil {
		g.log.Warn("a server message could not be checked for secrets: withheld", "server", server, "method", m.Method, "err", err)
		if m.Members {
			return json.RawMessage(`null`) // not the object the relay gave: it withholds the message
		}
		if m.Error {
			return json.RawMessage(`{"code":-32603,"message":"Countersign withheld the server's error: it could not be checked for secrets."}`)
		}
		return json.RawMessage(`{}`)
	}
	if len(counts) == 0 {
		return nil
	}
	g.recordRedaction(server, m, len(m.Payload), counts)
	return red
}

// recordRedaction notes secrets removed from a server message: audited for
// requests and answers, logged for notifications, which can be frequent.
func (g *Guard) recordRedaction(server string, m relay.ServerMessage, size int, counts map[string]int) {
	what := describe(m)
	if m.Kind == jsonrpc.KindNotification {
		g.log.Debug("secrets removed from "+what, "server", server, "method", m.Method, "call", m.CallID, "redactions", countsText(counts))
		return
	}
	g.log.Info("secrets removed from "+what, "server", server, "method", m.Method, "call", m.CallID, "redactions", countsText(counts))
	ev := audit.Event{Kind: audit.KindMessageRedacted, Server: server, Tool: m.Method, ResultSize: int64(size),
		IsError: m.Error, Redactions: counts, Reason: "secrets removed from " + what}
	if m.CallID != "" {
		g.mu.RLock()
		ci, ok := g.calls[m.CallID]
		g.mu.RUnlock()
		if ok {
			ev.Client, ev.Target = ci.client, ci.target
		}
		ev.Reason += " during call " + m.CallID
		ev.Detail = mustJSON(map[string]string{"call": m.CallID})
	}
	g.recordAsync(ev)
}

// describe names a server message for the audit and the log.
func describe(m relay.ServerMessage) string {
	var what string
	switch {
	case m.Kind == jsonrpc.KindRequest:
		what = "the server's " + m.Method + " request"
	case m.Kind == jsonrpc.KindNotification:
		what = "the server's " + m.Method + " notification"
	case m.Error:
		what = "the error answer to " + m.Method
	default:
		what = "the answer to " + m.Method
	}
	if m.Members {
		what = "extra fields of " + what
	}
	return what
}

// countsText renders redaction counts for a log line, such as
// "github token=1, private key=2".
func countsText(counts map[string]int) string {
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%s=%d", k, counts[k])
	}
	return strings.Join(kinds, ", ")
}

// redactedArgs returns arguments fit for the audit: secrets replaced.
func redactedArgs(args json.RawMessage) json.RawMessage {
	if len(args) == 0 {
		return nil
	}
	out, _, err := redact.RedactJSON(args)
	if err != nil {
		return nil
	}
	return out
}

func redactString(s string) string {
	b, _ := json.Marshal(s)
	out, _, err := redact.RedactJSON(b)
	if err != nil {
		return ""
	}
	var r string
	json.Unmarshal(out, &r)
	return r
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func targetText(ts []policy.Target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}

// secretText says what secrets the arguments hold, in one sentence.
func secretText(fs []redact.Finding) string { return secretSentence("The arguments", fs) }

// secretSentence says what secrets what holds, in one sentence.
func secretSentence(what string, fs []redact.Finding) string {
	kinds := map[string]bool{}
	for _, f := range fs {
		kinds[f.Kind] = true
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return what + " contain what looks like a secret (" + strings.Join(names, ", ") + "). Approving sends it to the server."
}

// secretDetail lists where each secret is, with a masked preview.
func secretDetail(fs []redact.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		where := f.Path
		if where == "" {
			where = "arguments"
		}
		fmt.Fprintf(&b, "%s in %s: %s\n", f.Kind, where, f.Preview)
	}
	return b.String()
}

func warningSummary(ws []gate.Warning) string {
	kinds := make([]string, len(ws))
	for i, w := range ws {
		kinds[i] = string(w.Kind)
	}
	if len(kinds) == 0 {
		return ""
	}
	return "warnings: " + strings.Join(kinds, ", ")
}

// toolInfo reads a tool definition for display.
func toolInfo(def json.RawMessage) *gate.ToolInfo {
	if def == nil {
		return nil
	}
	var t struct {
		Title       string          `json:"title"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema"`
		Annotations struct {
			Title           string `json:"title"`
			ReadOnlyHint    *bool  `json:"readOnlyHint"`
			DestructiveHint *bool  `json:"destructiveHint"`
			IdempotentHint  *bool  `json:"idempotentHint"`
			OpenWorldHint   *bool  `json:"openWorldHint"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(def, &t); err != nil {
		return nil
	}
	title := t.Title
	if title == "" {
		title = t.Annotations.Title
	}
	return &gate.ToolInfo{
		Title: title, Description: t.Description, InputSchema: t.InputSchema,
		ReadOnlyHint: t.Annotations.ReadOnlyHint, DestructiveHint: t.Annotations.DestructiveHint,
		IdempotentHint: t.Annotations.IdempotentHint, OpenWorldHint: t.Annotations.OpenWorldHint,
	}
}

// auditOutcome maps a gate outcome to the audit's words.
func auditOutcome(o gate.Outcome) audit.Outcome {
	switch o {
	case gate.OutcomeApproved:
		return audit.OutcomeApproved
	case gate.OutcomeTimedOut:
		return audit.OutcomeTimedOut
	case gate.OutcomeCancelled:
		return audit.OutcomeCancelled
	case gate.OutcomeDisconnected:
		return audit.OutcomeDisconnected
	case gate.OutcomeUpstreamLost:
		return audit.OutcomeUpstreamLost
	case gate.OutcomeShutdown:
		return audit.OutcomeShutDown
	case gate.OutcomePaused:
		return audit.OutcomePaused
	case gate.OutcomeAskAgain:
		return audit.OutcomeAskAgain
	}
	return audit.OutcomeDenied
}

// actor says who ended a call with outcome o.
func actor(o gate.Outcome) audit.Actor {
	switch o {
	case gate.OutcomeApproved, gate.OutcomeDenied:
		return audit.ActorPerson
	case gate.OutcomeTimedOut:
		return audit.ActorTimeout
	case gate.OutcomeBlocked:
		return audit.ActorPolicy
	}
	return audit.ActorApp
}
