package hosts

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lines(n int, f func(i int) string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(f(i) + "\n")
	}
	return b.String()
}

func TestUnifiedDiff(t *testing.T) {
	same := func(s string) string { return s }
	base := lines(20, func(i int) string { return fmt.Sprintf("line %d", i) })
	tests := []struct {
		name, a, b, want string
	}{
		{"identical", "a\nb\n", "a\nb\n", ""},
		{"new file", "", "a\nb\n", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"one change keeps three lines of context",
			base, strings.Replace(base, "line 10\n", "line ten\n", 1),
			"--- A\n+++ B\n@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n line 11\n line 12\n line 13\n"},
		{"distant changes make two hunks",
			base, strings.Replace(strings.Replace(base, "line 2\n", "two\n", 1), "line 19\n", "nineteen\n", 1),
			"--- A\n+++ B\n@@ -1,5 +1,5 @@\n line 1\n-line 2\n+two\n line 3\n line 4\n line 5\n" +
				"@@ -16,5 +16,5 @@\n line 16\n line 17\n line 18\n-line 19\n+nineteen\n line 20\n"},
		{"close changes share a hunk",
			base, strings.Replace(strings.Replace(base, "line 5\n", "five\n", 1), "line 9\n", "nine\n", 1),
			"--- A\n+++ B\n@@ -2,11 +2,11 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n line 6\n line 7\n line 8\n-line 9\n+nine\n line 10\n line 11\n line 12\n"},
		{"deletion at the end", "a\nb\nc\n", "a\n", "--- A\n+++ B\n@@ -1,3 +1 @@\n a\n-b\n-c\n"},
		{"line endings only", "a\nb\n", "a\r\nb\r\n", "--- A\n+++ B\n@@ line endings or the final newline changed @@\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unifiedDiff("A", "B", []byte(tt.a), []byte(tt.b), 3, same)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("unifiedDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnifiedDiffOfHugeFilesStaysBounded(t *testing.T) {
	a := lines(3000, func(i int) string { return fmt.Sprintf("a%d", i) })
	b := lines(3000, func(i int) string { return fmt.Sprintf("b%d", i) })
	got := unifiedDiff("A", "B", []byte(a), []byte(b), 3, func(s string) string { return s })
	if n := strings.Count(got, "\n-"); n != 3000 {
		t.Errorf("%d removed lines, want 3000", n)
	}
}

func TestMaskHidesSecrets(t *testing.T) {
	c := &Config{secrets: []string{testToken}}
	tests := []struct{ in, want string }{
		{`"x": "` + testToken + `"`, `"x": "********"`},
		{`"Authorization": "Bearer abc.def-ghi"`, `"Authorization": "Bearer ********"`},
		{`"Authorization": "token ghp_abc"`, `"Authorization": "********"`},
		{`"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_123"`, `"GITHUB_PERSONAL_ACCESS_TOKEN": "********"`},
		{`"SONAR_TOKEN": "squ_1", "API_KEY": "k"`, `"SONAR_TOKEN": "********", "API_KEY": "********"`},
		{`"client_secret":"s3"`, `"client_secret":"********"`},
		{`"password": "a\"b"`, `"password": "********"`},
		{`"GITHUB_TOKEN": "${input:github_pat}"`, `"GITHUB_TOKEN": "${input:github_pat}"`},
		{`"command": "npx", "args": ["-y", "server"]`, `"command": "npx", "args": ["-y", "server"]`},
		{`"args": ["--pat", "ghp_` + `R2d2C3poBb8Luke5kywalkerLeia4Organa0"]`, `"args": ["--pat", "[redacted: github token]"]`},
	}
	for _, tt := range tests {
		if got := c.mask(tt.in); got != tt.want {
			t.Errorf("mask(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestDiffMasksTheOldToken checks that a token already in the file (from an
// earlier connect) is masked wherever it appears, even where no pattern
// would catch it.
func TestDiffMasksTheOldToken(t *testing.T) {
	old := "0ld70ken0ld70ken0ld70ken0ld70ken"
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, "{\"mcpServers\": {\n\"countersign-github\": {\"url\": \"http://127.0.0.1:1/servers/github/mcp\", \"headers\": {\"Authorization\": \"Bearer "+old+"\"}},\n\"x\": {\"command\": \"echo\", \"args\": [\""+old+"\"]}}}")
	cfg := loadConnect(t, testEditor(t), Cursor, path, "github")
	if err := cfg.Disable("x"); err != nil { // puts the line with the old token in the diff
		t.Fatal(err)
	}
	if d := cfg.Diff(); strings.Contains(d, old) || strings.Contains(d, testToken) || !strings.Contains(d, `"args": ["********"]`) {
		t.Errorf("a token is shown:\n%s", d)
	}
}
