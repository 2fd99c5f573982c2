package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kind names a kind of target an allowlist lists, such as GitHub
// repositories or Jira projects. Each kind has its own syntax and case rule.
type Kind string

// The kinds in the embedded catalog.
const (
	KindGitHubRepository   Kind = "github-repository"
	KindJiraProject        Kind = "jira-project"
	KindConfluenceSpace    Kind = "confluence-space"
	KindAzureDevOpsProject Kind = "azure-devops-project"
	KindSonarQubeProject   Kind = "sonarqube-project"
	KindAWSAccount         Kind = "aws-account"
	KindAWSRegion          Kind = "aws-region"
)

// KindInfo describes a target kind: how many "/"-separated segments a value
// has, which characters each segment may hold, and whether the vendor
// compares values case-insensitively.
type KindInfo struct {
	Kind     Kind   `json:"kind"`
	Noun     string `json:"noun"`
	Plural   string `json:"plural"`
	Segments int    `json:"segments"`
	// FoldCase is true when the vendor treats names that differ only in
	// case as the same target.
	FoldCase bool `json:"foldCase"`
	// Syntax holds one regular expression per segment that a real name
	// matches.
	Syntax []string `json:"syntax"`
	// IDSyntax matches values that are numeric or GUID identifiers rather
	// than names; the allowlist cannot judge those.
	IDSyntax string `json:"idSyntax,omitempty"`
	// PatternChars lists, per segment, the characters an allowlist pattern
	// may use besides "*"; empty means any printable character not in
	// PatternForbidden.
	PatternChars     []string `json:"patternChars"`
	PatternForbidden []string `json:"patternForbidden,omitempty"`
	// MaxLen bounds each segment of a name or pattern (default 255).
	MaxLen   int    `json:"maxLen,omitempty"`
	Example  string `json:"example"`
	Hint     string `json:"hint"`
	CaseNote string `json:"caseNote"`

	syntax   []*regexp.Regexp
	idSyntax *regexp.Regexp
}

func (k *KindInfo) compile() error {
	if k.Kind == "" || k.Noun == "" || k.Plural == "" || k.Example == "" || k.Hint == "" || k.CaseNote == "" {
		return errors.New("kind, noun, plural, example, hint and caseNote are required")
	}
	if k.Segments < 1 || k.Segments > 2 {
		return fmt.Errorf("segments %d is not 1 or 2", k.Segments)
	}
	if len(k.Syntax) != k.Segments || len(k.PatternChars) != k.Segments {
		return errors.New("syntax and patternChars need one entry per segment")
	}
	if k.PatternForbidden != nil && len(k.PatternForbidden) != k.Segments {
		return errors.New("patternForbidden needs one entry per segment")
	}
	k.syntax = nil
	for i, s := range k.Syntax {
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("syntax[%d]: %w", i, err)
		}
		if !strings.HasPrefix(s, "^") || !strings.HasSuffix(s, "$") {
			return fmt.Errorf("syntax[%d] must be anchored with ^ and $", i)
		}
		k.syntax = append(k.syntax, re)
	}
	if k.IDSyntax != "" {
		re, err := regexp.Compile(k.IDSyntax)
		if err != nil {
			return fmt.Errorf("idSyntax: %w", err)
		}
		k.idSyntax = re
	}
	if k.MaxLen == 0 {
		k.MaxLen = 255
	}
	return nil
}

// CheckValue reports whether value is a well-formed name of this kind.
func (k KindInfo) CheckValue(value string) error {
	segs := strings.Split(value, "/")
	if len(segs) != k.Segments {
		return fmt.Errorf("%q is not a %s name (%s)", value, k.Noun, k.Hint)
	}
	for i, s := range segs {
		if len(s) > k.MaxLen || !k.syntax[i].MatchString(s) {
			return fmt.Errorf("%q is not a %s name (%s)", value, k.Noun, k.Hint)
		}
	}
	return nil
}

// IsID reports whether value is an identifier (a number or a GUID) rather
// than a name; the segment checked is the last one.
func (k KindInfo) IsID(value string) bool {
	if k.idSyntax == nil {
		return false
	}
	segs := strings.Split(value, "/")
	return k.idSyntax.MatchString(segs[len(segs)-1])
}

