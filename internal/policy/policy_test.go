package policy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/catalog"
)

// newPolicy builds a policy for a catalog entry, failing the test on error.
func newPolicy(t testing.TB, id string, params map[string]string, allow map[catalog.Kind][]string, hidden ...string) *Policy {
	t.Helper()
	e, ok := catalog.Lookup(id)
	if !ok {
		t.Fatalf("no catalog entry %s", id)
	}
	p, err := New(Config{Name: e.Name, CatalogID: id, Params: params, Allowlist: allow, Hidden: hidden})
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	return p
}

type checkCase struct {
	name       string
	tool       string
	args       string
	action     Action
	targets    []string // "value", or "*owner" for a wide target
	unknown    bool
	reasonHas  string
	unknownHas string
}

func runChecks(t *testing.T, p *Policy, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Check(Call{Tool: tt.tool, Arguments: json.RawMessage(tt.args)})
			var got []string
			for _, tg := range d.Targets {
				if tg.Wide {
					got = append(got, "*"+tg.Value)
				} else {
					got = append(got, tg.Value)
				}
			}
			if d.Action != tt.action {
				t.Errorf("Action = %v, want %v (reason %q)", d.Action, tt.action, d.Reason)
			}
			if diff := cmp.Diff(tt.targets, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Targets (-want +got):\n%s", diff)
			}
			if d.TargetUnknown != tt.unknown {
				t.Errorf("TargetUnknown = %v, want %v (unknown %q)", d.TargetUnknown, tt.unknown, d.Unknown)
			}
			if d.TargetUnknown != (len(d.Unknown) > 0) {
				t.Errorf("TargetUnknown = %v but Unknown = %q", d.TargetUnknown, d.Unknown)
			}
			if !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reasonHas)
			}
			if tt.unknownHas != "" && !strings.Contains(strings.Join(d.Unknown, "; "), tt.unknownHas) {
				t.Errorf("Unknown = %q, want it to mention %q", d.Unknown, tt.unknownHas)
			}
			if d.Reason == "" {
				t.Error("Reason is empty")
			}
		})
	}
}

