package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/catalog"
)

func TestParseScopeQueryJQL(t *testing.T) {
	tests := []struct {
		name    string
		q       string
		values  []string // "KEY" for projects, "KEY-1!" for issue keys
		bounded bool
		why     string
	}{
		{"project equals", "project = FFC AND status = Open", []string{"FFC"}, true, ""},
		{"project in", "project in (FFC, PAY) ORDER BY created DESC", []string{"FFC", "PAY"}, true, ""},
		{"quoted project", `"project" = "FFC" AND assignee = currentUser()`, []string{"FFC"}, true, ""},
		{"single-quoted project", `'project' = 'FFC'`, []string{"FFC"}, true, ""},
		{"lower case keywords", "status = Done and PROJECT = ffc", []string{"ffc"}, true, ""},
		{"nested conjunction", "(project = FFC AND labels = x) AND priority = High", []string{"FFC"}, true, ""},
		{"AND with && and &", "project = FFC && status = Open & labels = x", []string{"FFC"}, true, ""},
		{"no spaces", "project=FFC&&status!=Done", []string{"FFC"}, true, ""},
		{"issue key", "key = FFC-12", []string{"FFC-12!"}, true, ""},
		{"issue keys", "issuekey in (FFC-1, PAY-2)", []string{"FFC-1!", "PAY-2!"}, true, ""},
		{"id holds issue keys", "id = FFC-3", []string{"FFC-3!"}, true, ""},
		{"order by project is not a clause", "status = Open ORDER BY project", nil, false, "does not limit"},
		{"order by alone", "ORDER BY created DESC, key ASC", nil, false, "does not limit"},
		{"empty query", "", nil, false, "does not limit"},
		{"no project", "assignee = currentUser() AND status != Done", nil, false, "does not limit"},

		{"history predicates", `project = FFC AND status was not in (Open) by currentUser() during ("2024/01/01", "2024/02/01")`, []string{"FFC"}, true, ""},
		{"changed with predicates", "project = FFC AND status changed to Done after -1d", []string{"FFC"}, true, ""},
		{"functions with arguments", `project = FFC AND created >= startOfDay(-7d) AND assignee in membersOf("jira-users")`, []string{"FFC"}, true, ""},
		{"custom fields and properties", `project = FFC AND "Story Points" > 5 AND cf[10000] ~ x AND issue.property[support].level = High`, []string{"FFC"}, true, ""},
		{"white space of every kind", "project = FFC\nAND\tstatus = Open\r\n", []string{"FFC"}, true, ""},

		// OR is bounded only when every side is.
		{"OR of projects", "project = FFC OR project = SECRET", []string{"FFC", "SECRET"}, true, ""},
		{"|| of projects", "project = FFC || project = SECRET", []string{"FFC", "SECRET"}, true, ""},
		{"| of projects", "project = FFC | project = SECRET", []string{"FFC", "SECRET"}, true, ""},
		{"|| without spaces", "project=FFC||project=SECRET", []string{"FFC", "SECRET"}, true, ""},
		{"|| with an unbounded side", "project = FFC || status = Open", []string{"FFC"}, false, "OR"},
		{"| with an unbounded side", "project = FFC | reporter = currentUser()", []string{"FFC"}, false, "OR"},
		{"or in any case", "project = FFC oR labels = x", []string{"FFC"}, false, "OR"},
		{"OR inside an AND is bounded by the AND", "project = FFC AND (status = Open OR labels = x)", []string{"FFC"}, true, ""},
		{"AND binds tighter than OR", "project = FFC AND status = Open OR labels = x", []string{"FFC"}, false, "OR"},
		{"OR of bounded groups", "(project = FFC AND a = b) || (key = PAY-1 AND c = d)", []string{"FFC", "PAY-1!"}, true, ""},

		// NOT.
		{"boolean NOT", "NOT project = FFC", nil, false, "NOT"},
		{"bang NOT", "!project = FFC", nil, false, "NOT"},
		{"bang NOT of a group", "!(project = FFC)", nil, false, "NOT"},
		{"NOT beside a bounded clause", "project = FFC AND !(status = Done)", []string{"FFC"}, true, ""},
		{"NOT of a project inside an AND", "status = Open AND NOT project = SECRET", nil, false, "NOT"},
		{"double NOT names the project", "NOT NOT project = SECRET", []string{"SECRET"}, false, "NOT"},
		{"NOT of != names the project", "NOT project != SECRET", []string{"SECRET"}, false, "NOT"},
		{"OR with a NOT", "project = FFC OR NOT project = FFC", []string{"FFC"}, false, "NOT"},

		// Operators that do not bound.
		{"is not is an operator", "project = FFC AND resolution is not EMPTY", []string{"FFC"}, true, ""},
		{"not in is an operator", "project = FFC AND status not in (Done)", []string{"FFC"}, true, ""},
		{"project not in does not bound", "project not in (SECRET)", nil, false, "does not limit"},
		{"project != does not bound", "project != SECRET", nil, false, "does not limit"},
		{"project ~ does not bound", "project ~ FFC", nil, false, "does not limit"},
		{"project was names but does not bound", "project was FFC", []string{"FFC"}, false, "does not limit"},
		{"project was in", "project was in (FFC, SECRET) BY admin DURING ('2024/01/01', '2024/02/01')", []string{"FFC", "SECRET"}, false, "does not limit"},
		{"project changed", "project changed FROM FFC TO SECRET AND project = FFC", []string{"FFC"}, true, ""},
		{"key range does not bound", "key > FFC-10", nil, false, "does not limit"},
		{"function does not bound", "project in projectsLeadByUser()", nil, false, "does not limit"},
		{"function with arguments", `project in projectsWhereUserHasRole("Developers")`, nil, false, "does not limit"},
		{"function in list names the rest", "project in (FFC, projectsWhereUserHasRole(Dev))", []string{"FFC"}, false, "does not limit"},
		{"function after OR", "project = FFC OR project in projectsWhereUserHasRole(Dev)", []string{"FFC"}, false, "OR"},
		{"EMPTY does not bound", "project = EMPTY", nil, false, "does not limit"},
		{"NULL in a list", "project in (FFC, null)", []string{"FFC"}, false, "does not limit"},
		{"nested list", "project in ((FFC), SECRET)", []string{"FFC", "SECRET"}, false, "does not limit"},
		{"value after ~ is not a field", "summary ~ project AND status = x", nil, false, "does not limit"},
		{"project in a string is text", `summary ~ "project = FFC"`, nil, false, "does not limit"},
		{"OR in a string is text", `project = FFC AND summary ~ "a || b OR c"`, []string{"FFC"}, true, ""},
		{"parent does not bound", "parent = FFC-1", nil, false, "does not limit"},
		{"sprint does not bound", "sprint in openSprints()", nil, false, "does not limit"},
		{"saved filter does not bound", "filter = 10001", nil, false, "does not limit"},
		{"custom field", "cf[10010] = FFC", nil, false, "does not limit"},
		{"entity property", "issue.property[meta].project = FFC", nil, false, "does not limit"},
		{"project with brackets is a property", "project[x] = FFC", nil, false, "does not limit"},
		{"Unicode folding is not ASCII", "proj\u212Aect = FFC", nil, false, "does not limit"},

		// Quoting and escapes.
		{"project by name", `project = "Farming Payments"`, []string{"Farming Payments"}, true, ""},
		{"escaped quote", `summary ~ "a \" OR b" AND project = FFC`, []string{"FFC"}, true, ""},
		{"escaped single quote", `summary ~ 'it\'s || x' AND project = FFC`, []string{"FFC"}, true, ""},
		{"unicode escape", `project = "\u0046FC"`, []string{"FFC"}, true, ""},
		{"escaped space in a word", `project = FFC\ OR\ x`, []string{"FFC OR x"}, true, ""},
		{"escaped field name", `pro\u006aect = FFC`, []string{"FFC"}, true, ""},
		{"no-break space is part of a word", "project = FFC\u00a0OR\u00a0project = SECRET", nil, false, "could not be read"},
		{"escaped keyword is refused", `project = FFC \u004fR project = SECRET`, nil, false, "could not be read"},

		// What Jira refuses, or this parser does not know.
		{"unterminated string", `project = "FFC`, nil, false, "could not be read"},
		{"bad escape", `project = "F\qC"`, nil, false, "could not be read"},
		{"short unicode escape", `project = "\u00F"`, nil, false, "could not be read"},
		{"reserved character", "project = FFC; project = SECRET", nil, false, "could not be read"},
		{"control character", "project = FFC\x00 OR x = y", nil, false, "could not be read"},
		{"tab in a quoted string", "summary ~ \"a\tb\" AND project = FFC", nil, false, "could not be read"},
		{"invalid UTF-8", "project = FF\xffC", nil, false, "could not be read"},
		{"missing operator between clauses", "project = FFC status = Open", nil, false, "could not be read"},
		{"triple pipe", "project = FFC ||| project = SECRET", nil, false, "could not be read"},
		{"unbalanced parenthesis", "(project = FFC", nil, false, "could not be read"},
		{"trailing OR", "project = FFC OR", nil, false, "could not be read"},
		{"clause after ORDER BY", "project = FFC ORDER BY created OR project = SECRET", nil, false, "could not be read"},
		{"empty list", "project in ()", nil, false, "could not be read"},
		{"changed with a value", "project changed SECRET", nil, false, "could not be read"},
		{"deep nesting", strings.Repeat("(", 200) + "project = FFC" + strings.Repeat(")", 200), nil, false, "could not be read"},
		{"deep NOT", strings.Repeat("NOT ", 200) + "project = FFC", nil, false, "could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseScopeQuery(tt.q, jqlFields)
			var values []string
			for _, v := range got.values {
				if v.issueKey {
					values = append(values, v.text+"!")
				} else {
					values = append(values, v.text)
				}
			}
			if diff := cmp.Diff(tt.values, values, cmpopts.EquateEmpty()); diff != "" || got.bounded != tt.bounded {
				t.Errorf("parseScopeQuery(%q) = %q bounded=%v, want bounded=%v (-want +got values):\n%s", tt.q, values, got.bounded, tt.bounded, diff)
			}
			if !strings.Contains(got.why, tt.why) || (got.bounded != (got.why == "")) {
				t.Errorf("parseScopeQuery(%q).why = %q, want it to mention %q", tt.q, got.why, tt.why)
			}
		})
	}
}

