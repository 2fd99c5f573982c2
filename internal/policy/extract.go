package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/jsonrpc"
)

// args are a call's arguments, parsed only one level deep.
type args map[string]json.RawMessage

// parseArgs reads the arguments of a tools/call. Absent or null arguments
// are an empty object; anything else that is not an object is an error.
func parseArgs(raw json.RawMessage) (args, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return args{}, nil
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("the arguments are not a JSON object")
	}
	var a args
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("the arguments are not valid JSON")
	}
	return a, nil
}

// argState says what an argument holds.
type argState int

const (
	argAbsent argState = iota // missing, null or ""
	argString
	argOther // a number, boolean, object or array
)

func (a args) str(name string) (string, argState) {
	raw, ok := a[name]
	if !ok {
		return "", argAbsent
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return "", argAbsent
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw), argOther
	}
	if s == "" {
		return "", argAbsent
	}
	return s, argString
}

// strs reads an argument that may be a string or an array of strings.
func (a args) strs(name string) ([]string, argState) {
	if s, st := a.str(name); st != argOther {
		if st == argAbsent {
			return nil, argAbsent
		}
		return []string{s}, argString
	}
	var list []string
	if err := json.Unmarshal(a[name], &list); err != nil {
		return nil, argOther
	}
	list = slices.DeleteFunc(list, func(s string) bool { return s == "" })
	if len(list) == 0 {
		return nil, argAbsent
	}
	return list, argString
}

// present reports whether an argument is given and not null or empty.
func (a args) present(name string) bool {
	raw, ok := a[name]
	if !ok {
		return false
	}
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "null", `""`, "[]", "{}":
		return false
	}
	return true
}

// holdsID reports whether an argument is, or is a list holding, a number
// or a string that could be read as a GUID. .NET, which Azure DevOps runs
// on, reads GUIDs with or without hyphens, in braces or parentheses, and
// as {0x…,…}, with any white space around; anything with 32 hexadecimal
// digits once those are removed, or with 0x in it, counts.
func (a args) holdsID(name string) bool {
	raw, ok := a[name]
	if !ok {
		return false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return true
	}
	items, isList := v.([]any)
	if !isList {
		items = []any{v}
	}
	for _, it := range items {
		switch x := it.(type) {
		case float64:
			return true
		case string:
			if couldBeGUID(x) {
				return true
			}
		}
	}
	return false
}

func couldBeGUID(s string) bool {
	if strings.Contains(strings.ToLower(s), "0x") {
		return true
	}
	hex := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune("0123456789abcdefABCDEF", r):
			hex++
		case strings.ContainsRune("{}()-", r), unicode.IsSpace(r):
			// .NET trims any Unicode white space around a GUID.
		default:
			return false
		}
	}
	return hex == 32
}

func conditionHolds(c *catalog.Condition, a args) bool {
	if c == nil {
		return true
	}
	if c.Present {
		return a.present(c.Arg)
	}
	if c.ID {
		return a.holdsID(c.Arg)
	}
	v, st := a.str(c.Arg)
	return st == argString && slices.Contains(c.In, v)
}

// extraction collects what a call touches.
type extraction struct {
	targets []Target
	unknown []string
	// malformed holds names that are not valid for their kind, such as an
	// owner with a slash in it. A vendor never has such a name, so the call
	// is refused rather than guessed at.
	malformed []string
	// otherSite is the vendor site a call is for when it is not the
	// server's own (see catalog.SiteRule).
	otherSite string
}

func (x *extraction) addUnknown(why string) {
	if !slices.Contains(x.unknown, why) {
		x.unknown = append(x.unknown, why)
	}
}

// extract applies the server's rules for one tool to its arguments.
func (p *Policy) extract(tool string, a args) extraction {
	var x extraction
	if p.targetless[tool] {
		return x
	}
	if key, name := foldedArg(a, p.namesRead(tool)); key != "" {
		x.malformed = append(x.malformed, fmt.Sprintf("an argument is named %s, which some servers read as %s and others ignore", quoteShort(key), name))
		return x
	}
	rules, known := p.rules[tool]
	if !known {
		x.addUnknown(fmt.Sprintf("Countersign's catalog has no rule for the tool %s", quoteShort(tool)))
		for _, tr := range p.entry.Targets.Fallback {
			p.applyTarget(&x, tr, a, "")
		}
		return x
	}
	for _, r := range rules {
		if !conditionHolds(r.When, a) {
			continue
		}
		if r.Unknown != "" {
			x.addUnknown(r.Unknown)
			continue
		}
		for _, tr := range r.Targets {
			p.applyTarget(&x, tr, a, r.Note)
		}
	}
	return x
}