// Fold returns the form in which values of this kind are compared. Only
// ASCII letters are folded: a vendor that also folds other letters can only
// make Countersign deny more, never allow more.
func (k KindInfo) Fold(value string) string {
	if !k.FoldCase {
		return value
	}
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, value)
}

// Rules says, for one server, how to find the targets of tool calls and
// resource URIs. It is data: the policy package interprets it.
type Rules struct {
	// Kinds are the target kinds this server's allowlist holds.
	Kinds []Kind `json:"kinds"`
	// Targetless lists tools that touch no repository, project or space,
	// such as GitHub's get_me; they are never flagged "target unknown".
	Targetless []string `json:"targetless,omitempty"`
	// Rules apply to the tools they name; every rule that applies adds its
	// targets (or its unknown reason).
	Rules []ToolRule `json:"rules"`
	// Fallback applies to tools the catalog does not know. Such a call is
	// always flagged "target unknown", but targets found by the fallback
	// are still checked against the allowlist.
	Fallback []TargetRule `json:"fallback,omitempty"`
	// Resources map resource URI schemes to target kinds.
	Resources []ResourceRule `json:"resources,omitempty"`
	// TargetlessSchemes are resource URI schemes that name no target, such
	// as GitHub's ui:// app resources.
	TargetlessSchemes []string `json:"targetlessSchemes,omitempty"`
	// Site, for a vendor whose one endpoint serves many sites, says where a
	// call names the site it acts on; the allowlist then holds only on the
	// server's own site.
	Site *SiteRule `json:"site,omitempty"`
}

// SiteRule ties a server to one vendor site, such as one Atlassian Cloud
// site out of the many a person can reach through mcp.atlassian.com. A call
// whose Arg names another site is outside the allowlist; one whose site
// cannot be matched to the server's is flagged for the person.
type SiteRule struct {
	// Arg is the argument naming the site: its address (a URL or host
	// name) or its ID.
	Arg string `json:"arg"`
	// Param is the server parameter holding the site's host name, such as
	// defra.atlassian.net.
	Param string `json:"param"`
	// IDParam is the server parameter holding the site's ID, which the
	// vendor's tools also accept in Arg.
	IDParam string `json:"idParam"`
	// Noun is what the vendor calls a site, for people: "Atlassian site".
	Noun string `json:"noun"`
}

// ToolRule applies to the named tools when When holds (or always, if nil).
// It either contributes Targets, or, when Unknown is set, marks the call
// "target unknown" with that reason.
type ToolRule struct {
	Tools   []string     `json:"tools"`
	When    *Condition   `json:"when,omitempty"`
	Targets []TargetRule `json:"targets,omitempty"`
	Unknown string       `json:"unknown,omitempty"`
	// Note explains what happens when a required argument is missing.
	Note string `json:"note,omitempty"`
}

// Condition tests one argument: its string value is one of In; or, with
// Present, it is given and not empty; or, with ID, it is (or holds) a
// number or something that could be read as a GUID, such as an Azure
// DevOps repository given by ID rather than by name.
type Condition struct {
	Arg     string   `json:"arg"`
	In      []string `json:"in,omitempty"`
	Present bool     `json:"present,omitempty"`
	ID      bool     `json:"id,omitempty"`
}

// Format says how a target is read from its arguments.
type Format string