func TestParseScopeQueryCQL(t *testing.T) {
	tests := []struct {
		q       string
		values  []string
		bounded bool
	}{
		{`space = ENG AND type = page`, []string{"ENG"}, true},
		{`space.key in ("ENG", "OPS") AND text ~ "deploy"`, []string{"ENG", "OPS"}, true},
		{`text ~ "deploy"`, nil, false},
		{`space = ENG OR space = SECRET`, []string{"ENG", "SECRET"}, true},
		{`space = ENG || space = SECRET`, []string{"ENG", "SECRET"}, true},
		{`space = ENG | type = page`, []string{"ENG"}, false},
		{`space = ENG OR ancestor = 12345`, []string{"ENG"}, false},
		{`space = currentSpace()`, nil, false},
		{`space.title = ENG`, nil, false}, // a title is not a key
		{`NOT space = SECRET`, nil, false},
		{`space != SECRET`, nil, false},
		{`project = FFC`, nil, false}, // a JQL field means nothing in CQL
	}
	for _, tt := range tests {
		got := parseScopeQuery(tt.q, cqlFields)
		var values []string
		for _, v := range got.values {
			values = append(values, v.text)
		}
		if diff := cmp.Diff(tt.values, values, cmpopts.EquateEmpty()); diff != "" || got.bounded != tt.bounded {
			t.Errorf("CQL %q = %v bounded=%v, want %v bounded=%v", tt.q, values, got.bounded, tt.values, tt.bounded)
		}
		if !got.bounded && !strings.Contains(got.why, "space") && !strings.Contains(got.why, "NOT") {
			t.Errorf("CQL %q: why %q does not speak of spaces", tt.q, got.why)
		}
	}
}