// namesRead lists the argument names the rules for tool read.
func (p *Policy) namesRead(tool string) []string {
	var names []string
	addTargets := func(trs []catalog.TargetRule) {
		for _, tr := range trs {
			for _, n := range tr.Args {
				if !strings.HasPrefix(n, "$") {
					names = append(names, n)
				}
			}
		}
	}
	if s := p.entry.Targets.Site; s != nil {
		names = append(names, s.Arg)
	}
	rules, known := p.rules[tool]
	if !known {
		addTargets(p.entry.Targets.Fallback)
	}
	for _, r := range rules {
		if r.When != nil {
			names = append(names, r.When.Arg)
		}
		addTargets(r.Targets)
	}
	return names
}

// foldedArg returns an argument name that is none of the names the rules
// read but that encoding/json would take for one of them (such as "Owner"
// or "ownerſ" beside owner), and that name. What the policy checks must be
// the argument the server reads: servers matching names exactly ignore
// such an argument, servers built on encoding/json take it.
func foldedArg(a args, read []string) (key, name string) {
	for k := range a {
		for _, n := range read {
			if jsonrpc.FoldsTo(k, n) {
				return k, n
			}
		}
	}
	return "", ""
}

// value returns an argument, or a server parameter for "$name".
func (p *Policy) value(a args, name string) (string, argState) {
	if strings.HasPrefix(name, "$") {
		v := p.params[name[1:]]
		if v == "" {
			return "", argAbsent
		}
		return v, argString
	}
	return a.str(name)
}

func (p *Policy) applyTarget(x *extraction, tr catalog.TargetRule, a args, note string) {
	info := p.kinds[tr.Kind]
	missing := func(arg string) {
		if note != "" {
			x.addUnknown(note)
			return
		}
		x.addUnknown(fmt.Sprintf("the %s argument is not given", arg))
	}
	switch tr.Format {
	case catalog.FormatPath, catalog.FormatList:
		p.applyPath(x, tr, info, a, missing)
	case catalog.FormatIssueKey:
		v, st := a.str(tr.Args[0])
		switch {
		case st == argAbsent:
			if !tr.Optional {
				missing(tr.Args[0])
			}
		case st == argOther && isDigits(v):
			x.addUnknown(fmt.Sprintf("the %s argument is an issue ID (%s), which does not say which project it is in", tr.Args[0], quoteShort(v)))
		case st == argOther:
			x.addUnknown(fmt.Sprintf("the %s argument is not text", tr.Args[0]))
		default:
			p.addIssueKey(x, info, tr.Args[0], v)
		}
	case catalog.FormatComponentKey:
		list, st := a.strs(tr.Args[0])
		switch st {
		case argAbsent:
			if !tr.Optional {
				missing(tr.Args[0])
			}
		case argOther:
			x.addUnknown(fmt.Sprintf("the %s argument is not text", tr.Args[0]))
		default:
			for _, v := range list {
				project := v
				switch strings.Count(v, ":") {
				case 0:
				case 1:
					project, _, _ = strings.Cut(v, ":")
				default:
					x.addUnknown(fmt.Sprintf("a component key in the %s argument has more than one ':', so it does not say where its project key ends", tr.Args[0]))
					continue
				}
				p.addValue(x, info, project, true, "a component key in the "+tr.Args[0]+" argument")
			}
		}
	case catalog.FormatGitHubSearch:
		p.applyGitHubSearch(x, tr, info, a, missing)
	case catalog.FormatAWSARN:
		p.applyAWSARN(x, tr, info, a)
	case catalog.FormatAWSRegion:
		p.applyAWSRegion(x, tr, info, a, missing)
	case catalog.FormatJQL, catalog.FormatCQL:
		q, ok := x.textArg(tr, a, missing)
		if !ok {
			return
		}
		fields := jqlFields
		if tr.Format == catalog.FormatCQL {
			fields = cqlFields
		}
		// Every key the query names is checked against the allowlist, so
		// naming a project outside it denies the call; an unbounded query
		// is also flagged, since it can reach more than it names.
		sc := parseScopeQuery(q, fields)
		if !sc.bounded {
			x.addUnknown(sc.why)
		}
		for _, v := range sc.values {
			if v.issueKey {
				p.addIssueKey(x, info, "an issue key in the "+tr.Args[0]+" argument", v.text)
			} else {
				p.addValue(x, info, v.text, false, "the "+tr.Args[0]+" argument")
			}
		}
	}
}