// Target formats.
const (
	// FormatPath joins the arguments' string values with "/" (the default).
	FormatPath Format = ""
	// FormatList is like FormatPath, but the last argument may be a string
	// or an array of strings, giving one target per item.
	FormatList Format = "list"
	// FormatIssueKey reads the project key from a Jira issue key (ABC-123).
	FormatIssueKey Format = "issue-key"
	// FormatComponentKey reads the project key from a SonarQube component
	// key (project:path), a string or an array of strings.
	FormatComponentKey Format = "component-key"
	// FormatGitHubSearch reads repo:, org: and user: qualifiers from a
	// GitHub search query; optional owner and repo arguments scope it the
	// way search_issues does.
	FormatGitHubSearch Format = "github-search"
	// FormatJQL reads the projects a JQL query names and whether its
	// structure (project = X, project in (...), AND, OR, NOT) keeps it
	// within them.
	FormatJQL Format = "jql"
	// FormatCQL does the same for the spaces of a CQL query.
	FormatCQL Format = "cql"
	// FormatAWSARN reads the account or Region (by the rule's kind) of
	// every AWS ARN in the named arguments (all of them when none is
	// named), wherever it appears in them: a CLI command, a script, a
	// nested value.
	FormatAWSARN Format = "aws-arn"
	// FormatAWSRegion reads the Regions a CLI command or script names
	// (--region, region_name=, region=) from the first argument; when it
	// names none, the target is the second, such as "$region": the
	// server's own Region.
	FormatAWSRegion Format = "aws-region"
)

// TargetRule finds one target (or a list of them) in a call's arguments.
// An argument name starting with "$" takes the server parameter of that
// name instead, such as "$organization".
type TargetRule struct {
	Kind   Kind     `json:"kind"`
	Args   []string `json:"args"`
	Format Format   `json:"format,omitempty"`
	// Optional means: if none of the arguments is given, there is simply no
	// target here. Otherwise a missing argument makes the target unknown.
	Optional bool `json:"optional,omitempty"`
	// OwnerWide means: if only the first argument (the owner) is given,
	// the target is every repository of that owner.
	OwnerWide bool `json:"ownerWide,omitempty"`
}

// ResourceRule says that URIs scheme://a/b/... name a target of Kind made
// of their first segments (as many as the kind has).
type ResourceRule struct {
	Scheme string `json:"scheme"`
	Kind   Kind   `json:"kind"`
}

var (
	toolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	argNamePattern  = regexp.MustCompile(`^\$?[A-Za-z][A-Za-z0-9_]{0,63}$`)
	schemePattern   = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
)

func (r *Rules) validate(params map[string]bool) error {
	if len(r.Kinds) == 0 {
		return errors.New("kinds: at least one is required")
	}
	allowed := map[Kind]bool{}
	for _, k := range r.Kinds {
		if _, ok := kinds[k]; !ok {
			return fmt.Errorf("kinds: %q is not defined", k)
		}
		allowed[k] = true
	}
	targetless := map[string]bool{}
	for _, t := range r.Targetless {
		if !toolNamePattern.MatchString(t) {
			return fmt.Errorf("targetless: %q is not a tool name", t)
		}
		if targetless[t] {
			return fmt.Errorf("targetless: %q is listed twice", t)
		}
		targetless[t] = true
	}
	decided := map[string]bool{}
	for i, tr := range r.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if len(tr.Tools) == 0 {
			return fmt.Errorf("%s: tools is empty", field)
		}
		seen := map[string]bool{}
		for _, t := range tr.Tools {
			if !toolNamePattern.MatchString(t) {
				return fmt.Errorf("%s: %q is not a tool name", field, t)
			}
			if targetless[t] {
				return fmt.Errorf("%s: %q is also listed as targetless", field, t)
			}
			if seen[t] {
				return fmt.Errorf("%s: %q is listed twice", field, t)
			}
			seen[t] = true
		}
		if (tr.Unknown == "") == (len(tr.Targets) == 0) {
			return fmt.Errorf("%s: a rule has either targets or an unknown reason", field)
		}
		if tr.When != nil {
			if !argNamePattern.MatchString(tr.When.Arg) || strings.HasPrefix(tr.When.Arg, "$") {
				return fmt.Errorf("%s: when.arg %q is not an argument name", field, tr.When.Arg)
			}
			kinds := 0
			for _, set := range []bool{tr.When.Present, len(tr.When.In) > 0, tr.When.ID} {
				if set {
					kinds++
				}
			}
			if kinds != 1 {
				return fmt.Errorf("%s: when needs exactly one of in, present and id", field)
			}
		}
		for j, t := range tr.Targets {
			if err := t.validate(allowed, params); err != nil {
				return fmt.Errorf("%s.targets[%d]: %w", field, j, err)
			}
		}
		for _, t := range tr.Tools {
			if len(tr.Targets) > 0 || tr.When == nil {
				decided[t] = true
			} else if !decided[t] {
				decided[t] = false
			}
		}
	}
	// A tool whose only rules are conditional "unknown" rules would look
	// targetless whenever the condition fails.
	for t, ok := range decided {
		if !ok {
			return fmt.Errorf("rules: %q has no target rule and no unconditional unknown rule", t)
		}
	}
	for j, t := range r.Fallback {
		if err := t.validate(allowed, params); err != nil {
			return fmt.Errorf("fallback[%d]: %w", j, err)
		}
		if !t.Optional {
			return fmt.Errorf("fallback[%d]: fallback rules must be optional", j)
		}
	}
	schemes := map[string]bool{}
	for i, rr := range r.Resources {
		if !schemePattern.MatchString(rr.Scheme) || schemes[rr.Scheme] {
			return fmt.Errorf("resources[%d]: scheme %q is invalid or repeated", i, rr.Scheme)
		}
		schemes[rr.Scheme] = true
		if !allowed[rr.Kind] {
			return fmt.Errorf("resources[%d]: kind %q is not one of this server's kinds", i, rr.Kind)
		}
	}
	for i, s := range r.TargetlessSchemes {
		if !schemePattern.MatchString(s) || schemes[s] {
			return fmt.Errorf("targetlessSchemes[%d]: scheme %q is invalid or repeated", i, s)
		}
		schemes[s] = true
	}
	if s := r.Site; s != nil {
		switch {
		case !argNamePattern.MatchString(s.Arg) || strings.HasPrefix(s.Arg, "$"):
			return fmt.Errorf("site: arg %q is not an argument name", s.Arg)
		case !params[s.Param] || !params[s.IDParam] || s.Param == s.IDParam:
			return errors.New("site: param and idParam must name two of the server's parameters")
		case s.Noun == "":
			return errors.New("site: noun is required")
		}
	}
	return nil
}

