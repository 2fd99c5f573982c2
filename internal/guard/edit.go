package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/redact"
)

// refusal is a sentence the person reads about why their edit was refused.
type refusal string

func (r refusal) Error() string { return string(r) }

// judgeEdit runs the rules that decided a call on the arguments a person
// edited for it: one unambiguous JSON object, the tool not hidden, every
// target in the allowlist, and, when the call's own targets were known,
// targets Countersign can still tell. It returns why they are refused, or "".
func (g *Guard) judgeEdit(server, tool string, args json.RawMessage, targetsKnown bool) string {
	why, _ := g.judgeEditDecision(server, tool, args, targetsKnown)
	return why
}

// judgeEditDecision is judgeEdit, also returning the policy's decision on
// edited arguments it does not refuse.
func (g *Guard) judgeEditDecision(server, tool string, args json.RawMessage, targetsKnown bool) (string, policy.Decision) {
	if !json.Valid(args) {
		return "The edited arguments are not valid JSON.", policy.Decision{}
	}
	if t := bytes.TrimSpace(args); len(t) == 0 || t[0] != '{' {
		return "The arguments must be a JSON object: { … }.", policy.Decision{}
	}
	if err := jsonrpc.CheckUnambiguous(args); err != nil {
		return "A name appears twice (or twice in different case) in one object of the edited arguments: servers may read that differently, so remove one.", policy.Decision{}
	}
	pol := g.policy(server)
	if pol == nil {
		return "Countersign no longer has rules for this server, so it cannot run the call with edited arguments.", policy.Decision{}
	}
	d := pol.Check(policy.Call{Tool: tool, Arguments: args, ReadOnly: g.listedReadOnly(server, tool)})
	switch {
	case d.Action != policy.ActionReview:
		return "Your edit cannot be approved: " + editReason(d.Reason), d
	case d.TargetUnknown && targetsKnown:
		return "Your edit cannot be approved: with it, Countersign can no longer tell which repository or project" +
			" the call touches (" + strings.Join(d.Unknown, "; ") + "). Keep them as the AI app sent them.", d
	}
	return "", d
}

// editReason rewords a policy's refusal, written for the AI app, for the
// person who made the edit.
func editReason(reason string) string {
	reason = strings.TrimPrefix(reason, "Countersign denied this call: ")
	if i := strings.Index(reason, " Ask the user to add"); i >= 0 {
		reason = reason[:i] + " Change it back, or add it in Countersign settings first."
	}
	if reason != "" {
		reason = strings.ToUpper(reason[:1]) + reason[1:]
	}
	return reason
}

// editCheck returns the gate.Call Check of c: it judges edited arguments
// and audits each refusal, with the edit, while the call keeps waiting.
func (g *Guard) editCheck(ctx context.Context, c gate.Call, args json.RawMessage, target string, targetsKnown bool) func(json.RawMessage) error {
	server, tool := c.Server, c.Tool
	return func(edited json.RawMessage) error {
		why := g.judgeEdit(server, tool, edited, targetsKnown)
		if why == "" {
			return nil
		}
		g.log.Info("edited arguments refused by policy", "server", server, "tool", tool, "call", c.ID)
		g.record(ctx, audit.Event{
			Kind: audit.KindPolicyDenied, Server: server, Tool: tool, Client: c.Client, CallID: c.ID, Target: target,
			Actor: audit.ActorPolicy, Reason: "The person's edit was refused; the call still waits. " + why,
			Arguments: args, EditedArguments: redactedArgs(edited),
		})
		return refusal(why)
	}
}

// editPreview returns the gate.Call Preview of a call: the judgement of
// edited arguments and the warnings about them, recording nothing.
func (g *Guard) editPreview(server, tool string, targetsKnown bool) func(json.RawMessage) (string, []gate.Warning) {
	return func(edited json.RawMessage) (string, []gate.Warning) {
		why, d := g.judgeEditDecision(server, tool, edited, targetsKnown)
		if why != "" {
			return why, nil
		}
		var ws []gate.Warning
		if findings, err := redact.ScanJSON(edited); err == nil && len(findings) > 0 {
			ws = append(ws, gate.Warning{Kind: gate.WarnSecret, Text: secretSentence("The edited arguments", findings), Detail: secretDetail(findings)})
		}
		if d.TargetUnknown {
			ws = append(ws, gate.Warning{Kind: gate.WarnTargetUnknown, Text: d.Reason})
		}
		return "", ws
	}
}
