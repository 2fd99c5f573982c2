// Package policy makes the decisions Countersign takes before a person is
// asked: is a tool hidden, which repositories, projects or spaces does a
// call touch, and are they in the allowlist. It is pure: no I/O, no UI, no
// clock.
//
// A [Policy] is built per server from the catalog entry (whose rules say
// where targets are in each tool's arguments), the server's parameters, its
// allowlist and its hidden tools. [Policy.Check] then decides each tool call:
//
//   - a hidden tool is denied without asking;
//   - a call whose target is outside the allowlist is denied without asking,
//     with a reason the model can relay to the person;
//   - every other call goes to review, flagged "target unknown" when
//     Countersign could not tell what it touches.
//
// The allowlist fails closed: an empty allowlist allows no target at all,
// so a catalog server can only reach what the person has listed. Calls that
// name no target (GitHub's get_me) and calls whose target is unknown are
// not denied by the allowlist; they go to the person, flagged.
//
// Servers that are not from the catalog (custom entries in the settings
// file) have no rules, so every call is reviewed with the target unknown,
// and their resources are not filtered.
//
// [Policy.CheckResource] decides resources/read and resources/subscribe:
// inside the allowlist the read is forwarded without review (it is not a
// tool call), outside it is denied. A catalog server's resource URI whose
// target cannot be derived is denied, unless its scheme is known to name no
// target; a server without rules has its resources allowed.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/countersign/countersign/internal/catalog"
)

// Action is what a decision says to do with a call. The zero value denies,
// so a forgotten decision fails closed.
type Action int

// Actions.
const (
	// ActionDeny refuses the call without asking anyone.
	ActionDeny Action = iota
	// ActionReview holds the call for a person to approve or deny.
	ActionReview
	// ActionAllow forwards without review; only resource reads get it.
	ActionAllow
)

