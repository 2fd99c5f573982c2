package app

import (
	"context"
	"testing"

	"github.com/countersign/countersign/internal/catalog"
)

func TestForgiveParam(t *testing.T) {
	tests := []struct{ kind, name, in, want string }{
		{"azure-devops", "organization", "https://dev.azure.com/DEFRA", "defra"},
		{"azure-devops", "organization", "https://dev.azure.com/defra/FFC%20Pay/_workitems", "defra"},
		{"azure-devops", "organization", "dev.azure.com/Defra/", "defra"},
		{"azure-devops", "organization", "https://defra.visualstudio.com/", "defra"},
		{"azure-devops", "organization", " DEFRA ", "defra"},
		{"sonarqube-cloud", "organization", "https://sonarcloud.io/organizations/Defra-Org/projects", "defra-org"},
		{"github", "toolsets", " repos ", "repos"},
		{"atlassian", "site", "https://DEFRA.atlassian.net/jira/software/projects/FFC/boards/1", "defra.atlassian.net"},
		{"atlassian", "site", "defra.atlassian.net/wiki/spaces/ENG", "defra.atlassian.net"},
		{"atlassian", "site", " Defra.Atlassian.net ", "defra.atlassian.net"},
		{"atlassian", "site", "http://defra.atlassian.net", "http://defra.atlassian.net"},
		{"atlassian", "cloudId", `{"cloudId":"1324A887-45db-1bf4-1e99-ef0ff456d421"}`, "1324a887-45db-1bf4-1e99-ef0ff456d421"},
		{"atlassian", "cloudId", "https://admin.atlassian.com/s/1324a887-45db-1bf4-1e99-ef0ff456d421/users", "1324a887-45db-1bf4-1e99-ef0ff456d421"},
		{"sonarqube-cloud", "server", "https://sonar.defra.gov.uk/dashboard?id=ffc-pay", "sonar.defra.gov.uk"},
		{"sonarqube-cloud", "server", "https://sonar.defra.gov.uk/mcp", "sonar.defra.gov.uk"},
		{"sonarqube-cloud", "server", "https://sonar.defra.gov.uk:8443/", "https://sonar.defra.gov.uk:8443/"},
		{"sonarqube-cloud", "server", "https://me@sonar.defra.gov.uk/", "https://me@sonar.defra.gov.uk/"},
	}
	for _, tt := range tests {
		if got := forgiveParam(tt.kind, tt.name, tt.in); got != tt.want {
			t.Errorf("forgiveParam(%s, %s, %q) = %q, want %q", tt.kind, tt.name, tt.in, got, tt.want)
		}
	}
}

func TestForgiveEntry(t *testing.T) {
	tests := []struct{ kind, in, want string }{
		{"github-repository", "https://github.com/DEFRA/ffc-pay", "DEFRA/ffc-pay"},
		{"github-repository", "https://github.com/DEFRA/ffc-pay.git", "DEFRA/ffc-pay"},
		{"github-repository", "github.com/DEFRA/ffc-pay/pulls", "DEFRA/ffc-pay"},
		{"github-repository", "DEFRA/ffc-*", "DEFRA/ffc-*"},
		{"azure-devops-project", "https://dev.azure.com/defra/FFC%20Pay", "defra/FFC Pay"},
	}
	for _, tt := range tests {
		if got := forgiveEntry(catalog.Kind(tt.kind), tt.in); got != tt.want {
			t.Errorf("forgiveEntry(%s, %q) = %q, want %q", tt.kind, tt.in, got, tt.want)
		}
	}
}

// A server added with a pasted address keeps only the organisation.
func TestAddServerFromAPastedAddress(t *testing.T) {
	env := newSettingsEnv(t, `{"version": 2}`, "")
	ctx := context.Background()
	if err := env.s.CheckServerParam("azure-devops", "organization", "https://dev.azure.com/DEFRA"); err != nil {
		t.Fatalf("a pasted address is refused as typed: %v", err)
	}
	id, err := env.s.AddServer(ctx, "azure-devops", "", map[string]string{"organization": "https://dev.azure.com/DEFRA"})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := env.s.current().Server(id)
	if got := es.ParamValues()["organization"]; got != "defra" {
		t.Errorf("organisation saved as %q, want defra", got)
	}
}