// FuzzParseScopeQuery checks that the JQL/CQL reader never panics, that a
// bounded query reports what bounds it, and, through the whole policy, that
// a query widened with a project outside the allowlist, or with a part that
// is not limited at all, is never judged to be in the allowlist.
func FuzzParseScopeQuery(f *testing.F) {
	f.Add("project = FFC AND status = Open")
	f.Add("project in (A, B) ORDER BY key")
	f.Add(`key in (A-1, "B-2") AND NOT x = y`)
	f.Add(`space = "ENG" AND text ~ 'a\'b'`)
	f.Add(`project = FFC || project = SECRET`)
	f.Add(`(project = FFC) & !(labels was in (a, b) BY x) | status changed FROM a TO b`)
	f.Add(`cf[10010] = x AND issue.property[p].q = "\u0041" ORDER BY created DESC`)
	f.Add(`project = FFC\ `)
	p, err := New(Config{Name: "Atlassian", CatalogID: "atlassian", Allowlist: map[catalog.Kind][]string{
		catalog.KindJiraProject:     {"FFC*", "PAY"},
		catalog.KindConfluenceSpace: {"ENG"},
	}})
	if err != nil {
		f.Fatal(err)
	}
	inAllowlist := func(d Decision) bool {
		return d.Action == ActionReview && !d.TargetUnknown
	}
	check := func(tool, arg, q string) Decision {
		raw, err := json.Marshal(map[string]string{arg: q})
		if err != nil {
			panic(err)
		}
		return p.Check(Call{Tool: tool, Arguments: raw})
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, fields := range []map[string]bool{jqlFields, cqlFields} {
			sc := parseScopeQuery(q, fields)
			if sc.bounded == (sc.why != "") {
				t.Fatalf("%q: bounded %v with reason %q", q, sc.bounded, sc.why)
			}
			if sc.bounded && len(sc.values) == 0 {
				t.Fatalf("bounded %q has no values", q)
			}
		}
		for _, c := range []struct{ tool, arg, field, outside string }{
			{"searchJiraIssuesUsingJql", "jql", "project", "ZZZ"},
			{"searchConfluenceUsingCql", "cql", "space", "ZZZ"},
		} {
			widened := []string{
				q + " OR " + c.field + " = " + c.outside,
				q + " || " + c.field + " in (" + c.outside + ")",
				q + " | " + c.field + " = " + c.outside,
				"(" + q + ") OR " + c.field + " = " + c.outside,
				c.field + " = " + c.outside + " OR " + q,
				q + " OR status = Open",
				q + " | labels = x",
				"NOT (" + q + ")",
				"!" + q,
			}
			for _, w := range widened {
				if d := check(c.tool, c.arg, w); inAllowlist(d) {
					t.Fatalf("%s %q judged in the allowlist: %s", c.arg, w, d.Reason)
				}
			}
		}
	})
}