func (t TargetRule) validate(allowed map[Kind]bool, params map[string]bool) error {
	if !allowed[t.Kind] {
		return fmt.Errorf("kind %q is not one of this server's kinds", t.Kind)
	}
	info := kinds[t.Kind]
	if len(t.Args) == 0 && t.Format != FormatAWSARN {
		return errors.New("args is empty")
	}
	for _, a := range t.Args {
		if !argNamePattern.MatchString(a) {
			return fmt.Errorf("%q is not an argument name", a)
		}
		if strings.HasPrefix(a, "$") && !params[a[1:]] {
			return fmt.Errorf("%q names no server parameter", a)
		}
	}
	switch t.Format {
	case FormatPath, FormatList:
		if len(t.Args) != info.Segments && !(t.OwnerWide && len(t.Args) == 1) {
			return fmt.Errorf("a %s has %d segments but the rule has %d arguments", info.Noun, info.Segments, len(t.Args))
		}
	case FormatIssueKey, FormatComponentKey, FormatJQL, FormatCQL:
		if len(t.Args) != 1 || info.Segments != 1 {
			return fmt.Errorf("format %s takes one argument and a one-segment kind", t.Format)
		}
	case FormatAWSARN:
		if t.Kind != KindAWSAccount && t.Kind != KindAWSRegion {
			return errors.New("format aws-arn reads AWS accounts or Regions")
		}
	case FormatAWSRegion:
		if len(t.Args) != 2 || t.Kind != KindAWSRegion || strings.HasPrefix(t.Args[0], "$") {
			return errors.New("format aws-region takes a command argument and a default, for AWS Regions")
		}
	case FormatGitHubSearch:
		if (len(t.Args) != 1 && len(t.Args) != 3) || t.Kind != KindGitHubRepository {
			return errors.New("format github-search takes query, or query, owner and repo, for GitHub repositories")
		}
	default:
		return fmt.Errorf("format %q is unknown", t.Format)
	}
	if t.OwnerWide && (info.Segments != 2 || t.Format != FormatPath) {
		return errors.New("ownerWide needs a two-segment kind and the path format")
	}
	return nil
}