func TestCheckGitHub(t *testing.T) {
	p := newPolicy(t, "github", nil, map[catalog.Kind][]string{
		catalog.KindGitHubRepository: {"DEFRA/ffc-*", "DEFRA/shared-lib", "ORG2/*"},
	})
	runChecks(t, p, []checkCase{
		{name: "repository in the allowlist", tool: "get_file_contents", args: `{"owner":"DEFRA","repo":"ffc-pay","path":"README.md"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-pay"}, reasonHas: "in the allowlist"},
		{name: "owner and name compared without case", tool: "create_issue", args: `{"owner":"defra","repo":"FFC-Pay","title":"x"}`,
			action: ActionReview, targets: []string{"defra/FFC-Pay"}},
		{name: "repository outside the allowlist", tool: "create_issue", args: `{"owner":"DEFRA","repo":"secret-repo","title":"x"}`,
			action: ActionDeny, targets: []string{"DEFRA/secret-repo"},
			reasonHas: "Countersign denied this call: DEFRA/secret-repo is not in the allowlist for GitHub. Ask the user to add it in Countersign settings."},
		{name: "glob stays within the name", tool: "get_file_contents", args: `{"owner":"DEFRA","repo":"ffc"}`,
			action: ActionDeny, targets: []string{"DEFRA/ffc"}},
		{name: "targetless tool", tool: "get_me", args: `{}`, action: ActionReview, reasonHas: "touches no repository"},
		{name: "targetless tool without arguments", tool: "search_users", args: ``, action: ActionReview},
		{name: "repo qualifiers in a search", tool: "search_code", args: `{"query":"panic repo:DEFRA/ffc-a repo:DEFRA/shared-lib"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a", "DEFRA/shared-lib"}},
		{name: "search reaching a repository outside", tool: "search_code", args: `{"query":"panic repo:DEFRA/ffc-a repo:DEFRA/secret"}`,
			action: ActionDeny, targets: []string{"DEFRA/ffc-a", "DEFRA/secret"}, reasonHas: "DEFRA/secret is not in the allowlist"},
		{name: "org qualifier needs the whole owner", tool: "search_code", args: `{"query":"panic org:DEFRA"}`,
			action: ActionDeny, targets: []string{"*DEFRA"}, reasonHas: "every repository of DEFRA"},
		{name: "user qualifier covered by owner/*", tool: "search_repositories", args: `{"query":"user:ORG2 topic:go"}`,
			action: ActionReview, targets: []string{"*ORG2"}},
		{name: "unscoped search", tool: "search_code", args: `{"query":"password"}`,
			action: ActionReview, unknown: true, unknownHas: "not limited"},
		{name: "search_issues scoped by owner and repo", tool: "search_issues", args: `{"query":"is:open","owner":"DEFRA","repo":"ffc-a"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
		{name: "search_issues repo qualifier wins over owner and repo", tool: "search_issues", args: `{"query":"repo:DEFRA/secret bug","owner":"DEFRA","repo":"ffc-a"}`,
			action: ActionDeny, targets: []string{"DEFRA/secret"}},
		{name: "search_pull_requests with owner only is unscoped", tool: "search_pull_requests", args: `{"query":"is:open","owner":"DEFRA"}`,
			action: ActionReview, unknown: true},
		{name: "OR makes a search inexact", tool: "search_issues", args: `{"query":"repo:DEFRA/ffc-a OR is:public"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true, unknownHas: "OR"},
		{name: "owner-wide listing", tool: "list_discussions", args: `{"owner":"DEFRA"}`,
			action: ActionDeny, targets: []string{"*DEFRA"}, reasonHas: "Ask the user to add DEFRA/*"},
		{name: "owner-wide listing allowed", tool: "list_issue_types", args: `{"owner":"ORG2"}`,
			action: ActionReview, targets: []string{"*ORG2"}},
		{name: "owner-wide tool with a repository", tool: "list_discussions", args: `{"owner":"DEFRA","repo":"ffc-a"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
		{name: "projects belong to the owner", tool: "projects_list", args: `{"method":"list_projects","owner":"DEFRA"}`,
			action: ActionDeny, targets: []string{"*DEFRA"}},
		{name: "project item in another repository", tool: "projects_write", args: `{"method":"add_project_item","owner":"ORG2","project_number":1,"item_owner":"DEFRA","item_repo":"secret"}`,
			action: ActionDeny, targets: []string{"*ORG2", "DEFRA/secret"}},
		{name: "team members of an org", tool: "get_team_members", args: `{"org":"DEFRA","team_slug":"devs"}`,
			action: ActionDeny, targets: []string{"*DEFRA"}},
		{name: "create repository in an org", tool: "create_repository", args: `{"name":"ffc-new","organization":"DEFRA"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-new"}},
		{name: "create repository in the personal account", tool: "create_repository", args: `{"name":"ffc-new"}`,
			action: ActionReview, unknown: true, unknownHas: "user's own account"},
		{name: "fork into another org", tool: "fork_repository", args: `{"owner":"DEFRA","repo":"ffc-a","organization":"EVIL"}`,
			action: ActionDeny, targets: []string{"DEFRA/ffc-a", "EVIL/ffc-a"}, reasonHas: "EVIL/ffc-a"},
		{name: "fork into the personal account", tool: "fork_repository", args: `{"owner":"DEFRA","repo":"ffc-a"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
		{name: "dependency on another repository", tool: "issue_dependency_write", args: `{"method":"add","type":"blocked_by","owner":"DEFRA","repo":"ffc-a","issue_number":1,"related_issue_number":2,"related_owner":"DEFRA","related_repo":"secret"}`,
			action: ActionDeny, targets: []string{"DEFRA/ffc-a", "DEFRA/secret"}},
		{name: "sub-issue by global ID", tool: "add_sub_issue", args: `{"owner":"DEFRA","repo":"ffc-a","issue_number":1,"sub_issue_id":123456}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true, unknownHas: "sub_issue_id"},
		{name: "review thread by node ID", tool: "pull_request_review_write", args: `{"method":"resolve_thread","owner":"DEFRA","repo":"ffc-a","pullNumber":1,"threadId":"PRRT_x"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}, unknown: true},
		{name: "review create is fully known", tool: "pull_request_review_write", args: `{"method":"create","owner":"DEFRA","repo":"ffc-a","pullNumber":1}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
		{name: "gists are outside the allowlist's reach", tool: "create_gist", args: `{"filename":"a.txt","content":"x"}`,
			action: ActionReview, unknown: true, unknownHas: "gists"},
		{name: "notifications for one repository", tool: "list_notifications", args: `{"owner":"DEFRA","repo":"ffc-a"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-a"}},
		{name: "all notifications", tool: "list_notifications", args: `{}`,
			action: ActionReview, unknown: true},
		{name: "unknown tool still checked", tool: "brand_new_tool", args: `{"owner":"DEFRA","repo":"secret"}`,
			action: ActionDeny, targets: []string{"DEFRA/secret"}, unknown: true},
		{name: "unknown tool", tool: "brand_new_tool", args: `{"x":1}`,
			action: ActionReview, unknown: true, unknownHas: `no rule for the tool "brand_new_tool"`},
		{name: "missing repo", tool: "get_file_contents", args: `{"owner":"DEFRA"}`,
			action: ActionReview, unknown: true, unknownHas: "repo argument"},
		{name: "arguments not an object", tool: "get_file_contents", args: `["DEFRA","secret"]`,
			action: ActionReview, unknown: true, unknownHas: "not a JSON object"},
		{name: "arguments a string", tool: "get_file_contents", args: `"DEFRA/secret"`,
			action: ActionReview, unknown: true},
		{name: "owner not text", tool: "get_file_contents", args: `{"owner":5,"repo":"x"}`,
			action: ActionReview, unknown: true, unknownHas: "not text"},
		{name: "slash in the owner", tool: "get_file_contents", args: `{"owner":"DEFRA/ffc-a/../..","repo":"secret"}`,
			action: ActionDeny, reasonHas: "cannot be checked against the allowlist"},
		{name: "look-alike letters", tool: "get_file_contents", args: `{"owner":"DEFR\u0410","repo":"ffc-a"}`,
			action: ActionDeny, reasonHas: "the owner and repo arguments did not give a valid repository name"},
		{name: "escaped slash", tool: "get_file_contents", args: `{"owner":"DEFRA","repo":"ffc-a%2F..%2Fsecret"}`,
			action: ActionDeny},
		{name: "dot-dot repository", tool: "get_file_contents", args: `{"owner":"DEFRA","repo":".."}`,
			action: ActionDeny},
	})
}

func TestCheckAtlassian(t *testing.T) {
	p := newPolicy(t, "atlassian", atlSite, map[catalog.Kind][]string{
		catalog.KindJiraProject:     {"FFC*"},
		catalog.KindConfluenceSpace: {"ENG"},
	})
	runChecks(t, p, []checkCase{
		{name: "issue key in the allowlist", tool: "getJiraIssue", args: `{"cloudId":"defra.atlassian.net","issueIdOrKey":"FFC-12"}`,
			action: ActionReview, targets: []string{"FFC"}},
		{name: "issue key in lower case", tool: "editJiraIssue", args: `{"cloudId":"defra.atlassian.net","issueIdOrKey":"ffcpay-3","fields":{}}`,
			action: ActionReview, targets: []string{"ffcpay"}},
		{name: "issue key outside", tool: "addCommentToJiraIssue", args: `{"cloudId":"defra.atlassian.net","issueIdOrKey":"SECRET-1","commentBody":"x"}`,
			action: ActionDeny, targets: []string{"SECRET"}},
		{name: "numeric issue ID", tool: "getJiraIssue", args: `{"cloudId":"defra.atlassian.net","issueIdOrKey":"10001"}`,
			action: ActionReview, unknown: true, unknownHas: "issue ID"},
		{name: "numeric issue ID as a number", tool: "transitionJiraIssue", args: `{"cloudId":"defra.atlassian.net","issueIdOrKey":10001,"transition":{"id":"2"}}`,
			action: ActionReview, unknown: true},
		{name: "malformed issue key", tool: "getJiraIssue", args: `{"issueIdOrKey":"FFC-1/../../SECRET-2"}`,
			action: ActionDeny},
		{name: "create in a project", tool: "createJiraIssue", args: `{"cloudId":"defra.atlassian.net","projectKey":"SECRET","issueTypeName":"Task","summary":"x"}`,
			action: ActionDeny, targets: []string{"SECRET"}},
		{name: "project metadata by ID", tool: "getJiraProjectIssueTypesMetadata", args: `{"cloudId":"defra.atlassian.net","projectIdOrKey":"10000"}`,
			action: ActionReview, unknown: true},
		{name: "link across projects", tool: "createIssueLink", args: `{"cloudId":"defra.atlassian.net","inwardIssue":"FFC-1","outwardIssue":"SECRET-2","type":"Relates"}`,
			action: ActionDeny, targets: []string{"FFC", "SECRET"}},
		{name: "JQL limited to a project", tool: "searchJiraIssuesUsingJql", args: `{"cloudId":"defra.atlassian.net","jql":"project = FFC AND status = Open ORDER BY created"}`,
			action: ActionReview, targets: []string{"FFC"}},
		{name: "JQL reaching outside", tool: "searchJiraIssuesUsingJql", args: `{"cloudId":"defra.atlassian.net","jql":"project in (FFC, SECRET)"}`,
			action: ActionDeny, targets: []string{"FFC", "SECRET"}},
		{name: "JQL with issue keys", tool: "searchJiraIssuesUsingJql", args: `{"cloudId":"defra.atlassian.net","jql":"key in (FFC-1, SECRET-2)"}`,
			action: ActionDeny, targets: []string{"FFC", "SECRET"}},
		{name: "JQL without a project", tool: "searchJiraIssuesUsingJql", args: `{"cloudId":"defra.atlassian.net","jql":"assignee = currentUser()"}`,
			action: ActionReview, unknown: true, unknownHas: "does not limit"},
		{name: "JQL with OR", tool: "searchJiraIssuesUsingJql", args: `{"jql":"project = FFC OR reporter = currentUser()"}`,
			action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "OR", reasonHas: "more is unknown"},
		{name: "JQL naming a project by name", tool: "searchJiraIssuesUsingJql", args: `{"jql":"project = \"Farming Payments\""}`,
			action: ActionReview, unknown: true},
		{name: "page by ID", tool: "getConfluencePage", args: `{"cloudId":"defra.atlassian.net","pageId":"123456"}`,
			action: ActionReview, unknown: true, unknownHas: "page is chosen by its ID"},
		{name: "space by numeric ID", tool: "getPagesInConfluenceSpace", args: `{"cloudId":"defra.atlassian.net","spaceId":"98304"}`,
			action: ActionReview, unknown: true, unknownHas: "gave an ID"},
		{name: "space by key", tool: "createConfluencePage", args: `{"cloudId":"defra.atlassian.net","spaceId":"ENG","title":"t","body":"b"}`,
			action: ActionReview, targets: []string{"ENG"}},
		{name: "space by key outside", tool: "createConfluencePage", args: `{"cloudId":"defra.atlassian.net","spaceId":"HR","title":"t","body":"b"}`,
			action: ActionDeny, targets: []string{"HR"}},
		{name: "CQL limited to a space", tool: "searchConfluenceUsingCql", args: `{"cloudId":"defra.atlassian.net","cql":"space = ENG AND type = page"}`,
			action: ActionReview, targets: []string{"ENG"}},
		{name: "CQL outside", tool: "searchConfluenceUsingCql", args: `{"cloudId":"defra.atlassian.net","cql":"space in (ENG, HR)"}`,
			action: ActionDeny, targets: []string{"ENG", "HR"}},
		{name: "discovery tools are targetless", tool: "getVisibleJiraProjects", args: `{"cloudId":"defra.atlassian.net"}`,
			action: ActionReview},
		{name: "Rovo search", tool: "search", args: `{"query":"payments"}`,
			action: ActionReview, unknown: true},
	})
}

func TestCheckAzureDevOps(t *testing.T) {
	p := newPolicy(t, "azure-devops", map[string]string{"organization": "defra"}, map[catalog.Kind][]string{
		catalog.KindAzureDevOpsProject: {"DEFRA/FFC *"},
	})
	runChecks(t, p, []checkCase{
		{name: "project from the arguments, organisation from the server", tool: "repo_file", args: `{"action":"get_content","repositoryId":"r","path":"/a","project":"FFC Payments"}`,
			action: ActionReview, targets: []string{"defra/FFC Payments"}},
		{name: "project outside", tool: "pipelines_run", args: `{"action":"list","project":"Secret","pipelineId":1}`,
			action: ActionDeny, targets: []string{"defra/Secret"}, unknown: true},
		{name: "project by GUID", tool: "repo_branch", args: `{"action":"list","repositoryId":"r","project":"0f8fad5b-d9cb-469f-a165-70867728950e"}`,
			action: ActionReview, unknown: true, unknownHas: "gave an ID"},
		{name: "project omitted", tool: "repo_pull_request", args: `{"action":"get","repositoryId":"0f8fad5b-d9cb-469f-a165-70867728950e","pullRequestId":1}`,
			action: ActionReview, unknown: true},
		{name: "search across listed projects", tool: "search_code", args: `{"searchText":"x","project":["FFC Payments","Secret"]}`,
			action: ActionDeny, targets: []string{"defra/FFC Payments", "defra/Secret"}},
		{name: "search in one project given as text", tool: "search_workitem", args: `{"searchText":"x","project":"FFC Payments"}`,
			action: ActionReview, targets: []string{"defra/FFC Payments"}},
		{name: "search across the organisation", tool: "search_code", args: `{"searchText":"password"}`,
			action: ActionReview, unknown: true},
		{name: "work item create is in the project", tool: "wit_work_item_write", args: `{"action":"create","project":"FFC Payments","workItemType":"Task","fields":[{"name":"System.Title","value":"x"}]}`,
			action: ActionReview, targets: []string{"defra/FFC Payments"}},
		{name: "work item update ignores the project", tool: "wit_work_item_write", args: `{"action":"update","project":"FFC Payments","id":42,"updates":[]}`,
			action: ActionReview, targets: []string{"defra/FFC Payments"}, unknown: true, unknownHas: "organisation-wide"},
		{name: "WIQL can reach any project", tool: "wit_query", args: `{"action":"wiql","project":"FFC Payments","wiql":"SELECT [System.Id] FROM WorkItems"}`,
			action: ActionReview, targets: []string{"defra/FFC Payments"}, unknown: true},
		{name: "malformed project name", tool: "wiki", args: `{"action":"list_pages","project":"a:b","wikiIdentifier":"w"}`,
			action: ActionDeny},
		{name: "listing projects is targetless", tool: "core_list_projects", args: `{}`, action: ActionReview},
	})
	other := newPolicy(t, "azure-devops", map[string]string{"organization": "other"}, map[catalog.Kind][]string{
		catalog.KindAzureDevOpsProject: {"defra/*"},
	})
	if d := other.Check(Call{Tool: "repo_file", Arguments: json.RawMessage(`{"project":"FFC Payments"}`)}); d.Action != ActionDeny {
		t.Errorf("a project in another organisation was not denied: %+v", d)
	}
}

func TestCheckSonarQube(t *testing.T) {
	p := newPolicy(t, "sonarqube-cloud", map[string]string{"organization": "defra"}, map[catalog.Kind][]string{
		catalog.KindSonarQubeProject: {"defra_ffc-*"},
	})
	runChecks(t, p, []checkCase{
		{name: "project key", tool: "get_component_measures", args: `{"projectKey":"defra_ffc-pay","metricKeys":["ncloc"]}`,
			action: ActionReview, targets: []string{"defra_ffc-pay"}},
		{name: "keys are case-sensitive", tool: "get_component_measures", args: `{"projectKey":"DEFRA_ffc-pay"}`,
			action: ActionDeny, targets: []string{"DEFRA_ffc-pay"}},
		{name: "issue search across listed projects", tool: "search_sonar_issues_in_projects", args: `{"projectKeys":["defra_ffc-a","defra_secret"]}`,
			action: ActionDeny, targets: []string{"defra_ffc-a", "defra_secret"}},
		{name: "issue search across the organisation", tool: "search_sonar_issues_in_projects", args: `{"severities":["HIGH"]}`,
			action: ActionReview, unknown: true, unknownHas: "every project"},
		{name: "issue search filtered to files of another project", tool: "search_sonar_issues_in_projects", args: `{"projectKeys":["defra_ffc-a"],"files":["defra_secret:src/a.go"]}`,
			action: ActionDeny, targets: []string{"defra_ffc-a", "defra_secret"}},
		{name: "file component key", tool: "get_raw_source", args: `{"key":"defra_ffc-pay:src/main.go"}`,
			action: ActionReview, targets: []string{"defra_ffc-pay"}},
		{name: "file in another project", tool: "get_scm_info", args: `{"key":"defra_secret:src/main.go"}`,
			action: ActionDeny, targets: []string{"defra_secret"}},
		{name: "ambiguous component key", tool: "get_duplications", args: `{"key":"org.example:app:src/a.java"}`,
			action: ActionReview, unknown: true, unknownHas: "does not say where"},
		{name: "issue status by issue key", tool: "change_sonar_issue_status", args: `{"key":"AYx","status":"accept"}`,
			action: ActionReview, unknown: true},
		{name: "snippet analysis without a project", tool: "analyze_code_snippet", args: `{"codeSnippet":"x","language":"go"}`,
			action: ActionReview},
		{name: "organisation webhook", tool: "create_webhook", args: `{"name":"w","url":"https://x"}`,
			action: ActionReview, unknown: true, unknownHas: "whole organisation"},
		{name: "rules are targetless", tool: "show_rule", args: `{"key":"go:S1234"}`, action: ActionReview},
	})
}

func TestEmptyAllowlistFailsClosed(t *testing.T) {
	p := newPolicy(t, "github", nil, nil)
	d := p.Check(Call{Tool: "get_file_contents", Arguments: json.RawMessage(`{"owner":"DEFRA","repo":"ffc-pay"}`)})
	want := "Countersign denied this call: the allowlist for GitHub has no repositories yet, so DEFRA/ffc-pay cannot be reached. Ask the user to add it in Countersign settings."
	if d.Action != ActionDeny || d.Reason != want {
		t.Errorf("Check() = %v %q, want deny %q", d.Action, d.Reason, want)
	}
	// Calls with no target, or an unknown one, still reach the person.
	if d := p.Check(Call{Tool: "get_me"}); d.Action != ActionReview || d.TargetUnknown {
		t.Errorf("get_me = %+v, want review", d)
	}
	if d := p.Check(Call{Tool: "search_code", Arguments: json.RawMessage(`{"query":"x"}`)}); d.Action != ActionReview || !d.TargetUnknown {
		t.Errorf("unscoped search = %+v, want review with target unknown", d)
	}
	a := newPolicy(t, "atlassian", atlSite, map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC"}})
	d = a.Check(Call{Tool: "searchConfluenceUsingCql", Arguments: json.RawMessage(`{"cql":"space = ENG"}`)})
	if d.Action != ActionDeny || !strings.Contains(d.Reason, "has no Confluence spaces yet") {
		t.Errorf("Confluence with an empty space allowlist = %v %q", d.Action, d.Reason)
	}
}

func TestHiddenTools(t *testing.T) {
	p := newPolicy(t, "github", nil, map[catalog.Kind][]string{catalog.KindGitHubRepository: {"*/*"}}, "delete_*", "merge_pull_request")
	for tool, hidden := range map[string]bool{
		"delete_repository": true, "delete_file": true, "merge_pull_request": true,
		"merge_pull_requests": false, "get_file_contents": false, "Delete_file": false,
	} {
		if got := p.Hidden(tool); got != hidden {
			t.Errorf("Hidden(%s) = %v, want %v", tool, got, hidden)
		}
		d := p.Check(Call{Tool: tool, Arguments: json.RawMessage(`{"owner":"DEFRA","repo":"x"}`)})
		if hidden && (d.Action != ActionDeny || !strings.Contains(d.Reason, "turned off")) {
			t.Errorf("Check(%s) = %v %q, want a denial", tool, d.Action, d.Reason)
		}
		if !hidden && d.Action == ActionDeny {
			t.Errorf("Check(%s) denied a visible tool: %q", tool, d.Reason)
		}
	}
}

func TestServerWithoutRules(t *testing.T) {
	p, err := New(Config{Name: "everything", Hidden: []string{"printEnv"}})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Check(Call{Tool: "echo", Arguments: json.RawMessage(`{"message":"hi"}`)})
	if d.Action != ActionReview || !d.TargetUnknown || !strings.Contains(d.Reason, "no target rules for everything") {
		t.Errorf("Check() = %+v, want review with target unknown", d)
	}
	if d := p.Check(Call{Tool: "printEnv"}); d.Action != ActionDeny {
		t.Errorf("hidden tool on a custom server = %v", d.Action)
	}
	if d := p.CheckResource("file:///etc/hosts"); d.Action != ActionAllow {
		t.Errorf("resource on a server without rules = %v, want allow", d.Action)
	}
	if ks := p.Kinds(); len(ks) != 0 {
		t.Errorf("Kinds() = %v, want none", ks)
	}
	p, err = New(Config{Name: "Azure", CatalogID: "azure"})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Check(Call{Tool: "storage_account_get"}); d.Action != ActionReview || !d.TargetUnknown {
		t.Errorf("Azure call = %+v, want review with target unknown", d)
	}
}

func TestCheckResource(t *testing.T) {
	p := newPolicy(t, "github", nil, map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA/ffc-*"}})
	tests := []struct {
		uri    string
		action Action
		target string
	}{
		{"repo://DEFRA/ffc-pay/contents/README.md", ActionAllow, "DEFRA/ffc-pay"},
		{"repo://defra/FFC-PAY/refs/heads/main/contents/src/a.go", ActionAllow, "defra/FFC-PAY"},
		{"REPO://DEFRA/ffc-pay/sha/abc/contents/x", ActionAllow, "DEFRA/ffc-pay"},
		{"repo://DEFRA/ffc-pay", ActionAllow, "DEFRA/ffc-pay"},
		{"repo://DEFRA/ffc-pay?x=1", ActionAllow, "DEFRA/ffc-pay"},
		{"repo://DEFRA/secret/contents/README.md", ActionDeny, "DEFRA/secret"},
		{"repo://DEFRA", ActionDeny, ""},
		{"repo:DEFRA/ffc-pay", ActionDeny, ""},
		{"repo://DEFRA/ffc%2Dpay/contents", ActionDeny, ""},
		{"repo://DEFRA/..%2Fsecret", ActionDeny, ""},
		{"repo://DEFRA/../secret/contents", ActionDeny, ""},
		{"ui://github-mcp-server/get-me", ActionAllow, ""},
		{"file:///etc/passwd", ActionDeny, ""},
		{"no-scheme", ActionDeny, ""},
		{"", ActionDeny, ""},
	}
	for _, tt := range tests {
		d := p.CheckResource(tt.uri)
		var got string
		if len(d.Targets) == 1 {
			got = d.Targets[0].Value
		}
		if d.Action != tt.action || got != tt.target || d.Reason == "" {
			t.Errorf("CheckResource(%q) = %v %q (%q), want %v %q", tt.uri, d.Action, got, d.Reason, tt.action, tt.target)
		}
	}
	d := p.CheckResource("repo://DEFRA/secret/contents/a")
	want := "Countersign denied reading this resource: DEFRA/secret is not in the allowlist for GitHub. Ask the user to add it in Countersign settings."
	if d.Reason != want {
		t.Errorf("Reason = %q, want %q", d.Reason, want)
	}
	// Atlassian publishes no resource rules: its resources are refused.
	a := newPolicy(t, "atlassian", atlSite, nil)
	if d := a.CheckResource("jira://FFC-1"); d.Action != ActionDeny {
		t.Errorf("unknown resource scheme on a catalog server = %v, want deny", d.Action)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	gh, ado := "github", "azure-devops"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bad pattern", Config{Name: "GitHub", CatalogID: gh, Allowlist: map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA"}}}, "shape of a repository"},
		{"kind the server lacks", Config{Name: "GitHub", CatalogID: gh, Allowlist: map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC"}}}, "has no jira-project"},
		{"missing parameter", Config{Name: "Azure DevOps", CatalogID: ado}, "Organisation is required"},
		{"bad parameter", Config{Name: "Azure DevOps", CatalogID: ado, Params: map[string]string{"organization": "a/b"}}, "Organisation"},
		{"bad hidden tool", Config{Name: "GitHub", CatalogID: gh, Hidden: []string{"delete file"}}, "hidden tools"},
		{"allowlist on a custom server", Config{Name: "custom", Allowlist: map[catalog.Kind][]string{catalog.KindGitHubRepository: {"a/b"}}}, "no target rules"},
		{"not in the catalog", Config{Name: "GitLab", CatalogID: "gitlab"}, "not in the catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTargetText(t *testing.T) {
	wide := Target{Kind: catalog.KindGitHubRepository, Value: "DEFRA", Wide: true}
	repo := Target{Kind: catalog.KindGitHubRepository, Value: "DEFRA/x"}
	jira := Target{Kind: catalog.KindJiraProject, Value: "FFC"}
	for _, tt := range []struct{ got, want string }{
		{wide.String(), "every repository of DEFRA"}, {wide.Noun(), "owner"},
		{repo.String(), "DEFRA/x"}, {repo.Noun(), "repository"},
		{jira.Noun(), "Jira project"},
		{ActionDeny.String(), "deny"}, {ActionReview.String(), "review"}, {ActionAllow.String(), "allow"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestEveryPublishedToolDecides runs every tool the vendors publish through
// Check with empty arguments: targetless tools are reviewed without a flag,
// and no call is denied for lack of arguments.
func TestEveryPublishedToolDecides(t *testing.T) {
	lists := map[string]string{
		"github":          "github-tools.txt",
		"atlassian":       "atlassian-tools.txt",
		"azure-devops":    "azure-devops-tools.txt",
		"sonarqube-cloud": "sonarqube-tools.txt",
	}
	for id, file := range lists {
		params := map[string]string{"organization": "defra"}
		if id == "github" || id == "atlassian" {
			params = nil
		}
		p := newPolicy(t, id, params, nil)
		e, _ := catalog.Lookup(id)
		targetless := map[string]bool{}
		for _, tool := range e.Targets.Targetless {
			targetless[tool] = true
		}
		for _, tool := range readLines(t, filepath.Join("..", "catalog", "testdata", file)) {
			d := p.Check(Call{Tool: tool, Arguments: json.RawMessage(`{}`)})
			if d.Action != ActionReview {
				t.Errorf("%s %s with no arguments = %v %q", id, tool, d.Action, d.Reason)
			}
			if targetless[tool] && d.TargetUnknown {
				t.Errorf("%s targetless tool %s flagged unknown: %q", id, tool, d.Unknown)
			}
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// FuzzCheck runs arbitrary tool names and arguments through every catalog
// server. Decisions must be well formed: a denial has a reason, targets are
// valid names of the server's kinds, and nothing panics.
func FuzzCheck(f *testing.F) {
	f.Add(uint8(0), "get_file_contents", []byte(`{"owner":"DEFRA","repo":"ffc-pay"}`))
	f.Add(uint8(0), "search_issues", []byte(`{"query":"repo:a/b OR x","owner":"o","repo":"r"}`))
	f.Add(uint8(1), "searchJiraIssuesUsingJql", []byte(`{"jql":"project in (A, \"B\") AND key = C-1"}`))
	f.Add(uint8(1), "getJiraIssue", []byte(`{"issueIdOrKey":10000}`))
	f.Add(uint8(2), "search_code", []byte(`{"project":["FFC Payments",1]}`))
	f.Add(uint8(3), "get_raw_source", []byte(`{"key":["a:b","c:d:e"]}`))
	f.Add(uint8(0), "x", []byte(`[`))
	var policies []*Policy
	for _, id := range []string{"github", "atlassian", "azure-devops", "sonarqube-cloud"} {
		e, _ := catalog.Lookup(id)
		allow := map[catalog.Kind][]string{}
		for _, k := range e.Targets.Kinds {
			info, _ := catalog.LookupKind(k)
			allow[k] = []string{info.Example}
		}
		params := map[string]string{"organization": "defra"}
		if id == "github" || id == "atlassian" {
			params = nil
		}
		p, err := New(Config{Name: e.Name, CatalogID: id, Params: params, Allowlist: allow})
		if err != nil {
			f.Fatal(err)
		}
		policies = append(policies, p)
	}
	f.Fuzz(func(t *testing.T, i uint8, tool string, args []byte) {
		p := policies[int(i)%len(policies)]
		d := p.Check(Call{Tool: tool, Arguments: args})
		if d.Reason == "" {
			t.Fatal("decision without a reason")
		}
		if d.Action != ActionDeny && d.Action != ActionReview {
			t.Fatalf("tool call got action %v", d.Action)
		}
		if d.TargetUnknown != (len(d.Unknown) > 0) {
			t.Fatalf("TargetUnknown %v with Unknown %q", d.TargetUnknown, d.Unknown)
		}
		for _, tg := range d.Targets {
			info, ok := p.kinds[tg.Kind]
			if !ok {
				t.Fatalf("target %+v of a kind the server lacks", tg)
			}
			v := tg.Value
			if tg.Wide {
				v += "/x"
			}
			if err := info.CheckValue(v); err != nil {
				t.Fatalf("target %+v is not a valid name: %v", tg, err)
			}
			if d.Action == ActionReview && !p.allowed(tg) {
				t.Fatalf("reviewed a call whose target %v is outside the allowlist", tg)
			}
		}
	})
}

// FuzzCheckResource: a URI is either allowed with a target in the
// allowlist (or a targetless scheme), or denied.
func FuzzCheckResource(f *testing.F) {
	f.Add("repo://DEFRA/ffc-pay/contents/a")
	f.Add("REPO://x/y?z#w")
	f.Add("ui://a")
	f.Add("repo://DEFRA/../x")
	p, err := New(Config{Name: "GitHub", CatalogID: "github", Allowlist: map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA/ffc-*"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		d := p.CheckResource(uri)
		if d.Reason == "" {
			t.Fatal("decision without a reason")
		}
		switch d.Action {
		case ActionAllow:
			if len(d.Targets) == 0 && !strings.HasPrefix(strings.ToLower(uri), "ui:") {
				t.Fatalf("allowed %q without a target", uri)
			}
			for _, tg := range d.Targets {
				if !p.allowed(tg) {
					t.Fatalf("allowed %q outside the allowlist", uri)
				}
			}
		case ActionDeny:
		default:
			t.Fatalf("resource got action %v", d.Action)
		}
	})
}

// BenchmarkCheck measures a typical call: a GitHub issue in an allowlist of
// a few patterns.
func BenchmarkCheck(b *testing.B) {
	p := newPolicy(b, "github", nil, map[catalog.Kind][]string{
		catalog.KindGitHubRepository: {"DEFRA/ffc-*", "DEFRA/shared-lib", "ORG2/*", "DEFRA/ahwr-*", "DEFRA/fcp-*"},
	})
	call := Call{Tool: "create_issue", Arguments: json.RawMessage(`{"owner":"DEFRA","repo":"ffc-pay-request","title":"Fix login","body":"Steps to reproduce: open the page and sign in.","labels":["bug"]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Check(call); d.Action != ActionReview {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkCheckJQL measures a Jira search with a JQL query.
func BenchmarkCheckJQL(b *testing.B) {
	p := newPolicy(b, "atlassian", atlSite, map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC*", "PAY"}})
	call := Call{Tool: "searchJiraIssuesUsingJql", Arguments: json.RawMessage(`{"cloudId":"https://defra.atlassian.net","jql":"project in (FFC, PAY) AND status != Done AND assignee = currentUser() ORDER BY updated DESC","maxResults":20}`)}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Check(call); d.Action != ActionReview {
			b.Fatal(d.Reason)
		}
	}
}

// TestArgumentsTheServerReadsDifferently: an argument whose name only a
// loose reader (encoding/json) takes for one the rules read is refused:
// the policy would check one value while some server runs with another.
func TestArgumentsTheServerReadsDifferently(t *testing.T) {
	gh := newPolicy(t, "github", nil, map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA/ffc-*"}})
	runChecks(t, gh, []checkCase{
		{name: "a capitalised owner alone", tool: "create_issue", args: `{"Owner":"evil-org","repo":"ffc-pay","title":"x"}`,
			action: ActionDeny, reasonHas: `"Owner"`},
		{name: "a capitalised owner beside the owner", tool: "create_issue", args: `{"owner":"DEFRA","repo":"ffc-pay","OWNER":"evil-org"}`,
			action: ActionDeny, reasonHas: "some servers read as owner"},
		{name: "an unknown tool's fallback arguments", tool: "delete_repository", args: `{"owner":"DEFRA","REPO":"secret"}`,
			action: ActionDeny, reasonHas: "some servers read as repo"},
		{name: "names the rules do not read may differ in case", tool: "create_issue", args: `{"owner":"DEFRA","repo":"ffc-pay","Title":"x","title":"y"}`,
			action: ActionReview, targets: []string{"DEFRA/ffc-pay"}},
		{name: "a targetless tool reads no names", tool: "get_me", args: `{"Owner":"x"}`, action: ActionReview},
	})
	at := newPolicy(t, "atlassian", atlSite, map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC*"}})
	runChecks(t, at, []checkCase{
		{name: "the Kelvin sign in projectKey", tool: "createJiraIssue", args: `{"cloudId":"defra.atlassian.net","project\u212aey":"SECRET","projectKey":"FFC"}`,
			action: ActionDeny, reasonHas: "some servers read as projectKey"},
		{name: "jql in capitals", tool: "searchJiraIssuesUsingJql", args: `{"cloudId":"defra.atlassian.net","jql":"project = FFC","JQL":"project = SECRET"}`,
			action: ActionDeny, reasonHas: "some servers read as jql"},
	})
}

// atlSite ties Atlassian test servers to one site.
var atlSite = map[string]string{"site": "defra.atlassian.net"}
