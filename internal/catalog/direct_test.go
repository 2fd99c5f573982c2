package catalog

import (
	"strings"
	"testing"
)

// directOf finds which catalog entry's Direct rules recognise a URL host or
// a command-line token, as the hosts package will.
func directOf(host, token string) []string {
	var ids []string
	for _, e := range All() {
		if (host != "" && e.Direct.matchesHost(host)) || (token != "" && e.Direct.matchesPackage(token)) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// Real entries as the vendors document them, and lookalikes that must not
// match.
func TestDirectRecognisesVendorConnections(t *testing.T) {
	tests := []struct {
		name        string
		host, token string
		want        string // catalog id, "" for none
	}{
		{name: "github remote", host: "api.githubcopilot.com", want: "github"},
		{name: "github remote, any case and a trailing dot", host: "API.GitHubCopilot.com.", want: "github"},
		{name: "github enterprise cloud with data residency", host: "copilot-api.octocorp.ghe.com", want: "github"},
		{name: "github docker image", token: "ghcr.io/github/github-mcp-server", want: "github"},
		{name: "github docker image with tag", token: "ghcr.io/github/github-mcp-server:v0.20.1", want: "github"},
		{name: "github binary", token: "github-mcp-server", want: "github"},
		{name: "github archived npm server", token: "@modelcontextprotocol/server-github@2025.4.8", want: "github"},
		{name: "atlassian remote", host: "mcp.atlassian.com", want: "atlassian"},
		{name: "azure devops remote", host: "mcp.dev.azure.com", want: "azure-devops"},
		{name: "azure devops local npm", token: "@azure-devops/mcp", want: "azure-devops"},
		{name: "azure devops local npm pinned", token: "@azure-devops/mcp@2.2.0", want: "azure-devops"},
		{name: "sonarqube cloud EU", host: "api.sonarcloud.io", want: "sonarqube-cloud"},
		{name: "sonarqube cloud US", host: "api.sonarqube.us", want: "sonarqube-cloud"},
		{name: "sonarqube image", token: "sonarsource/sonarqube-mcp:1.19.0.2785", want: "sonarqube-cloud"},
		{name: "sonarqube docker hub catalog image", token: "mcp/sonarqube", want: "sonarqube-cloud"},
		{name: "aws regional", host: "aws-mcp.eu-central-1.api.aws", want: "aws"},
		{name: "azure npm", token: "@azure/mcp@latest", want: "azure"},
		{name: "azure executable", token: "azmcp", want: "azure"},
		{name: "azure pypi pinned", token: "msmcp-azure==2.0.0", want: "azure"},
		{name: "azure nuget", token: "Azure.Mcp", want: "azure"},

		{name: "lookalike host", host: "api.githubcopilot.com.evil.example"},
		{name: "host suffix", host: "evilapi.githubcopilot.com"},
		{name: "wildcard stays inside the vendor's domain", host: "aws-mcp.eu-central-1.api.aws.evil.example"},
		{name: "aws's own bridge from PyPI", token: "mcp-proxy-for-aws@latest", want: "aws"},
		{name: "other atlassian host", host: "defra.atlassian.net"},
		{name: "package prefix", token: "@azure/mcp-extra"},
		{name: "other image", token: "ghcr.io/github/github-mcp-server-fork"},
		{name: "community server", token: "@modelcontextprotocol/server-filesystem"},
		{name: "bare npx", token: "npx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := directOf(tt.host, tt.token)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("matched %v, want no match", got)
			case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
				t.Errorf("matched %v, want only %s", got, tt.want)
			}
		})
	}
}

func TestEveryEntryHasDirectRules(t *testing.T) {
	for _, e := range All() {
		if len(e.Direct.Hosts)+len(e.Direct.Packages) == 0 || len(e.Direct.Sources) == 0 {
			t.Errorf("%s: no direct rules or no sources", e.ID)
		}
	}
}

func TestValidateCatchesBrokenDirectRules(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		change  func(d *Direct)
		wantErr string
	}{
		{"nothing to match", "atlassian", func(d *Direct) { d.Hosts = nil }, "at least one host or package"},
		{"no sources", "github", func(d *Direct) { d.Sources = nil }, "sources"},
		{"http source", "github", func(d *Direct) { d.Sources = []string{"http://example.com"} }, "https"},
		{"host with scheme", "github", func(d *Direct) { d.Hosts[0] = "https://api.githubcopilot.com" }, "host name"},
		{"upper-case host", "github", func(d *Direct) { d.Hosts[0] = "API.githubcopilot.com" }, "lower-case"},
		{"wildcard domain", "aws", func(d *Direct) { d.Hosts[0] = "aws-mcp.*.*" }, "registrable domain"},
		{"wildcard inside a label", "aws", func(d *Direct) { d.Hosts[0] = "aws-mcp-*.api.aws" }, "host name"},
		{"match everything", "aws", func(d *Direct) { d.Hosts[0] = "*" }, "host name"},
		{"host twice", "sonarqube-cloud", func(d *Direct) { d.Hosts[1] = d.Hosts[0] }, "twice"},
		{"package with version", "azure", func(d *Direct) { d.Packages[0] = "@azure/mcp@2.0.5" }, "without a version"},
		{"package with tag", "github", func(d *Direct) { d.Packages[0] = "ghcr.io/github/github-mcp-server:latest" }, "without a version"},
		{"package with space", "github", func(d *Direct) { d.Packages[1] = "github mcp" }, "without a version"},
		{"own endpoint not covered", "atlassian", func(d *Direct) { d.Hosts = []string{"mcp.example.com"} }, "endpoints[0]"},
		{"own command not covered", "azure", func(d *Direct) { d.Packages = []string{"azmcp"} }, "command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := Lookup(tt.id)
			tt.change(&e.Direct)
			err := e.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