func (p *Policy) applyPath(x *extraction, tr catalog.TargetRule, info catalog.KindInfo, a args, missing func(string)) {
	last := len(tr.Args) - 1
	var vals []string
	var lastVals []string
	given, absent := 0, ""
	for i, name := range tr.Args {
		if i == last && tr.Format == catalog.FormatList && !strings.HasPrefix(name, "$") {
			list, st := a.strs(name)
			switch st {
			case argAbsent:
				if absent == "" {
					absent = name
				}
			case argOther:
				x.addUnknown(fmt.Sprintf("the %s argument is not text", name))
				return
			default:
				given++
				lastVals = list
			}
			continue
		}
		v, st := p.value(a, name)
		switch st {
		case argAbsent:
			if absent == "" {
				absent = name
			}
		case argOther:
			x.addUnknown(fmt.Sprintf("the %s argument is not text", name))
			return
		default:
			if !strings.HasPrefix(name, "$") {
				given++
			}
		}
		vals = append(vals, v)
	}
	if given == 0 && tr.Optional {
		return
	}
	// OwnerWide: only the owner is given, so the call reaches every
	// repository of that owner.
	if tr.OwnerWide && vals[0] != "" && (len(tr.Args) == 1 || absent == tr.Args[1]) {
		if err := info.CheckValue(vals[0] + "/x"); err != nil {
			x.malformed = append(x.malformed, fmt.Sprintf("the %s argument is not an owner name", tr.Args[0]))
			return
		}
		p.addTargetTo(x, Target{Kind: tr.Kind, Value: vals[0], Wide: true})
		return
	}
	if absent != "" {
		missing(absent)
		return
	}
	if tr.Format == catalog.FormatList && lastVals != nil {
		for _, v := range lastVals {
			p.addValue(x, info, strings.Join(append(vals[:last:last], v), "/"), true, describeArgs(tr.Args))
		}
		return
	}
	p.addValue(x, info, strings.Join(vals, "/"), true, describeArgs(tr.Args))
}

var issueKeyPattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)-[0-9]+$`)

// addIssueKey records the project of an issue key; where is "the
// issueIdOrKey argument" or similar, for messages.
func (p *Policy) addIssueKey(x *extraction, info catalog.KindInfo, where, v string) {
	if !strings.HasPrefix(where, "the ") && !strings.HasPrefix(where, "an ") {
		where = "the " + where + " argument"
	}
	if m := issueKeyPattern.FindStringSubmatch(v); m != nil {
		p.addValue(x, info, m[1], true, where)
		return
	}
	if isDigits(v) {
		x.addUnknown(fmt.Sprintf("%s is an issue ID (%s), which does not say which project it is in", where, quoteShort(v)))
		return
	}
	x.malformed = append(x.malformed, where+" is not an issue key such as ABC-123")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// addValue checks a value's syntax and records it as a target, or records
// why it cannot be one. A malformed value is refused when strict, and is
// merely unknown otherwise (JQL may name a project by its display name).
// Messages name where the value came from rather than repeat it: it is
// unchecked input and could be anything, a secret included.
func (p *Policy) addValue(x *extraction, info catalog.KindInfo, v string, strict bool, where string) {
	if info.IsID(v) {
		segs := strings.Split(v, "/")
		x.addUnknown(fmt.Sprintf("%s gave an ID (%s) rather than a name", where, quoteShort(segs[len(segs)-1])))
		return
	}
	if err := info.CheckValue(v); err != nil {
		if strict {
			x.malformed = append(x.malformed, fmt.Sprintf("%s did not give a valid %s name", where, info.Noun))
		} else {
			x.addUnknown(fmt.Sprintf("%s names a %s by something other than its key", where, info.Noun))
		}
		return
	}
	p.addTargetTo(x, Target{Kind: info.Kind, Value: v})
}

// describeArgs names a rule's arguments for messages: "the project
// argument", "the owner and repo arguments".
func describeArgs(names []string) string {
	var real []string
	for _, n := range names {
		if !strings.HasPrefix(n, "$") {
			real = append(real, n)
		}
	}
	if len(real) == 1 {
		return "the " + real[0] + " argument"
	}
	return "the " + strings.Join(real, " and ") + " arguments"
}

// quoteShort quotes untrusted text for a message, cut to a few characters.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

func (p *Policy) addTargetTo(x *extraction, t Target) {
	info := p.kinds[t.Kind]
	for _, have := range x.targets {
		if have.Kind == t.Kind && have.Wide == t.Wide && info.Fold(have.Value) == info.Fold(t.Value) {
			return
		}
	}
	x.targets = append(x.targets, t)
}

// textArg reads the rule's first argument as text. When it is absent (and
// the rule needs it) or not text, it says so, to missing or as a target
// it cannot read, and ok is false.
func (x *extraction) textArg(tr catalog.TargetRule, a args, missing func(string)) (s string, ok bool) {
	s, st := a.str(tr.Args[0])
	switch st {
	case argAbsent:
		if !tr.Optional {
			missing(tr.Args[0])
		}
		return "", false
	case argOther:
		x.addUnknown(fmt.Sprintf("the %s argument is not text", tr.Args[0]))
		return "", false
	}
	return s, true
}

func (p *Policy) applyGitHubSearch(x *extraction, tr catalog.TargetRule, info catalog.KindInfo, a args, missing func(string)) {
	q, ok := x.textArg(tr, a, missing)
	if !ok {
		return
	}
	if len(tr.Args) == 3 {
		// search_issues and search_pull_requests add repo:owner/repo when
		// both are given and the query has no repo filter of its own.
		owner, ost := a.str(tr.Args[1])
		repo, rst := a.str(tr.Args[2])
		if ost == argString && rst == argString && !serverRepoFilter.MatchString(q) {
			if err := info.CheckValue(owner + "/" + repo); err != nil {
				x.malformed = append(x.malformed, fmt.Sprintf("%s did not give a valid %s name", describeArgs(tr.Args[1:]), info.Noun))
				return
			}
			q = "repo:" + owner + "/" + repo + " " + q
		}
	}
	sc := parseGitHubSearch(q)
	for _, r := range sc.repos {
		p.addValue(x, info, r, true, "a repo: qualifier in the "+tr.Args[0]+" argument")
	}
	for _, o := range sc.owners {
		p.addTargetTo(x, Target{Kind: tr.Kind, Value: o, Wide: true})
	}
	switch {
	case len(sc.repos)+len(sc.owners) == 0:
		x.addUnknown("the search is not limited with repo:, org: or user:, so it can reach any repository")
	case !sc.exact:
		x.addUnknown("the search uses OR, NOT, a negated or unreadable qualifier, so it may reach beyond the repositories it names")
	}
}

// arnPattern finds AWS ARNs: arn:partition:service:region:account:resource.
// Region and account may be empty (S3 buckets, IAM) or "aws" (managed
// policies).
var arnPattern = regexp.MustCompile(`arn:(?:aws|aws-cn|aws-us-gov|aws-iso[a-z-]*):[A-Za-z0-9-]+:([^:\s"'\\]*):([^:\s"'\\]*):`)

// applyAWSARN takes the account or Region of every ARN in the rule's
// arguments, all of them when it names none.
func (p *Policy) applyAWSARN(x *extraction, tr catalog.TargetRule, info catalog.KindInfo, a args) {
	var texts []string
	if len(tr.Args) == 0 {
		for _, raw := range a {
			texts = appendStrings(texts, raw)
		}
	} else {
		for _, n := range tr.Args {
			texts = appendStrings(texts, a[n])
		}
	}
	for _, t := range texts {
		for _, m := range arnPattern.FindAllStringSubmatch(t, -1) {
			region, account := m[1], m[2]
			switch {
			case tr.Kind == catalog.KindAWSAccount && account != "" && account != "aws":
				p.addValue(x, info, account, true, "an ARN in the arguments")
			case tr.Kind == catalog.KindAWSRegion && region != "":
				p.addValue(x, info, strings.ToLower(region), true, "an ARN in the arguments")
			}
		}
	}
}

// appendStrings adds every string value in a JSON value, at any depth.
func appendStrings(out []string, raw json.RawMessage) []string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return out
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// regionOption finds the Regions an AWS CLI command or script names:
// --region X, --region=X, region_name="X", region="X".
var regionOption = regexp.MustCompile(`(?:--region(?:\s+|=)["']?|region(?:_name)?\s*[=:]\s*["'])([^\s"']*)`)

// applyAWSRegion reads the Regions a command names; one that names none
// runs in the default, the rule's second argument (the server's Region).
func (p *Policy) applyAWSRegion(x *extraction, tr catalog.TargetRule, info catalog.KindInfo, a args, missing func(string)) {
	cmd, ok := x.textArg(tr, a, missing)
	if !ok {
		return
	}
	found := regionOption.FindAllStringSubmatch(cmd, -1)
	for _, m := range found {
		p.addValue(x, info, m[1], true, "a Region in the "+tr.Args[0]+" argument")
	}
	if len(found) > 0 {
		return
	}
	if def, st := p.value(a, tr.Args[1]); st == argString {
		p.addValue(x, info, def, true, "the server's Region")
	} else {
		x.addUnknown("the command names no Region")
	}
}