// String returns the action's name: deny, review or allow.
func (a Action) String() string {
	switch a {
	case ActionDeny:
		return "deny"
	case ActionReview:
		return "review"
	case ActionAllow:
		return "allow"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Target is one thing a call touches.
type Target struct {
	Kind catalog.Kind
	// Value is the name as the call gave it: "DEFRA/ffc-pay", "FFC",
	// "defra/Payments". For a Wide target it is the owner: "DEFRA".
	Value string
	// Wide means every repository of the owner Value, as in a search with
	// org:DEFRA. Only a pattern covering the whole owner allows it.
	Wide bool
	// Site is the vendor site the target is on, such as
	// defra.atlassian.net, for servers that reach many sites through one
	// endpoint; empty otherwise.
	Site string
}

// Noun is the kind of thing, for people: "repository", "Jira project",
// "owner" for a wide target.
func (t Target) Noun() string {
	if t.Wide {
		return "owner"
	}
	if info, ok := catalog.LookupKind(t.Kind); ok {
		return info.Noun
	}
	return string(t.Kind)
}

// String is the target as a person reads it.
func (t Target) String() string {
	s := t.Value
	if t.Wide {
		s = "every repository of " + t.Value
	}
	if t.Site != "" {
		s += " on " + t.Site
	}
	return s
}

// Decision is the policy's verdict on one call or resource.
type Decision struct {
	Action Action
	// Targets are what the call touches, as far as Countersign can tell.
	Targets []Target
	// TargetUnknown is set when something the call touches could not be
	// determined; Unknown says what, one phrase each.
	TargetUnknown bool
	Unknown       []string
	// Reason is a sentence for the model and the person. For a denial it is
	// the message the AI app receives.
	Reason string
}

// Call is the part of a tools/call the policy looks at.
type Call struct {
	Tool      string
	Arguments json.RawMessage
	// ReadOnly is what the server's own listing of the tool says: true
	// only when its definition has readOnlyHint: true (see ReadOnlyHint).
	ReadOnly bool
}

// Config is what a Policy is built from.
type Config struct {
	// Name is the server's name in reasons, such as "GitHub".
	Name string
	// CatalogID is the server's catalog entry, such as "github", or empty
	// for a server that is not from the catalog.
	CatalogID string
	// Params are the server's catalog parameters (e.g. organization).
	Params map[string]string
	// Allowlist holds patterns per kind; see ValidatePattern.
	Allowlist map[catalog.Kind][]string
	// Hidden holds tool names, or globs such as "delete_*", to hide.
	Hidden []string
}

// Policy decides calls for one server. It is immutable and safe for
// concurrent use.
type Policy struct {
	name       string
	entry      *catalog.Entry // nil: no rules
	params     map[string]string
	kinds      map[catalog.Kind]catalog.KindInfo
	allow      map[catalog.Kind][]pattern
	hidden     []toolPattern
	rules      map[string][]catalog.ToolRule
	targetless map[string]bool
	resources  map[string]catalog.ResourceRule
	noTarget   map[string]bool // targetless resource schemes
	// readOnly offers only tools the server marks readOnlyHint: true.
	readOnly bool
}

// New validates a configuration and builds its Policy. Errors name the bad
// entry, so the settings window and admin policy loader can show them.
func New(c Config) (*Policy, error) {
	p := &Policy{
		name:       c.Name,
		kinds:      map[catalog.Kind]catalog.KindInfo{},
		allow:      map[catalog.Kind][]pattern{},
		rules:      map[string][]catalog.ToolRule{},
		targetless: map[string]bool{},
		resources:  map[string]catalog.ResourceRule{},
		noTarget:   map[string]bool{},
	}
	if p.name == "" {
		p.name = "this server"
	}
	for _, h := range c.Hidden {
		if err := ValidateToolPattern(h); err != nil {
			return nil, fmt.Errorf("hidden tools: %w", err)
		}
		p.hidden = append(p.hidden, toolPattern(h))
	}
	var e catalog.Entry
	if c.CatalogID != "" {
		var ok bool
		if e, ok = catalog.Lookup(c.CatalogID); !ok {
			return nil, fmt.Errorf("%q is not in the catalog", c.CatalogID)
		}
	}
	if c.CatalogID != "" && len(e.ReadOnlyHintWhen) > 0 {
		// Parameters that do not normalize leave the server read-only.
		n, err := e.Normalize(c.Params)
		p.readOnly = err != nil || e.ReadOnlyByHint(n)
	}
	if e.Targets == nil {
		for k, list := range c.Allowlist {
			if len(list) > 0 {
				return nil, fmt.Errorf("allowlist: %s has no target rules, so it cannot have %s entries", p.name, k)
			}
		}
		return p, nil
	}
	p.entry = &e
	params, err := e.Normalize(c.Params)
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	p.params = params
	for _, k := range e.Targets.Kinds {
		info, ok := catalog.LookupKind(k)
		if !ok {
			return nil, fmt.Errorf("catalog entry %s names unknown kind %s", e.ID, k)
		}
		p.kinds[k] = info
	}
	for k, list := range c.Allowlist {
		info, ok := p.kinds[k]
		if !ok {
			return nil, fmt.Errorf("allowlist: %s has no %s", p.name, k)
		}
		for _, s := range list {
			pat, err := compilePattern(info, s)
			if err != nil {
				return nil, fmt.Errorf("allowlist of %s: %w", info.Plural, err)
			}
			p.allow[k] = append(p.allow[k], pat)
		}
	}
	for _, t := range e.Targets.Targetless {
		p.targetless[t] = true
	}
	for _, r := range e.Targets.Rules {
		for _, t := range r.Tools {
			p.rules[t] = append(p.rules[t], r)
		}
	}
	for _, r := range e.Targets.Resources {
		p.resources[r.Scheme] = r
	}
	for _, s := range e.Targets.TargetlessSchemes {
		p.noTarget[s] = true
	}
	return p, nil
}

// Hidden reports whether a tool is hidden: removed from tools/list and
// denied when called.
func (p *Policy) Hidden(tool string) bool {
	for _, h := range p.hidden {
		if h.match(tool) {
			return true
		}
	}
	return false
}

// ReadOnlyTools reports whether only tools the server marks read-only are
// offered, as AWS's read-only mode does.
func (p *Policy) ReadOnlyTools() bool { return p.readOnly }

// HiddenTool reports whether a tool, given its definition from tools/list,
// is hidden: by name, or because only read-only tools are offered and the
// definition does not say readOnlyHint: true.
func (p *Policy) HiddenTool(name string, def []byte) bool {
	return p.Hidden(name) || (p.readOnly && !ReadOnlyHint(def))
}

// ReadOnlyHint reports whether a tool definition says, in exactly the
// members the MCP specification names, annotations.readOnlyHint: true.
// Anything else — a missing or misspelt member, a string "true", a
// definition that is not an object — is not read-only.
func ReadOnlyHint(def []byte) bool {
	var tool map[string]json.RawMessage
	if json.Unmarshal(def, &tool) != nil {
		return false
	}
	var ann map[string]json.RawMessage
	if json.Unmarshal(tool["annotations"], &ann) != nil {
		return false
	}
	return string(bytes.TrimSpace(ann["readOnlyHint"])) == "true"
}

// Check decides a tool call.
func (p *Policy) Check(c Call) Decision {
	if p.Hidden(c.Tool) {
		return Decision{
			Action: ActionDeny,
			Reason: fmt.Sprintf("Countersign denied this call: the tool %s is turned off for %s on this computer.", quoteShort(c.Tool), p.name),
		}
	}
	if p.readOnly && !c.ReadOnly {
		return Decision{
			Action: ActionDeny,
			Reason: fmt.Sprintf("Countersign denied this call: %s offers only read-only tools on this computer, and the server does not mark %s read-only. Write tools can be turned on in Countersign's settings, unless your organisation keeps %s read-only.", p.name, quoteShort(c.Tool), p.name),
		}
	}
	if p.entry == nil {
		why := fmt.Sprintf("Countersign has no target rules for %s", p.name)
		return Decision{Action: ActionReview, TargetUnknown: true, Unknown: []string{why}, Reason: "Target unknown: " + why + "."}
	}
	a, err := parseArgs(c.Arguments)
	var x extraction
	if err != nil {
		x.addUnknown(err.Error())
	} else {
		x = p.extract(c.Tool, a)
		if len(x.malformed) == 0 {
			p.checkSite(&x, a, p.targetless[c.Tool])
		}
	}
	return p.decide(x)
}

func (p *Policy) decide(x extraction) Decision {
	d := Decision{Targets: x.targets, TargetUnknown: len(x.unknown) > 0, Unknown: x.unknown}
	if len(x.malformed) > 0 {
		d.Action = ActionDeny
		d.Reason = fmt.Sprintf("Countersign denied this call: %s, so it cannot be checked against the allowlist for %s.", strings.Join(x.malformed, "; "), p.name)
		return d
	}
	if x.otherSite != "" {
		rule := p.entry.Targets.Site
		d.Action = ActionDeny
		d.Reason = fmt.Sprintf("Countersign denied this call: it is for %s, and %s in Countersign is set up for the %s %s only. Ask the user to add a server for that site in Countersign settings if it should be reachable.",
			x.otherSite, p.name, rule.Noun, p.params[rule.Param])
		return d
	}
	var outside []Target
	for _, t := range x.targets {
		if !p.allowed(t) {
			outside = append(outside, t)
		}
	}
	if len(outside) > 0 {
		d.Action = ActionDeny
		d.Reason = p.denyReason("this call", outside)
		return d
	}
	d.Action = ActionReview
	switch {
	case d.TargetUnknown && len(d.Targets) > 0:
		d.Reason = fmt.Sprintf("Touches %s, in the allowlist, but more is unknown: %s.", targetList(d.Targets), strings.Join(d.Unknown, "; "))
	case d.TargetUnknown:
		d.Reason = "Target unknown: " + strings.Join(d.Unknown, "; ") + "."
	case len(d.Targets) > 0:
		d.Reason = fmt.Sprintf("Touches %s, in the allowlist.", targetList(d.Targets))
	default:
		d.Reason = "This tool touches no " + p.nouns() + "."
	}
	return d
}

// allowed reports whether the allowlist covers a target.
func (p *Policy) allowed(t Target) bool {
	info, ok := p.kinds[t.Kind]
	if !ok {
		return false
	}
	v := info.Fold(t.Value)
	if t.Wide {
		for _, pat := range p.allow[t.Kind] {
			if pat.coversOwner(v) {
				return true
			}
		}
		return false
	}
	segs := strings.Split(v, "/")
	for _, pat := range p.allow[t.Kind] {
		if pat.match(segs) {
			return true
		}
	}
	return false
}

// denyReason is the sentence a denied call or read returns; what is "this
// call" or "reading this resource".
func (p *Policy) denyReason(what string, outside []Target) string {
	first := outside[0]
	info := p.kinds[first.Kind]
	var b strings.Builder
	fmt.Fprintf(&b, "Countersign denied %s: ", what)
	switch {
	case len(p.allow[first.Kind]) == 0:
		fmt.Fprintf(&b, "the allowlist for %s has no %s yet, so %s cannot be reached.", p.name, info.Plural, targetList(outside))
	case first.Wide:
		fmt.Fprintf(&b, "it reaches every repository of %s, and the allowlist for %s does not cover all of %s (that needs %s/*).", first.Value, p.name, first.Value, first.Value)
	case len(outside) == 1:
		fmt.Fprintf(&b, "%s is not in the allowlist for %s.", first.Value, p.name)
	default:
		fmt.Fprintf(&b, "%s are not in the allowlist for %s.", targetList(outside), p.name)
	}
	if first.Wide && len(p.allow[first.Kind]) > 0 {
		fmt.Fprintf(&b, " Ask the user to add %s/* in Countersign settings if every repository of %s should be allowed.", first.Value, first.Value)
	} else {
		b.WriteString(" Ask the user to add it in Countersign settings.")
	}
	return b.String()
}

func targetList(ts []Target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	switch len(names) {
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (p *Policy) nouns() string {
	var ns []string
	for _, info := range p.kinds {
		ns = append(ns, info.Noun)
	}
	sort.Strings(ns)
	return strings.Join(ns, " or ")
}

// CheckResource decides resources/read and resources/subscribe for a URI:
// ActionAllow forwards without review, ActionDeny refuses.
func (p *Policy) CheckResource(uri string) Decision {
	if p.entry == nil {
		return Decision{Action: ActionAllow, Reason: fmt.Sprintf("%s has no target rules, so its resources are not filtered.", p.name)}
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	scheme = strings.ToLower(scheme)
	if !ok || scheme == "" {
		return Decision{Action: ActionDeny, Reason: "Countersign denied reading this resource: its URI has no scheme."}
	}
	if p.noTarget[scheme] {
		return Decision{Action: ActionAllow, Reason: fmt.Sprintf("%s:// resources name no %s.", scheme, p.nouns())}
	}
	rule, ok := p.resources[scheme]
	if !ok {
		return Decision{Action: ActionDeny, Reason: fmt.Sprintf("Countersign denied reading this resource: it cannot tell which %s a %s:// URI of %s belongs to.", p.nouns(), scheme, p.name)}
	}
	info := p.kinds[rule.Kind]
	path, ok := strings.CutPrefix(rest, "//")
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	segs := strings.SplitN(path, "/", info.Segments+1)
	if !ok || len(segs) < info.Segments {
		return Decision{Action: ActionDeny, TargetUnknown: true, Reason: fmt.Sprintf("Countersign denied reading this resource: its URI does not name a %s.", info.Noun)}
	}
	value := strings.Join(segs[:info.Segments], "/")
	if err := info.CheckValue(value); err != nil {
		return Decision{Action: ActionDeny, TargetUnknown: true, Unknown: []string{err.Error()}, Reason: fmt.Sprintf("Countersign denied reading this resource: its URI does not name a %s it can check.", info.Noun)}
	}
	t := Target{Kind: rule.Kind, Value: value}
	if !p.allowed(t) {
		return Decision{Action: ActionDeny, Targets: []Target{t}, Reason: p.denyReason("reading this resource", []Target{t})}
	}
	return Decision{Action: ActionAllow, Targets: []Target{t}, Reason: fmt.Sprintf("Reads %s, in the allowlist.", value)}
}

// Kinds returns the target kinds this server's allowlist can hold, for the
// settings editor; none for a server without rules.
func (p *Policy) Kinds() []catalog.Kind {
	var ks []catalog.Kind
	for k := range p.kinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
