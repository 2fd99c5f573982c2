package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sourceText returns about n bytes of real Go source (this package's own
// non-test files, repeated): identifiers, operators, numbers, quotes and
// comments in realistic proportions, as a code-search tool returns them.
func sourceText(b *testing.B, n int) string {
	b.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		b.Fatal(err)
	}
	var src strings.Builder
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		src.Write(data)
	}
	one := src.String()
	var out strings.Builder
	for line := 0; out.Len() < n; line++ {
		fmt.Fprintf(&out, "// file %d\n", line)
		out.WriteString(one)
	}
	return out.String()[:n]
}

// textResult wraps text as a tools/call result with one text block.
func textResult(b *testing.B, text string) []byte {
	raw, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1,
		"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": false},
	})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// listResult is a structured result with many small strings, like a
// list_issues call returning 2,000 issues.
func listResult(b *testing.B) []byte {
	items := make([]map[string]any, 2000)
	for i := range items {
		items[i] = map[string]any{
			"number": 1000 + i, "id": 98765432100 + i, "node_id": fmt.Sprintf("I_kwDOABCD%08d", i),
			"title": fmt.Sprintf("Fix flaky test %d in payments", i), "state": "open",
			"user":       map[string]any{"login": "octocat", "id": 583231, "type": "User"},
			"labels":     []string{"bug", "payments"},
			"created_at": "2024-01-15T10:30:00Z", "html_url": fmt.Sprintf("https://github.com/DEFRA/ffc-pay/issues/%d", 1000+i),
			"body": "Steps: run `npm test` with NODE_ENV=test and PORT=3000; expected 200 but got 500 after 3 retries.",
		}
	}
	raw, err := json.Marshal(map[string]any{"result": map[string]any{"structuredContent": map[string]any{"items": items}}})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkRedactJSON(b *testing.B) {
	const size = 1 << 20
	f := newFakes(99)
	clean := sourceText(b, size)
	dirty := clean[:size/4] + "\nGITHUB_TOKEN=" + f.github("ghp") + "\n" +
		clean[size/4:size/2] + "\npostgres://app:" + f.password() + "@db/x\n" +
		clean[size/2:3*size/4] + "\n" + f.jwt() + "\n" + clean[3*size/4:]
	docs := []struct {
		name      string
		raw       []byte
		wantClean bool
	}{
		{"1MB-source-clean", textResult(b, clean), true},
		{"1MB-source-3-secrets", textResult(b, dirty), false},
		{"2000-issues-clean", listResult(b), true},
		{"1MB-image", []byte(`{"content":[{"type":"image","mimeType":"image/png","data":"` + pngBase64(b, 512, 9) + `"}]}`), true},
		{"1MB-base64-text-blob", []byte(`{"contents":[{"uri":"file:///src.go","blob":"` + base64.StdEncoding.EncodeToString([]byte(clean)) + `"}]}`), true},
	}
	for _, d := range docs {
		b.Run(d.name, func(b *testing.B) {
			_, counts, err := RedactJSON(d.raw)
			if err != nil {
				b.Fatal(err)
			}
			if (counts == nil) != d.wantClean {
				b.Fatalf("counts = %v, want clean=%v", counts, d.wantClean)
			}
			b.SetBytes(int64(len(d.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := RedactJSON(d.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScan(b *testing.B) {
	text := sourceText(b, 1<<20)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if fs := Scan(text); len(fs) != 0 {
			b.Fatalf("clean text has findings: %+v", fs[0])
		}
	}
}

// BenchmarkScanAdversarial feeds 1 MB of inputs built to make a naive
// detector quadratic (a hostile upstream server controls tool results); the
// figures should stay in the same range as clean text.
func BenchmarkScanAdversarial(b *testing.B) {
	f := newFakes(98)
	patterns := map[string]string{
		"repeated-key-value":      "pwd=",
		"quoted-unterminated":     `"password": "x`,
		"pem-without-end":         "-----BEGIN PRIVATE KEY-----!",
		"entra-secret-shape":      "aaa1Q~",
		"jwt-headers":             "eyJhbGciOiJIUzI1NiJ9.",
		"card-groups":             "4111 ",
		"url-schemes":             "a://b:",
		"bearer-words":            "Bearer ",
		"aws-key-ids":             f.awsID() + " ",
		"github-prefixes":         "ghp_ab ",
		"digits":                  "0123456789",
		"ni-prefixes":             "AB 12 34 ",
		"base64-with-equals-runs": "QUJD=",
		"sk-prefixes":             "-sk-proj-",
		"openai-marker-runs":      "-sk-T3BlbkFJ",
		"pypi-prefixes":           "-pypi-AgEIcHlwaS5vcmc",
		"gitlab-prefixes":         "-glpat-a.",
		"sendgrid-prefixes":       "SG.abcdefghijklmnopqrstuv.",
		"ado-length-words":        strings.Repeat("a", 51) + "2 ",
		"base64-nested":           "UVVKRA",
	}
	for name, p := range patterns {
		text := strings.Repeat(p, (1<<20)/len(p))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				Scan(text)
			}
		})
	}
}
