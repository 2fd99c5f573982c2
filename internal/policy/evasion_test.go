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
	atl := newPolicy(t, "atlassian", atlSite, map[catalog.Kind][]string{
		catalog.KindJiraProject:     {"FFC*"},
		catalog.KindConfluenceSpace: {"ENG"},
	})
	jql := func(q string) string {
		return mustJSON(t, map[string]string{"cloudId": "defra.atlassian.net", "jql": q})
	}
	cql := func(q string) string {
		return mustJSON(t, map[string]string{"cloudId": "defra.atlassian.net", "cql": q})
	}
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
				action: ActionReview, targets: []string{"FFC"}, reasonHas: "Touches FFC on defra.atlassian.net, in the allowlist."},
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

// TestAzureDevOpsOrganisationWideIDs: Azure DevOps tools that take an
// organisation-wide ID beside a project argument. The project names FFC,
// but nothing proves the build, pull request, repository or plan is in it,
// so each call is flagged "target unknown" rather than judged in the
// allowlist; a project argument outside the allowlist is still denied.
func TestAzureDevOpsOrganisationWideIDs(t *testing.T) {
	p := newPolicy(t, "azure-devops", map[string]string{"organization": "defra"}, map[catalog.Kind][]string{
		catalog.KindAzureDevOpsProject: {"defra/FFC"},
	})
	const guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	unknown := func(name, tool, args, has string) checkCase {
		return checkCase{name: name, tool: tool, args: args, action: ActionReview, targets: []string{"defra/FFC"}, unknown: true, unknownHas: has}
	}
	confined := func(name, tool, args string) checkCase {
		return checkCase{name: name, tool: tool, args: args, action: ActionReview, targets: []string{"defra/FFC"}, reasonHas: "in the allowlist."}
	}
	runChecks(t, p, []checkCase{
		unknown("build log by build ID", "pipelines_build_log", `{"action":"list","project":"FFC","buildId":4711}`, "build"),
		unknown("build artifact by build ID", "pipelines_artifact", `{"action":"list","project":"FFC","buildId":4711}`, "build"),
		unknown("build status by build ID", "pipelines_build", `{"action":"get_status","project":"FFC","buildId":4711}`, "build"),
		unknown("test results by build ID", "testplan_show_test_results_from_build_id", `{"project":"FFC","buildid":4711}`, "build"),
		unknown("pipeline runs by pipeline ID", "pipelines_run", `{"action":"list","project":"FFC","pipelineId":12}`, "pipeline"),
		unknown("run a pipeline by ID", "pipelines_write", `{"action":"run_pipeline","project":"FFC","pipelineId":12}`, "pipeline"),
		unknown("retry a build stage", "pipelines_write", `{"action":"update_build_stage","project":"FFC","buildId":4711,"stageName":"deploy"}`, "build"),
		unknown("definition revisions by ID", "pipelines_definition", `{"action":"list_revisions","project":"FFC","definitionId":3}`, "definition"),
		unknown("test suites of a plan", "testplan", `{"action":"list_suites","project":"FFC","planId":9}`, "test plan"),
		unknown("add test cases to a suite", "testplan_test_suite_write", `{"action":"add_test_cases","project":"FFC","planId":9,"suiteId":10,"testCaseIds":"11"}`, "test"),
		unknown("update test case steps", "testplan_test_case_write", `{"action":"update_steps","project":"FFC","id":77,"steps":"1. x"}`, "test case"),
		unknown("file from a repository GUID", "repo_file", `{"action":"get_content","project":"FFC","repositoryId":"`+guid+`","path":"/a"}`, "repository"),
		unknown("repository GUID without hyphens", "repo_branch", `{"action":"list","project":"FFC","repositoryId":"0f8fad5bd9cb469fa16570867728950e"}`, "repository"),
		unknown("repository GUID in braces", "repo_create_branch", `{"project":"FFC","repositoryId":"{`+guid+`}","branchName":"x"}`, "repository"),
		unknown("repository by GUID", "repo_repository", `{"action":"get","project":"FFC","repositoryNameOrId":"`+guid+`"}`, "repository"),
		unknown("alerts of a repository GUID", "advsec_get_alerts", `{"project":"FFC","repository":"`+guid+`"}`, "repository"),
		unknown("pull request by ID", "repo_pull_request", `{"action":"get","project":"FFC","repositoryId":"app","pullRequestId":5}`, "pull request"),
		unknown("vote on a pull request", "repo_pull_request_write", `{"action":"vote","project":"FFC","repositoryId":"app","pullRequestId":5,"vote":"Approved"}`, "pull request"),
		unknown("pull request threads", "repo_pull_request_thread", `{"action":"list","project":"FFC","repositoryId":"app","pullRequestId":5}`, "pull request"),
		unknown("wiki by GUID", "wiki", `{"action":"list_pages","project":"FFC","wikiIdentifier":"`+guid+`"}`, "wiki"),
		unknown("saved query by GUID", "wit_query", `{"action":"get","project":"FFC","query":"`+guid+`"}`, "query"),
		unknown("reorder work items", "wit_backlog", `{"action":"reorder","project":"FFC","team":"t","ids":[1,2]}`, "work items"),
		unknown("team capacity by iteration", "work", `{"action":"get_team_capacity","project":"FFC","team":"t","iterationId":"`+guid+`"}`, "iteration"),
		unknown("assign iterations", "work_iteration_write", `{"action":"assign","project":"FFC","team":"t","iterations":[{"identifier":"`+guid+`"}]}`, "iteration"),
		unknown("work item by ID", "wit_work_item", `{"action":"get","project":"FFC","id":42}`, "organisation-wide"),
		unknown("WIQL", "wit_query", `{"action":"wiql","project":"FFC","wiql":"SELECT [System.Id] FROM WorkItems"}`, "any project"),
		{name: "an ID does not excuse a project outside", tool: "pipelines_build_log", args: `{"action":"list","project":"Secret","buildId":4711}`,
			action: ActionDeny, targets: []string{"defra/Secret"}, unknown: true},

		// Near misses: names resolve within the project argument.
		confined("file from a repository name", "repo_file", `{"action":"get_content","project":"FFC","repositoryId":"ffc-app","path":"/a"}`),
		confined("builds listed in a project", "pipelines_build", `{"action":"list","project":"FFC","buildIds":[1,2]}`),
		confined("definitions listed in a project", "pipelines_definition", `{"action":"list","project":"FFC","repositoryId":"`+guid+`"}`),
		confined("test plans listed in a project", "testplan", `{"action":"list_plans","project":"FFC"}`),
		confined("wiki by name", "wiki", `{"action":"list_pages","project":"FFC","wikiIdentifier":"FFC.wiki"}`),
		confined("saved query by path", "wit_query", `{"action":"get","project":"FFC","query":"Shared Queries/Bugs"}`),
		confined("pull requests listed in a repository", "repo_pull_request", `{"action":"list","project":"FFC","repositoryId":"ffc-app"}`),
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

func TestHoldsID(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{`"0f8fad5b-d9cb-469f-a165-70867728950e"`, true},
		{`"0F8FAD5BD9CB469FA16570867728950E"`, true},
		{`"(0f8fad5b-d9cb-469f-a165-70867728950e)"`, true},
		{`"{0x0f8fad5b,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95,0x0e}}"`, true},
		{`42`, true},
		{`["app", "0f8fad5b-d9cb-469f-a165-70867728950e"]`, true},
		// .NET trims every Unicode white space around a GUID it parses.
		{`"\n0f8fad5b-d9cb-469f-a165-70867728950e"`, true},
		{`"\u00a00f8fad5b-d9cb-469f-a165-70867728950e"`, true},
		{`"0f8fad5b-d9cb-469f-a165-70867728950e\u3000"`, true},
		{`"\u000b{0f8fad5b-d9cb-469f-a165-70867728950e}\r"`, true},
		{`"ffc-app"`, false},
		{`"0f8fad5b-d9cb-469f-a165"`, false},
		{`"Shared Queries/Bugs"`, false},
		{`["app", "lib"]`, false},
		{`null`, false},
	}
	for _, tt := range tests {
		if got := (args{"x": json.RawMessage(tt.raw)}).holdsID("x"); got != tt.want {
			t.Errorf("holdsID(%s) = %v, want %v", tt.raw, got, tt.want)
		}
	}
	if (args{}).holdsID("x") {
		t.Error("an absent argument holds an ID")
	}
}
