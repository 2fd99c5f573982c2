package catalog

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEveryEntryValidates(t *testing.T) {
	var got []string
	for _, e := range All() {
		got = append(got, e.ID)
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
		if !e.Supported && e.Auth.Kind != AuthSigV4 {
			t.Errorf("%s: only SigV4 entries are expected to be unsupported", e.ID)
		}
	}
	want := []string{"github", "atlassian", "azure-devops", "sonarqube-cloud", "aws", "azure"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("catalog ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, IDs()); diff != "" {
		t.Errorf("IDs() (-want +got):\n%s", diff)
	}
}

func TestLookup(t *testing.T) {
	e, ok := Lookup("github")
	if !ok || e.Name != "GitHub" {
		t.Fatalf("Lookup(github) = %q, %v", e.Name, ok)
	}
	if _, ok := Lookup("gitlab"); ok {
		t.Error("Lookup(gitlab) found an entry that is not in the catalog")
	}
	// Entries are copies: changing one does not change the catalog.
	e.Targets.Rules[0].Tools[0] = "changed"
	e.HeaderRules[0].Value = "changed"
	again, _ := Lookup("github")
	if again.Targets.Rules[0].Tools[0] == "changed" || again.HeaderRules[0].Value == "changed" {
		t.Error("changing a returned entry changed the catalog")
	}
}

func TestAWSEntry(t *testing.T) {
	aws, _ := Lookup("aws")
	if !aws.Supported || aws.Auth.Kind != AuthSigV4 {
		t.Errorf("aws: supported=%v auth=%s, want a supported SigV4 entry", aws.Supported, aws.Auth.Kind)
	}
	// Read-only by default: only tools marked readOnlyHint are offered
	// until the person turns write tools on.
	sso := map[string]string{"ssoStartUrl": "https://d-1234567890.awsapps.com/start", "ssoRegion": "eu-west-1"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range sso {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	if _, err := aws.Normalize(nil); err == nil {
		t.Error("aws: the access portal is not required")
	}
	def, err := aws.Normalize(sso)
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ReadOnlyByHint(def) {
		t.Error("aws: not read-only by default")
	}
	write, err := aws.Normalize(with(map[string]string{"write": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ReadOnlyByHint(write) {
		t.Error("aws: still read-only with write tools on")
	}
	// A Region can be named the way AWS's endpoint table names it.
	for in, want := range map[string]string{"Europe (Ireland)": "eu-west-1", "europe (london)": "eu-west-2", "us-west-2": "us-west-2"} {
		got, err := aws.Normalize(with(map[string]string{"region": in}))
		if err != nil || got["region"] != want {
			t.Errorf("region %q → %q, %v; want %s", in, got["region"], err, want)
		}
	}
	if _, err := aws.Normalize(with(map[string]string{"region": "Europe"})); err == nil {
		t.Error("a Region name that is no choice's label was accepted")
	}
}

// awsSSO adds an IAM Identity Center to AWS parameters.
func awsSSO(m map[string]string) map[string]string {
	out := map[string]string{"ssoStartUrl": "https://d-1234567890.awsapps.com/start", "ssoRegion": "eu-west-1"}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		params  map[string]string
		want    string
		wantErr string
	}{
		{name: "github is read-only by default", id: "github", want: "https://api.githubcopilot.com/mcp/readonly"},
		{name: "github with write", id: "github", params: map[string]string{"write": "true"}, want: "https://api.githubcopilot.com/mcp/"},
		{name: "atlassian signs in with OAuth at authv2", id: "atlassian", want: "https://mcp.atlassian.com/v1/mcp/authv2"},
		{name: "azure devops organisation", id: "azure-devops", params: map[string]string{"organization": "defra"}, want: "https://mcp.dev.azure.com/defra"},
		{name: "azure devops organisation with hyphen", id: "azure-devops", params: map[string]string{"organization": "DEFRA-ffc-1"}, want: "https://mcp.dev.azure.com/DEFRA-ffc-1"},
		{name: "sonarqube defaults to the EU", id: "sonarqube-cloud", params: map[string]string{"organization": "defra"}, want: "https://api.sonarcloud.io/mcp"},
		{name: "sonarqube US", id: "sonarqube-cloud", params: map[string]string{"organization": "defra", "region": "us"}, want: "https://api.sonarqube.us/mcp"},
		{name: "sonarqube server serves /mcp", id: "sonarqube-cloud", params: map[string]string{"server": "sonarqube.example.org"}, want: "https://sonarqube.example.org/mcp"},
		{name: "sonarqube server wins over the region", id: "sonarqube-cloud", params: map[string]string{"server": "sonar.defra.gov.uk", "region": "us"}, want: "https://sonar.defra.gov.uk/mcp"},
		{name: "aws default region", id: "aws", params: awsSSO(nil), want: "https://aws-mcp.us-east-1.api.aws/mcp"},
		{name: "aws frankfurt", id: "aws", params: awsSSO(map[string]string{"region": "eu-central-1"}), want: "https://aws-mcp.eu-central-1.api.aws/mcp"},

		{name: "azure devops needs an organisation", id: "azure-devops", wantErr: "Organisation is required"},
		{name: "unknown parameter", id: "github", params: map[string]string{"owner": "x"}, wantErr: `no parameter "owner"`},
		{name: "bool must be true or false", id: "github", params: map[string]string{"write": "yes"}, wantErr: `"yes" is not "true" or "false"`},
		{name: "sonarqube region from the list", id: "sonarqube-cloud", params: map[string]string{"organization": "defra", "region": "ap"}, wantErr: `"ap" is not one of eu, us`},
		{name: "aws ireland by name", id: "aws", params: awsSSO(map[string]string{"region": "Europe (Ireland)"}), want: "https://aws-mcp.eu-west-1.api.aws/mcp"},
		{name: "aws region from the list", id: "aws", params: awsSSO(map[string]string{"region": "eu-north-1"}), wantErr: "is not one of"},
		{name: "aws region cannot move the host", id: "aws", params: awsSSO(map[string]string{"region": "us-east-1.evil.example"}), wantErr: "is not one of"},
		{name: "azure has no endpoint", id: "azure", wantErr: "has no endpoint"},
		{name: "sonarqube cloud needs an organisation", id: "sonarqube-cloud", wantErr: "Organisation key is required"},
	}
	for _, server := range []string{
		"https://sonar.example.org", "sonar.example.org/mcp", "sonar.example.org:9000", "user@sonar.example.org",
		"sonar", "Sonar.Example.org", "sonar.example.org.", "sonar..example.org", "sonar.example.org?x", "sonar.example.org#x",
	} {
		tests = append(tests, struct {
			name    string
			id      string
			params  map[string]string
			want    string
			wantErr string
		}{name: "rejects sonarqube server " + server, id: "sonarqube-cloud", params: map[string]string{"server": server}, wantErr: "SonarQube Server address"})
	}
	for _, org := range []string{
		"../evil", "a/b", "a?b", "a#b", "a@b", "a b", " defra", "defra ", "a%2Fb", "a%2e%2e",
		"-defra", "defra-", "a.b", "a:443", "a\\b", "a\r\nHost: evil",
		"ｄｅｆｒａ",                 // full-width letters
		"d\u0435fra",            // Cyrillic е
		"def\u200bra",           // zero-width space
		"defra\u202e",           // right-to-left override
		strings.Repeat("a", 51), // longer than Azure DevOps allows
	} {
		tests = append(tests, struct {
			name    string
			id      string
			params  map[string]string
			want    string
			wantErr string
		}{name: "rejects organisation " + org, id: "azure-devops", params: map[string]string{"organization": org}, wantErr: "Organisation"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := Lookup(tt.id)
			if !ok {
				t.Fatalf("no entry %s", tt.id)
			}
			got, err := e.Endpoint(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Endpoint() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Endpoint() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("Endpoint() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		params  map[string]string
		want    http.Header
		wantErr string
	}{
		{name: "github read-only and locked down by default", id: "github", want: http.Header{"X-Mcp-Readonly": {"true"}, "X-Mcp-Lockdown": {"true"}}},
		{name: "github toolsets are normalised", id: "github", params: map[string]string{"toolsets": " repos, issues ,pull_requests"},
			want: http.Header{"X-Mcp-Readonly": {"true"}, "X-Mcp-Lockdown": {"true"}, "X-Mcp-Toolsets": {"repos,issues,pull_requests"}}},
		{name: "github write drops the read-only header", id: "github", params: map[string]string{"write": "true"}, want: http.Header{"X-Mcp-Lockdown": {"true"}}},
		{name: "github lockdown off sends no lockdown header", id: "github", params: map[string]string{"lockdown": "false"}, want: http.Header{"X-Mcp-Readonly": {"true"}}},
		{name: "github single tools", id: "github", params: map[string]string{"tools": "get_file_contents, issue_read"},
			want: http.Header{"X-Mcp-Readonly": {"true"}, "X-Mcp-Lockdown": {"true"}, "X-Mcp-Tools": {"get_file_contents,issue_read"}}},
		{name: "github single tool syntax", id: "github", params: map[string]string{"tools": "get_file_contents;rm"}, wantErr: "GitHub tool names"},
		{name: "github unknown toolset", id: "github", params: map[string]string{"toolsets": "repos,admin"}, wantErr: `item "admin" is not one of`},
		{name: "github toolset twice", id: "github", params: map[string]string{"toolsets": "repos,repos"}, wantErr: "listed twice"},
		{name: "github empty toolset item", id: "github", params: map[string]string{"toolsets": "repos,,issues"}, wantErr: "empty item"},
		{name: "sonarqube organisation and read-only", id: "sonarqube-cloud", params: map[string]string{"organization": "defra"},
			want: http.Header{"Sonarqube_org": {"defra"}, "Sonarqube_read_only": {"true"}}},
		{name: "sonarqube write", id: "sonarqube-cloud", params: map[string]string{"organization": "defra", "write": "true", "toolsets": "issues,measures"},
			want: http.Header{"Sonarqube_org": {"defra"}, "Sonarqube_read_only": {"false"}, "Sonarqube_toolsets": {"issues,measures"}}},
		{name: "sonarqube header injection", id: "sonarqube-cloud", params: map[string]string{"organization": "defra\r\nX-Evil: 1"}, wantErr: "plain ASCII"},
		{name: "sonarqube organisation syntax", id: "sonarqube-cloud", params: map[string]string{"organization": "Defra Org"}, wantErr: "Organisation key"},
		{name: "azure devops toolsets", id: "azure-devops", params: map[string]string{"organization": "defra", "toolsets": "wit,repos"},
			want: http.Header{"X-Mcp-Toolsets": {"wit,repos"}}},
		{name: "azure devops toolset syntax", id: "azure-devops", params: map[string]string{"organization": "defra", "toolsets": "wit;rm"}, wantErr: "is not valid"},
		{name: "atlassian sends nothing extra", id: "atlassian", want: http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := Lookup(tt.id)
			got, err := e.Headers(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Headers() = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Headers() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Headers() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		want    []string
		wantErr string
	}{
		{name: "read-only by default", want: []string{"npx", "-y", "@azure/mcp@2.0.5", "server", "start", "--read-only"}},
		{name: "write", params: map[string]string{"write": "true"}, want: []string{"npx", "-y", "@azure/mcp@2.0.5", "server", "start"}},
		{name: "namespaces", params: map[string]string{"namespaces": "storage, keyvault"},
			want: []string{"npx", "-y", "@azure/mcp@2.0.5", "server", "start", "--read-only", "--namespace", "storage", "--namespace", "keyvault"}},
		{name: "a namespace cannot be a flag", params: map[string]string{"namespaces": "--tool"}, wantErr: "is not valid"},
		{name: "a namespace cannot be a shell command", params: map[string]string{"namespaces": "storage;rm -rf"}, wantErr: "is not valid"},
	}
	e, _ := Lookup("azure")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.CommandLine(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CommandLine() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CommandLine() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CommandLine() (-want +got):\n%s", diff)
			}
		})
	}
	gh, _ := Lookup("github")
	if _, err := gh.CommandLine(nil); err == nil {
		t.Error("a remote server returned a command line")
	}
}

// TestBuildURLRejectsStructureChanges feeds values that skipped parameter
// validation, to show the second line of defence holds on its own.
func TestBuildURLRejectsStructureChanges(t *testing.T) {
	tests := []struct {
		tmpl, value string
	}{
		{"https://mcp.dev.azure.com/{organization}", "a/../b"},
		{"https://mcp.dev.azure.com/{organization}", ".."},
		{"https://mcp.dev.azure.com/{organization}", "%2e%2e"},
		{"https://aws-mcp.{organization}.api.aws/mcp", "x@evil.example"},
		{"https://aws-mcp.{organization}.api.aws/mcp", "evil.example/x"},
		{"https://aws-mcp.{organization}.api.aws/mcp", "evil.example:8443"},
		{"https://aws-mcp.{organization}.api.aws/mcp", "a b"},
	}
	for _, tt := range tests {
		if got, err := buildURL(tt.tmpl, map[string]string{"organization": tt.value}); err == nil {
			t.Errorf("buildURL(%q, %q) = %q, want an error", tt.tmpl, tt.value, got)
		}
	}
	if got, err := buildURL("https://mcp.dev.azure.com/{organization}", map[string]string{"organization": "defra"}); err != nil || got != "https://mcp.dev.azure.com/defra" {
		t.Errorf("buildURL(defra) = %q, %v", got, err)
	}
}

func TestKindValues(t *testing.T) {
	tests := []struct {
		kind  Kind
		value string
		valid bool
		id    bool
	}{
		{KindGitHubRepository, "DEFRA/ffc-pay", true, false},
		{KindGitHubRepository, "defra/.github", true, false},
		{KindGitHubRepository, "DEFRA", false, false},
		{KindGitHubRepository, "DEFRA/ffc/pay", false, false},
		{KindGitHubRepository, "-DEFRA/x", false, false},
		{KindGitHubRepository, "DEFRA/ffc pay", false, false},
		{KindGitHubRepository, "DEFRA/ffc%2Fpay", false, false},
		{KindGitHubRepository, "DEFRA/..", false, false},
		{KindGitHubRepository, "DEFRA/.", false, false},
		{KindGitHubRepository, "DEFRA/" + strings.Repeat("a", 101), false, false},
		{KindJiraProject, "FFC", true, false},
		{KindJiraProject, "FFC_2", true, false},
		{KindJiraProject, "10000", false, true},
		{KindJiraProject, "2FFC", false, false},
		{KindConfluenceSpace, "ENG", true, false},
		{KindConfluenceSpace, "~557058:7a8b", true, false},
		{KindConfluenceSpace, "123456", true, true},
		{KindAzureDevOpsProject, "defra/FFC Payments", true, false},
		{KindAzureDevOpsProject, "defra/_hidden", false, false},
		{KindAzureDevOpsProject, "defra/a:b", false, false},
		{KindAzureDevOpsProject, "defra/0f8fad5b-d9cb-469f-a165-70867728950e", true, true},
		{KindSonarQubeProject, "defra_ffc-pay", true, false},
		{KindSonarQubeProject, "org.example:app", true, false},
		{KindSonarQubeProject, "12345", false, false},
		{KindSonarQubeProject, "a/b", false, false},
	}
	for _, tt := range tests {
		info, ok := LookupKind(tt.kind)
		if !ok {
			t.Fatalf("no kind %s", tt.kind)
		}
		if err := info.CheckValue(tt.value); (err == nil) != tt.valid {
			t.Errorf("%s CheckValue(%q) = %v, want valid=%v", tt.kind, tt.value, err, tt.valid)
		}
		if got := info.IsID(tt.value); got != tt.id {
			t.Errorf("%s IsID(%q) = %v, want %v", tt.kind, tt.value, got, tt.id)
		}
	}
}

func TestFoldCase(t *testing.T) {
	gh, _ := LookupKind(KindGitHubRepository)
	if got := gh.Fold("DEFRA/FFC-Pay"); got != "defra/ffc-pay" {
		t.Errorf("github Fold = %q", got)
	}
	// Only ASCII letters fold: the Kelvin sign stays distinct from k.
	if got := gh.Fold("\u212Aey"); got != "\u212Aey" {
		t.Errorf("github Fold folded a non-ASCII letter: %q", got)
	}
	sq, _ := LookupKind(KindSonarQubeProject)
	if got := sq.Fold("Defra_App"); got != "Defra_App" {
		t.Errorf("sonarqube Fold = %q, want keys compared as written", got)
	}
}

// TestPublishedToolsAreClassified compares each entry's rules with the tool
// names the vendor publishes (testdata/*-tools.txt): every published tool
// is either targetless or has a rule, and the rules name no tool the vendor
// does not publish.
func TestPublishedToolsAreClassified(t *testing.T) {
	files := map[string]string{
		"github":          "github-tools.txt",
		"atlassian":       "atlassian-tools.txt",
		"azure-devops":    "azure-devops-tools.txt",
		"sonarqube-cloud": "sonarqube-tools.txt",
		"aws":             "aws-tools.txt",
	}
	for id, name := range files {
		t.Run(id, func(t *testing.T) {
			published := readToolList(t, filepath.Join("testdata", name))
			e, _ := Lookup(id)
			classified := map[string]bool{}
			for _, tool := range e.Targets.Targetless {
				classified[tool] = true
			}
			for _, r := range e.Targets.Rules {
				for _, tool := range r.Tools {
					classified[tool] = true
				}
			}
			for _, tool := range published {
				if !classified[tool] {
					t.Errorf("published tool %s has no rule and is not targetless", tool)
				}
			}
			for tool := range classified {
				if !slices.Contains(published, tool) {
					t.Errorf("the rules name %s, which the vendor does not publish", tool)
				}
			}
		})
	}
}

func readToolList(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s lists no tools", path)
	}
	return out
}

func TestValidateCatchesBrokenEntries(t *testing.T) {
	tests := []struct {
		name    string
		change  func(e *Entry)
		wantErr string
	}{
		{"bad id", func(e *Entry) { e.ID = "Git Hub" }, "id"},
		{"read-only hint on unknown parameter", func(e *Entry) { e.ReadOnlyHintWhen = map[string]string{"nope": "false"} }, "readOnlyHintWhen"},
		{"label for no choice", func(e *Entry) { e.Params[0].ChoiceLabels = map[string]string{"nope": "Nope"} }, "choiceLabels"},
		{"unsupported without reason", func(e *Entry) { e.Supported = false }, "must say why"},
		{"no endpoint", func(e *Entry) { e.Endpoints = nil }, "endpoints"},
		{"conditional last endpoint", func(e *Entry) { e.Endpoints = e.Endpoints[:1] }, "endpoints"},
		{"http endpoint", func(e *Entry) { e.Endpoints[1].URL = "http://api.githubcopilot.com/mcp/" }, "https"},
		{"endpoint with query", func(e *Entry) { e.Endpoints[1].URL = "https://api.githubcopilot.com/mcp/?x=1" }, "query"},
		{"unknown placeholder", func(e *Entry) { e.Endpoints[1].URL = "https://api.githubcopilot.com/{org}" }, "not a parameter"},
		{"header with unknown placeholder", func(e *Entry) { e.HeaderRules[1].Value = "{org}" }, "not a parameter"},
		{"bad header name", func(e *Entry) { e.HeaderRules[0].Name = "X Evil" }, "header name"},
		{"when names unknown parameter", func(e *Entry) { e.HeaderRules[0].When = map[string]string{"nope": "x"} }, "unknown parameter"},
		{"bad default", func(e *Entry) { e.Params[0].Default = "repos,admin" }, "default"},
		{"unknown auth", func(e *Entry) { e.Auth.Kind = "password" }, "auth.kind"},
		{"tool both targetless and ruled", func(e *Entry) { e.Targets.Targetless = append(e.Targets.Targetless, "get_file_contents") }, "also listed as targetless"},
		{"unknown kind", func(e *Entry) { e.Targets.Rules[0].Targets[0].Kind = "gitlab-project" }, "kind"},
		{"wrong number of args", func(e *Entry) { e.Targets.Rules[0].Targets[0].Args = []string{"owner", "repo", "path"} }, "segments"},
		{"rule without targets or reason", func(e *Entry) { e.Targets.Rules[0].Targets = nil }, "either targets or an unknown reason"},
		{"conditional unknown only", func(e *Entry) {
			e.Targets.Rules = append(e.Targets.Rules, ToolRule{Tools: []string{"brand_new"}, When: &Condition{Arg: "x", Present: true}, Unknown: "why"})
		}, "no target rule"},
		{"when with both present and id", func(e *Entry) {
			e.Targets.Rules = append(e.Targets.Rules, ToolRule{Tools: []string{"get_file_contents"}, When: &Condition{Arg: "x", Present: true, ID: true}, Unknown: "why"})
		}, "exactly one of"},
		{"when with no test", func(e *Entry) {
			e.Targets.Rules = append(e.Targets.Rules, ToolRule{Tools: []string{"get_file_contents"}, When: &Condition{Arg: "x"}, Unknown: "why"})
		}, "exactly one of"},
		{"mandatory fallback", func(e *Entry) { e.Targets.Fallback[0].Optional = false }, "optional"},
		{"bad format", func(e *Entry) { e.Targets.Rules[0].Targets[0].Format = "regex" }, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := Lookup("github")
			tt.change(&e)
			err := e.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadRejectsBadData(t *testing.T) {
	for _, b := range []string{
		`{"kinds": [], "servers": [], "extra": 1}`,
		`{"kinds": [], "servers": []} trailing`,
		`not json`,
	} {
		if err := strictDecode([]byte(b), &file{}); err == nil {
			t.Errorf("strictDecode(%q) accepted bad data", b)
		}
	}
}

func TestDirectHostsOfASelfHostedServer(t *testing.T) {
	e, _ := Lookup("sonarqube-cloud")
	if got := e.DirectHosts(map[string]string{"organization": "defra"}); !slices.Equal(got, e.Direct.Hosts) {
		t.Errorf("cloud: DirectHosts = %q, want only the vendor's %q", got, e.Direct.Hosts)
	}
	got := e.DirectHosts(map[string]string{"server": "sonar.defra.gov.uk"})
	if !slices.Contains(got, "sonar.defra.gov.uk") || !slices.Contains(got, "api.sonarcloud.io") {
		t.Errorf("server: DirectHosts = %q, want the server's host beside the vendor's", got)
	}
}

// TestVendorSourcesRecorded keeps testdata/vendor-sources.txt honest: every
// fact it records appears in the catalog, with a vendor page and the
// vendor's words, and the catalog's newer facts each have a record.
func TestVendorSourcesRecorded(t *testing.T) {
	b, err := os.ReadFile("testdata/vendor-sources.txt")
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]bool{}
	for _, block := range strings.Split(string(b), "\n\n")[1:] {
		var fact string
		urls, quotes := 0, 0
		for _, line := range strings.Split(block, "\n") {
			switch k, v, _ := strings.Cut(line, ": "); k {
			case "fact":
				fact = v
			case "url":
				urls++
			case "quote":
				quotes++
			}
		}
		if fact == "" || urls == 0 || quotes == 0 || !strings.Contains(block, "date: ") {
			t.Errorf("block without fact, url, date or quote:\n%s", block)
			continue
		}
		facts[fact] = true
		if !strings.Contains(string(catalogJSON), fact) {
			t.Errorf("recorded fact %q is not in catalog.json", fact)
		}
	}
	for _, need := range []string{"https://mcp.atlassian.com/v1/mcp/authv2", "/v1/mcp is for API tokens", "cloudId", "X-MCP-Lockdown", "X-MCP-Tools", "GitHub App", "offlineAccess", "https://{server}/mcp"} {
		if !facts[need] {
			t.Errorf("no source recorded for %q", need)
		}
	}
}
