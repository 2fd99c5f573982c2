package policy

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/catalog"
)

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		kind    catalog.Kind
		pattern string
		wantErr string // empty: valid
	}{
		{catalog.KindGitHubRepository, "DEFRA/ffc-pay", ""},
		{catalog.KindGitHubRepository, "DEFRA/ffc-*", ""},
		{catalog.KindGitHubRepository, "DEFRA/*", ""},
		{catalog.KindGitHubRepository, "*/*", ""},
		{catalog.KindGitHubRepository, "DEF*/x.github", ""},
		{catalog.KindGitHubRepository, "DEFRA", "does not have the shape of a repository"},
		{catalog.KindGitHubRepository, "DEFRA/ffc/pay", "does not have the shape of a repository"},
		{catalog.KindGitHubRepository, "DEFRA/", "empty part"},
		{catalog.KindGitHubRepository, "/ffc", "empty part"},
		{catalog.KindGitHubRepository, "DEFRA/**", "**"},
		{catalog.KindGitHubRepository, "DEFRA/ffc pay", "cannot contain"},
		{catalog.KindGitHubRepository, "DEFRA/ffc?", "cannot contain"},
		{catalog.KindGitHubRepository, "DE.FRA/x", "cannot contain"},
		{catalog.KindGitHubRepository, "DEFRA/ffc-p\u0430y", "cannot contain"}, // Cyrillic а
		{catalog.KindGitHubRepository, " DEFRA/x", "space"},
		{catalog.KindGitHubRepository, "", "empty"},
		{catalog.KindGitHubRepository, "DEFRA/\xff", "not valid text"},
		{catalog.KindGitHubRepository, strings.Repeat("a", 300) + "/x", "longer"},
		{catalog.KindJiraProject, "FFC", ""},
		{catalog.KindJiraProject, "FF*", ""},
		{catalog.KindJiraProject, "*", ""},
		{catalog.KindJiraProject, "FFC/x", "does not have the shape"},
		{catalog.KindJiraProject, "FFC-1", "cannot contain"},
		{catalog.KindConfluenceSpace, "ENG", ""},
		{catalog.KindConfluenceSpace, "~557058:*", ""},
		{catalog.KindAzureDevOpsProject, "defra/FFC Payments", ""},
		{catalog.KindAzureDevOpsProject, "defra/*", ""},
		{catalog.KindAzureDevOpsProject, "defra/Zahlungsverkehr Ä*", ""},
		{catalog.KindAzureDevOpsProject, "defra", "does not have the shape"},
		{catalog.KindAzureDevOpsProject, "defra/a:b", "cannot contain"},
		{catalog.KindAzureDevOpsProject, "de fra/x", "cannot contain"},
		{catalog.KindAzureDevOpsProject, "defra/a\u200bb", "cannot contain"},
		{catalog.KindSonarQubeProject, "defra_ffc-*", ""},
		{catalog.KindSonarQubeProject, "org.example:app", ""},
		{catalog.KindSonarQubeProject, "a b", "cannot contain"},
		{"gitlab-project", "x", "not a kind"},
	}
	for _, tt := range tests {
		err := ValidatePattern(tt.kind, tt.pattern)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidatePattern(%s, %q) = %v, want valid", tt.kind, tt.pattern, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidatePattern(%s, %q) = %v, want error containing %q", tt.kind, tt.pattern, err, tt.wantErr)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"ffc-*", "ffc-pay", true},
		{"ffc-*", "ffc-", true},
		{"ffc-*", "ffc", false},
		{"*", "", true},
		{"*", "anything", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*pay", "ffc-pay", true},
		{"*pay", "ffc-payments", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"", "x", false},
		{"*a*a*a*a*b", strings.Repeat("a", 64), false},
	}
	for _, tt := range tests {
		if got := glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// TestAllowlistCaseRules checks each vendor's case rule: GitHub, Jira,
// Confluence and Azure DevOps names match whatever their case; SonarQube
// keys match only as written.
func TestAllowlistCaseRules(t *testing.T) {
	tests := []struct {
		kind    catalog.Kind
		pattern string
		value   string
		want    bool
	}{
		{catalog.KindGitHubRepository, "DEFRA/ffc-*", "defra/FFC-Pay", true},
		{catalog.KindGitHubRepository, "defra/ffc-pay", "DEFRA/ffc-pay", true},
		{catalog.KindGitHubRepository, "DEFRA/ffc-*", "DEFRA/ffc", false},
		{catalog.KindGitHubRepository, "DEFRA/*", "DEFRA-evil/x", false},
		{catalog.KindGitHubRepository, "DEF*/x", "DEFRA/x", true},
		{catalog.KindJiraProject, "ffc", "FFC", true},
		{catalog.KindJiraProject, "FF*", "ffx", true},
		{catalog.KindConfluenceSpace, "eng", "ENG", true},
		{catalog.KindAzureDevOpsProject, "DEFRA/ffc payments", "defra/FFC Payments", true},
		{catalog.KindAzureDevOpsProject, "defra/ä*", "defra/Äpfel", false}, // only ASCII folds: stricter, never looser
		{catalog.KindSonarQubeProject, "defra_ffc-pay", "defra_ffc-pay", true},
		{catalog.KindSonarQubeProject, "defra_ffc-pay", "DEFRA_ffc-pay", false},
		{catalog.KindSonarQubeProject, "defra_*", "defra_x:y", true},
	}
	for _, tt := range tests {
		info, _ := catalog.LookupKind(tt.kind)
		pat, err := compilePattern(info, tt.pattern)
		if err != nil {
			t.Fatalf("compilePattern(%q): %v", tt.pattern, err)
		}
		if got := pat.match(strings.Split(info.Fold(tt.value), "/")); got != tt.want {
			t.Errorf("%s pattern %q matching %q = %v, want %v", tt.kind, tt.pattern, tt.value, got, tt.want)
		}
	}
}

func TestCoversOwner(t *testing.T) {
	info, _ := catalog.LookupKind(catalog.KindGitHubRepository)
	tests := []struct {
		pattern, owner string
		want           bool
	}{
		{"DEFRA/*", "defra", true},
		{"DEF*/*", "defra", true},
		{"*/*", "anyone", true},
		{"DEFRA/ffc-*", "defra", false},
		{"DEFRA/x", "defra", false},
		{"DEFRA/*", "defra-evil", false},
	}
	for _, tt := range tests {
		pat, err := compilePattern(info, tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := pat.coversOwner(info.Fold(tt.owner)); got != tt.want {
			t.Errorf("%q covers owner %q = %v, want %v", tt.pattern, tt.owner, got, tt.want)
		}
	}
}

func TestValidateToolPattern(t *testing.T) {
	for _, ok := range []string{"delete_repository", "delete_*", "*", "getJiraIssue", "repo.create"} {
		if err := ValidateToolPattern(ok); err != nil {
			t.Errorf("ValidateToolPattern(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "delete *", "a**", "tab\there", "zero\u200bwidth", strings.Repeat("x", 300)} {
		if err := ValidateToolPattern(bad); err == nil {
			t.Errorf("ValidateToolPattern(%q) accepted it", bad)
		}
	}
}

// FuzzGlob checks glob against the regular expression it stands for.
func FuzzGlob(f *testing.F) {
	f.Add("ffc-*", "ffc-pay")
	f.Add("a*b*c", "aXbYc")
	f.Add("*", "")
	f.Add("**a", "ba")
	f.Fuzz(func(t *testing.T, pat, s string) {
		if len(pat) > 64 || len(s) > 256 {
			return
		}
		parts := strings.Split(pat, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if err != nil {
			t.Skip()
		}
		// The regexp works on runes, glob on bytes; they agree on valid
		// UTF-8 and on any input whose literal parts are ASCII.
		if want, got := re.MatchString(s), glob(pat, s); want != got && utf8.ValidString(pat) && utf8.ValidString(s) {
			t.Fatalf("glob(%q, %q) = %v, regexp says %v", pat, s, got, want)
		}
	})
}

// FuzzValidatePattern checks that any accepted pattern matches the value it
// spells when its stars are replaced by nothing, and never panics.
func FuzzValidatePattern(f *testing.F) {
	f.Add("github-repository", "DEFRA/ffc-*")
	f.Add("jira-project", "FF*")
	f.Add("azure-devops-project", "defra/FFC *")
	f.Add("sonarqube-project", "a:b*")
	f.Add("confluence-space", "~x*")
	f.Fuzz(func(t *testing.T, kind, p string) {
		err := ValidatePattern(catalog.Kind(kind), p)
		if err != nil {
			return
		}
		info, _ := catalog.LookupKind(catalog.Kind(kind))
		pat, err := compilePattern(info, p)
		if err != nil {
			t.Fatalf("ValidatePattern accepted %q but compilePattern refused it: %v", p, err)
		}
		literal := strings.ReplaceAll(p, "*", "")
		if !pat.match(strings.Split(info.Fold(literal), "/")) && !strings.Contains(literal, "//") && !strings.HasSuffix(literal, "/") && !strings.HasPrefix(literal, "/") {
			t.Fatalf("pattern %q does not match %q", p, literal)
		}
	})
}
