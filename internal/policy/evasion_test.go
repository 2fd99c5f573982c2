package policy

import (
	"encoding/json"
	"testing"

	"github.com/countersign/countersign/internal/catalog"
)

// TestQueryEvasions holds searches that reach beyond the allowlist while
// naming a project, space or repository inside it (issue 11, finding 6),
// and near misses that must stay confined. Each evasion was judged "in the
// allowlist" before the query readers followed the vendors' grammars.
func TestQueryEvasions(t *testing.T) {
	atl := newPolicy(t, "atlassian", nil, map[catalog.Kind][]string{
		catalog.KindJiraProject:     {"FFC*"},
		catalog.KindConfluenceSpace: {"ENG"},
	})
	jql := func(q string) string { return mustJSON(t, map[string]string{"cloudId": "c", "jql": q}) }
	cql := func(q string) string { return mustJSON(t, map[string]string{"cloudId": "c", "cql": q}) }
	const jira, conf = "searchJiraIssuesUsingJql", "searchConfluenceUsingCql"
	t.Run("jira", func(t *testing.T) {
		runChecks(t, atl, []checkCase{
			// Evasions.
			{name: "|| to another project", tool: jira, args: jql("project = FFC || project = SECRET"),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}, reasonHas: "SECRET is not in the allowlist"},
			{name: "| to another project", tool: jira, args: jql("project = FFC | project = SECRET"),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "|| to every project", tool: jira, args: jql("project = FFC || status = Open"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "OR", reasonHas: "more is unknown"},
			{name: "| to a function", tool: jira, args: jql(`project = FFC | project in projectsWhereUserHasRole("Developers")`),
				action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "OR"},
			{name: "| to the current user", tool: jira, args: jql("project = FFC | reporter = currentUser()"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true},
			{name: "|| after a quoted string", tool: jira, args: jql(`project = FFC AND summary ~ 'it\'s' || project = SECRET`),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "|| with quoted fields", tool: jira, args: jql(`"project" = FFC || "project" = "SECRET"`),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "|| to an issue key", tool: jira, args: jql("issuekey = FFC-1 || issue = SECRET-2"),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "|| to id", tool: jira, args: jql("key = FFC-1 || id = SECRET-2"),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "|| to not in", tool: jira, args: jql("project in (FFC) || project not in (FFC)"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true},
			{name: "AND then || !=", tool: jira, args: jql("project = FFC AND status = Open || project != FFC"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true},
			{name: "history clause names another project", tool: jira, args: jql("project = FFC AND project was SECRET"),
				action: ActionDeny, targets: []string{"FFC", "SECRET"}},
			{name: "issues moved out of a project", tool: jira, args: jql("project was FFC"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true},
			{name: "project by number", tool: jira, args: jql("project = 10000 || project = FFC"),
				action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "gave an ID"},
			{name: "NOT of a project", tool: jira, args: jql("status = Open AND NOT project = FFC"),
				action: ActionReview, unknown: true, unknownHas: "NOT"},
			{name: "parent can be in any project", tool: jira, args: jql("parent = FFC-1"),
				action: ActionReview, unknown: true, unknownHas: "does not limit"},
			{name: "unreadable", tool: jira, args: jql("project = FFC; project = SECRET"),
				action: ActionReview, unknown: true, unknownHas: "could not be read"},

			// Near misses that stay confined.
			{name: "AND with a project", tool: jira, args: jql("project = FFC AND status = Open"),
				action: ActionReview, targets: []string{"FFC"}, reasonHas: "Touches FFC, in the allowlist."},
			{name: "&& with a project", tool: jira, args: jql("project = FFC && status = Open ORDER BY created DESC"),
				action: ActionReview, targets: []string{"FFC"}},
			{name: "OR inside a project AND", tool: jira, args: jql("project = FFC AND (status = Open || labels = urgent)"),
				action: ActionReview, targets: []string{"FFC"}},
			{name: "NOT inside a project AND", tool: jira, args: jql("project = FFC AND !(status = Done)"),
				action: ActionReview, targets: []string{"FFC"}},
			{name: "OR of allowlisted projects", tool: jira, args: jql("project = FFC || project = FFCPAY"),
				action: ActionReview, targets: []string{"FFC", "FFCPAY"}},
			{name: "OR in quoted text", tool: jira, args: jql(`project = FFC AND text ~ "a || b OR c"`),
				action: ActionReview, targets: []string{"FFC"}},
		})
	})
	t.Run("confluence", func(t *testing.T) {
		runChecks(t, atl, []checkCase{
			{name: "|| to another space", tool: conf, args: cql("space = ENG || space = HR"),
				action: ActionDeny, targets: []string{"ENG", "HR"}},
			{name: "| to every space", tool: conf, args: cql("space = ENG | type = page"),
				action: ActionReview, targets: []string{"ENG"}, unknown: true, unknownHas: "OR"},
			{name: "NOT of a space", tool: conf, args: cql("type = page AND NOT space = ENG"),
				action: ActionReview, unknown: true, unknownHas: "NOT"},
			{name: "space title is not a key", tool: conf, args: cql(`space.title = "ENG"`),
				action: ActionReview, unknown: true},
			{name: "AND with a space", tool: conf, args: cql(`space = ENG && text ~ "deploy"`),
				action: ActionReview, targets: []string{"ENG"}},
		})
	})

	gh := newPolicy(t, "github", nil, map[catalog.Kind][]string{
		catalog.KindGitHubRepository: {"DEFRA/ffc-*"},
	})
	search := func(q string) string { return mustJSON(t, map[string]string{"query": q}) }
	t.Run("github", func(t *testing.T) {
		runChecks(t, gh, []checkCase{
			{name: "lower-case or", tool: "search_issues", args: search("repo:DEFRA/ffc-a or is:public"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
			{name: "OR against a parenthesis", tool: "search_code", args: search("repo:DEFRA/ffc-a (OR language:go)"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
			{name: "OR between parentheses", tool: "search_code", args: search("repo:DEFRA/ffc-a (panic)OR(language:go)"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
			{name: "escaped quotes hide OR", tool: "search_code", args: search(`repo:DEFRA/ffc-a "\"" OR language:go "\""`),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
			{name: "no-break spaces around OR", tool: "search_code", args: search("language:go\u00a0OR\u00a0x repo:DEFRA/ffc-a"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
			{name: "near miss: AND and parentheses", tool: "search_code", args: search("(repo:DEFRA/ffc-a) AND (panic language:go)"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
			{name: "near miss: words holding or", tool: "search_code", args: search("orange ORDER repo:DEFRA/ffc-a"),
				action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
		})
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
