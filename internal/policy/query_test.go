package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseGitHubSearch(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want searchScope
	}{
		{"one repo", "fix panic repo:DEFRA/ffc-pay", searchScope{repos: []string{"DEFRA/ffc-pay"}, exact: true}},
		{"two repos", "repo:DEFRA/a repo:DEFRA/b is:open", searchScope{repos: []string{"DEFRA/a", "DEFRA/b"}, exact: true}},
		{"org is owner-wide", "WithContext language:go org:DEFRA", searchScope{owners: []string{"DEFRA"}, exact: true}},
		{"user is owner-wide", "user:octocat stars:>10", searchScope{owners: []string{"octocat"}, exact: true}},
		{"qualifier names ignore case", "REPO:DEFRA/x", searchScope{repos: []string{"DEFRA/x"}, exact: true}},
		{"parenthesised", "(repo:DEFRA/a) is:pr", searchScope{repos: []string{"DEFRA/a"}, exact: true}},
		{"quoted value", `repo:"DEFRA/a" bug`, searchScope{repos: []string{"DEFRA/a"}, exact: true}},
		{"no scope", "machine learning in:name stars:>1000", searchScope{exact: true}},
		{"OR can widen", "repo:DEFRA/a OR is:public", searchScope{repos: []string{"DEFRA/a"}}},
		{"NOT can widen", "NOT repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}}},
		{"negated scope", "-repo:DEFRA/a bug", searchScope{}},
		{"unreadable repo", "repo:DEFRA bug", searchScope{}},
		{"wildcard repo is not a name", "repo:DEFRA/* bug", searchScope{}},
		{"qualifier in a phrase still counts", `"repo:DEFRA/x" repo:DEFRA/a`, searchScope{repos: []string{"DEFRA/a"}}},
		{"qualifier after punctuation", "bug,repo:evil/x repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}}},
		{"unbalanced quote", `repo:DEFRA/a "open`, searchScope{repos: []string{"DEFRA/a"}}},
		{"lower-case or is a word", "bug or crash repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}, exact: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseGitHubSearch(tt.q)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(searchScope{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parseGitHubSearch(%q) (-want +got):\n%s", tt.q, diff)
			}
		})
	}
}

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
		{"lower case keywords", "status = Done and PROJECT = ffc", []string{"ffc"}, true, ""},
		{"nested conjunction", "(project = FFC AND labels = x) AND priority = High", []string{"FFC"}, true, ""},
		{"issue key", "key = FFC-12", []string{"FFC-12!"}, true, ""},
		{"issue keys", "issuekey in (FFC-1, PAY-2)", []string{"FFC-1!", "PAY-2!"}, true, ""},
		{"order by project is not a clause", "status = Open ORDER BY project", nil, false, "does not limit"},
		{"no project", "assignee = currentUser() AND status != Done", nil, false, "does not limit"},
		{"OR widens", "project = FFC OR project = SECRET", nil, false, "OR"},
		{"OR anywhere widens", "project = FFC AND (status = Open OR labels = x)", nil, false, "OR"},
		{"boolean NOT", "NOT project = FFC", nil, false, "NOT"},
		{"bang NOT", "project = FFC AND !(status = Done)", nil, false, "NOT"},
		{"is not is an operator", "project = FFC AND resolution is not EMPTY", []string{"FFC"}, true, ""},
		{"not in is an operator", "project = FFC AND status not in (Done)", []string{"FFC"}, true, ""},
		{"project not in does not bound", "project not in (SECRET)", nil, false, "does not limit"},
		{"project != does not bound", "project != SECRET", nil, false, "does not limit"},
		{"function does not bound", "project in projectsLeadByUser()", nil, false, "does not limit"},
		{"function in list does not bound", "project in (FFC, projectsWhereUserHasRole(Dev))", nil, false, "does not limit"},
		{"EMPTY does not bound", "project = EMPTY", nil, false, "does not limit"},
		{"value after ~ is not a field", "summary ~ project AND status = x", nil, false, "does not limit"},
		{"project in a string is text", `summary ~ "project = FFC"`, nil, false, "does not limit"},
		{"unterminated string", `project = "FFC`, nil, false, "could not be read"},
		{"project by name", `project = "Farming Payments"`, []string{"Farming Payments"}, true, ""},
		{"escaped quote", `summary ~ "a \" OR b" AND project = FFC`, []string{"FFC"}, true, ""},
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
				t.Errorf("parseScopeQuery(%q) = %v bounded=%v (-want +got values):\n%s", tt.q, values, got.bounded, diff)
			}
			if !strings.Contains(got.why, tt.why) {
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
		{`space = ENG OR space = SECRET`, nil, false},
		{`space = currentSpace()`, nil, false},
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
	}
}

// FuzzParseGitHubSearch checks that a query read as exact names exactly
// the qualifiers that appear in it, and never panics.
func FuzzParseGitHubSearch(f *testing.F) {
	f.Add("repo:DEFRA/a is:open")
	f.Add(`"repo:x/y" org:DEFRA OR -user:z`)
	f.Add("(repo:a/b) NOT bug")
	f.Fuzz(func(t *testing.T, q string) {
		sc := parseGitHubSearch(q)
		if !sc.exact {
			return
		}
		if got, want := len(sc.repos)+len(sc.owners), len(scopeMention.FindAllStringIndex(q, -1)); got != want {
			t.Fatalf("exact scope of %q has %d qualifiers, the query mentions %d", q, got, want)
		}
		for _, r := range sc.repos {
			if !strings.Contains(strings.ToLower(q), strings.ToLower(r)) {
				t.Fatalf("scope %q is not in query %q", r, q)
			}
		}
	})
}

// FuzzParseScopeQuery checks that a bounded JQL query never contains OR and
// that every value it reports appears in the query.
func FuzzParseScopeQuery(f *testing.F) {
	f.Add("project = FFC AND status = Open")
	f.Add("project in (A, B) ORDER BY key")
	f.Add(`key in (A-1, "B-2") AND NOT x`)
	f.Add(`space = "ENG" AND text ~ 'a\'b'`)
	f.Fuzz(func(t *testing.T, q string) {
		for _, fields := range []map[string]bool{jqlFields, cqlFields} {
			sc := parseScopeQuery(q, fields)
			if !sc.bounded {
				if sc.why == "" {
					t.Fatalf("unbounded %q has no reason", q)
				}
				continue
			}
			if len(sc.values) == 0 {
				t.Fatalf("bounded %q has no values", q)
			}
			toks, _ := lexQuery(q)
			for i, tk := range toks {
				if tk.kind == qWord && strings.EqualFold(tk.text, "order") && i+1 < len(toks) && strings.EqualFold(toks[i+1].text, "by") {
					break
				}
				if tk.kind == qWord && strings.EqualFold(tk.text, "or") {
					t.Fatalf("bounded %q contains OR", q)
				}
			}
		}
	})
}
