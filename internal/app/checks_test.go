package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
)

// wantErr checks err against a wanted substring: "" wants no error.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestAppChecks(t *testing.T) {
	ch := appChecks()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a catalog kind", ch.Kind("github"), ""},
		{"a kind not in the catalog", ch.Kind("gitlab"), `"gitlab" is not a server in Countersign's catalog`},
		{"an unsupported kind is still a kind", ch.Kind("aws"), ""},

		{"a text parameter", ch.Param("azure-devops", "organization", "defra"), ""},
		{"a text parameter that does not match", ch.Param("azure-devops", "organization", "de fra"), "Organisation"},
		{"a list parameter", ch.Param("github", "toolsets", "repos,issues"), ""},
		{"a list item not among the choices", ch.Param("github", "toolsets", "repos,bogus"), `item "bogus"`},
		{"a parameter the server lacks", ch.Param("github", "organization", "x"), `GitHub has no parameter "organization"`},
		{"a parameter of an unknown kind", ch.Param("gitlab", "x", "y"), "not a server in Countersign's catalog"},
		{"a parameter checked alone ignores missing others", ch.Param("sonarqube-cloud", "region", "us"), ""},

		{"complete parameters", ch.Params("azure-devops", map[string]string{"organization": "defra"}), ""},
		{"a required parameter missing", ch.Params("azure-devops", nil), "Organisation is required"},
		{"defaults fill the rest", ch.Params("github", nil), ""},
		{"a bad value among complete parameters", ch.Params("sonarqube-cloud", map[string]string{"organization": "o", "region": "mars"}), `"mars" is not one of eu, us`},
		{"parameters of an unknown kind", ch.Params("gitlab", nil), "not a server"},

		{"a repository glob", ch.Pattern("github", "github-repository", "DEFRA/ffc-*"), ""},
		{"a repository without an owner", ch.Pattern("github", "github-repository", "ffc-pay"), "does not have the shape of a repository"},
		{"a kind the server's allowlist does not hold", ch.Pattern("github", "jira-project", "FFC"), `GitHub's allowlist holds repositories, not "jira-project"`},
		{"either kind of a server with two", ch.Pattern("atlassian", "confluence-space", "~me"), ""},
		{"the other kind of a server with two", ch.Pattern("atlassian", "jira-project", "FFC*"), ""},
		{"a Jira key with a slash", ch.Pattern("atlassian", "jira-project", "FF/C"), "Jira project"},
		{"a custom server has no allowlist", ch.Pattern("", "github-repository", "a/b"), "a server outside the catalog has no allowlist"},
		{"a catalog server without target rules has none", ch.Pattern("azure", "github-repository", "a/b"), "Azure has no allowlist"},
		{"a pattern for an unknown kind", ch.Pattern("gitlab", "github-repository", "a/b"), "not a server"},

		{"a hidden tool glob", ch.Tool("delete_*"), ""},
		{"a hidden tool with a space", ch.Tool("delete repo"), "space"},
		{"an empty hidden tool", ch.Tool(""), "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.err, tt.want) })
	}
}

// The checks reach every place the config package uses them: the store
// refuses to save, a server with bad settings does not connect, and a
// policy that fails them fails closed.
func TestAppChecksInTheConfigPackage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	store := config.NewStore(path, config.StoreOptions{Checks: appChecks(), Logger: discardLog()})
	err := store.Update(func(c *config.Config) error {
		c.Servers = append(c.Servers, config.Server{ID: "gh", Kind: "github", Allowlist: map[string][]string{"github-repository": {"no-owner"}}})
		return nil
	})
	wantErr(t, err, `servers[0].allowlist.github-repository[0]: "no-owner" does not have the shape of a repository`)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the refused settings were written: %v", err)
	}

	user, err := config.Parse([]byte(`{"version": 2, "servers": [
		{"id": "gh", "kind": "github", "allowlist": {"github-repository": ["DEFRA/*"]}},
		{"id": "ado", "kind": "azure-devops"},
		{"id": "lab", "kind": "gitlab"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	eff := config.Resolve(user, nil, appChecks())
	for id, want := range map[string]string{"gh": "", "ado": "Organisation is required", "lab": `"gitlab" is not a server in Countersign's catalog`} {
		es, _ := eff.Server(id)
		if es.Connect != (want == "") || !strings.Contains(es.Why, want) {
			t.Errorf("%s: Connect %v, Why %q; want why containing %q", id, es.Connect, es.Why, want)
		}
	}

	pol, err := config.ParsePolicy([]byte(`{"version": 1, "servers": {"github": {"allowlist": {"github-repository": ["DEFRA"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if eff := config.Resolve(user, pol, appChecks()); eff.Err == nil || !strings.Contains(eff.Err.Error(), "shape of a repository") {
		t.Errorf("a policy with a bad allowlist entry: Err = %v, want it to fail closed", eff.Err)
	}
}

// TestEntraSignInAsksForOfflineAccess: Azure DevOps signs in through
// Microsoft Entra ID, which gives no refresh token unless offline_access is
// asked for; other servers leave it to what their sign-in server lists.
func TestEntraSignInAsksForOfflineAccess(t *testing.T) {
	es := config.EffectiveServer{Tenant: "contoso.onmicrosoft.com", ClientID: "c"}
	ado, _ := catalog.Lookup("azure-devops")
	if sa := serverAuth(ado, es, "Azure DevOps", "https://mcp.dev.azure.com/defra", nil); !sa.OfflineAccess {
		t.Errorf("Azure DevOps: %+v, want OfflineAccess", sa)
	}
	gh, _ := catalog.Lookup("github")
	if sa := serverAuth(gh, es, "GitHub", "https://api.githubcopilot.com/mcp/", nil); sa.OfflineAccess {
		t.Errorf("GitHub: %+v, want no forced offline_access", sa)
	}
}
