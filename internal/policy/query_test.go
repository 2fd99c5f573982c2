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
		{"lower-case or may be an operator", "bug or crash repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}}},
		{"OR against a parenthesis", "repo:DEFRA/a (OR is:public)", searchScope{repos: []string{"DEFRA/a"}}},
		{"OR between parentheses", "repo:DEFRA/a (is:issue)OR(is:public)", searchScope{repos: []string{"DEFRA/a"}}},
		{"mixed-case NOT", "repo:DEFRA/a Not bug", searchScope{repos: []string{"DEFRA/a"}}},
		{"escaped quote can end a phrase elsewhere", `repo:DEFRA/a "\"" OR stars:>0 "\""`, searchScope{repos: []string{"DEFRA/a"}}},
		{"no-break spaces around OR", "is:public\u00a0OR\u00a0x repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}}},
		{"ideographic space", "is:public\u3000OR x repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}}},
		{"AND and parentheses stay exact", "(repo:DEFRA/a) AND (bug OR_x)", searchScope{repos: []string{"DEFRA/a"}, exact: true}},
		{"word containing or stays exact", "orange order repo:DEFRA/a", searchScope{repos: []string{"DEFRA/a"}, exact: true}},
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
		// Differential: an operator added to an exact query is always seen.
		for _, widened := range []string{q + " OR is:public", q + " or x", "NOT " + q, "(" + q + ")OR(x)"} {
			if parseGitHubSearch(widened).exact {
				t.Fatalf("%q is read as exact", widened)
			}
		}
	})
}
