package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// jsonFound is the comparable part of a JSON finding.
type jsonFound struct{ Kind, Path, Text string }

// scanJSONFound runs ScanJSON and resolves each finding's text by decoding
// the string at its path.
func scanJSONFound(t *testing.T, raw []byte) []jsonFound {
	t.Helper()
	fs, err := ScanJSON(raw)
	if err != nil {
		t.Fatalf("ScanJSON: %v", err)
	}
	strs := stringsByPath(t, raw)
	var out []jsonFound
	for _, f := range fs {
		s, ok := strs[f.Path]
		if !ok || f.End > len(s) {
			t.Fatalf("finding %+v does not point into a string at its path", f)
		}
		out = append(out, jsonFound{f.Kind, f.Path, s[f.Start:f.End]})
	}
	return out
}

// stringsByPath decodes a document with encoding/json and lists its string
// values by path, independently of the walker under test.
func stringsByPath(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case string:
			out[path] = v
		case []any:
			for i, e := range v {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case map[string]any:
			for k, e := range v {
				p := k
				switch {
				case !plainKey(k):
					p = path + `["` + k + `"]`
				case path != "":
					p = path + "." + k
				}
				walk(p, e)
			}
		}
	}
	walk("", v)
	return out
}

func TestScanJSONPathsAndContext(t *testing.T) {
	f := newFakes(10)
	ghp, pw, key, akia := f.github("ghp"), f.password(), f.apiKey(), f.awsID()
	pem := pemKey(t, "PRIVATE KEY")
	pemJSON, _ := json.Marshal(pem)
	raw := []byte(`{
  "jsonrpc": "2.0", "id": 7,
  "result": {
    "content": [
      {"type": "text", "text": "deploy with ` + ghp + ` please"},
      {"type": "text", "text": "nothing here"}
    ],
    "structuredContent": {
      "items": [
        {"name": "db", "config": {"password": "` + pw + `", "host": "db1"}},
        {"name": "svc", "headers": {"x-api-key": "` + key + `", "accept": "application/json"}}
      ],
      "sa": {"type": "service_account", "private_key": ` + string(pemJSON) + `},
      "env": {"AWS_ACCESS_KEY_ID": "` + akia + `"}
    }
  }
}`)
	got := scanJSONFound(t, raw)
	want := []jsonFound{
		{KindGitHubToken, "result.content[0].text", ghp},
		{KindPassword, "result.structuredContent.items[0].config.password", pw},
		{KindSecret, `result.structuredContent.items[1].headers["x-api-key"]`, key},
		{KindPrivateKey, "result.structuredContent.sa.private_key", strings.TrimSuffix(pem, "\n")},
		{KindAWSAccessKey, "result.structuredContent.env.AWS_ACCESS_KEY_ID", akia},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ScanJSON mismatch (-want +got):\n%s", diff)
	}
}

func TestScanJSONContextNeedsASecretLikeKey(t *testing.T) {
	f := newFakes(11)
	random := f.apiKey()
	tests := []struct {
		name string
		doc  string
		want []jsonFound
	}{
		{"random value under token", `{"token":"` + random + `"}`, []jsonFound{{KindSecret, "token", random}}},
		{"random value under client_secret", `{"client_secret":"` + random + `"}`, []jsonFound{{KindSecret, "client_secret", random}}},
		{"random value under an ordinary key", `{"id":"` + random + `"}`, nil},
		{"random value in an array", `["` + random + `"]`, nil},
		{"pagination token", `{"nextPageToken":"` + random + `"}`, nil},
		{"password placeholder", `{"password":"********"}`, nil},
		{"password null", `{"password":null}`, nil},
		{"password number is not a string", `{"password":12345678}`, nil},
		{"password with spaces", `{"password":"correct horse battery staple"}`, []jsonFound{{KindPassword, "password", "correct horse battery staple"}}},
		{"authorization header value", `{"Authorization":"Bearer ` + random + `"}`, []jsonFound{{KindSecret, "Authorization", random}}},
		{"schema mentioning token", `{"properties":{"token":{"type":"string"}},"required":["token"]}`, nil},
		{
			"connection string pairs",
			`{"connectionString":"Endpoint=sb://ns1.servicebus.windows.net/;EntityPath=q1;SecretValue=` + random + `"}`,
			[]jsonFound{{KindConnectionSecret, "connectionString", random}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := scanJSONFound(t, []byte(tc.doc))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretUsedAsKey(t *testing.T) {
	f := newFakes(16)
	gho, pw := f.github("gho"), f.password()
	raw := []byte(`{"` + gho + `":{"db":"password=` + pw + `"}}`)
	fs, err := ScanJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	marker := `["[redacted: github token]"]`
	want := []Finding{
		{Kind: KindGitHubToken, Path: marker, Start: 0, End: len(gho), Preview: "gho_…" + gho[len(gho)-2:]},
		{Kind: KindPassword, Path: marker + ".db", Start: len("password="), End: len("password=" + pw), Preview: "…"},
	}
	if diff := cmp.Diff(want, fs); diff != "" {
		t.Errorf("ScanJSON mismatch (-want +got):\n%s", diff)
	}
	out, _, err := RedactJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"[redacted: github token]":{"db":"password=[redacted: password]"}}`; string(out) != want {
		t.Errorf("RedactJSON = %s, want %s", out, want)
	}
}

func TestRedactJSONPreservesEveryOtherByte(t *testing.T) {
	f := newFakes(12)
	ghp := f.github("ghp")
	// Odd spacing, key order, a number beyond 2^53, exponent spelling,
	// escapes in untouched strings, unknown fields and _meta.
	prefix := "{ \"jsonrpc\":\"2.0\" ,\t\"id\" : 9007199254740993,\n\"result\":{\"_meta\":{\"x-vendor\":[1.0e+3,-0,true,null]},\n" +
		"  \"z\":\"caf\\u00e9 \\/ \\\"quoted\\\"\",\"a\":123456789012345678901234567890,\n" +
		"  \"content\":[{\"type\":\"text\",\"text\":\"before "
	suffix := " after\\n\\ttab \\u00e9\"}], \"isError\" :false }}\n"
	raw := []byte(prefix + ghp + suffix)
	out, counts, err := RedactJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := prefix + Marker(KindGitHubToken) + suffix
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("RedactJSON mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{KindGitHubToken: 1}, counts); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
}

func TestRedactJSONEscapedSecrets(t *testing.T) {
	f := newFakes(13)
	ghp := f.github("ghp")
	pem := strings.TrimSuffix(pemKey(t, "EC PRIVATE KEY"), "\n")
	pemEscaped := strings.ReplaceAll(pem, "\n", `\n`)
	pw := f.password()
	tests := []struct {
		name   string
		doc    string
		want   string
		counts map[string]int
	}{
		{
			"unicode-escaped prefix",
			`{"text":"a \u00e9 \u0067hp_` + ghp[4:] + ` b\n"}`,
			`{"text":"a \u00e9 [redacted: github token] b\n"}`,
			map[string]int{KindGitHubToken: 1},
		},
		{
			"every byte escaped",
			`{"text":"` + unicodeEscape(ghp) + `"}`,
			`{"text":"[redacted: github token]"}`,
			map[string]int{KindGitHubToken: 1},
		},
		{
			"pem with escaped newlines",
			`{"private_key":"` + pemEscaped + `\n","client_email":"svc@example.iam.gserviceaccount.com"}`,
			`{"private_key":"[redacted: private key]\n","client_email":"svc@example.iam.gserviceaccount.com"}`,
			map[string]int{KindPrivateKey: 1},
		},
		{
			"escaped slash inside a url password",
			`{"url":"postgres:\/\/app:` + pw + `@db1\/orders"}`,
			`{"url":"postgres:\/\/app:[redacted: password]@db1\/orders"}`,
			map[string]int{KindPassword: 1},
		},
		{
			"surrogate pair next to a secret",
			`{"text":"\ud83d\ude00` + ghp + `\ud83d\ude00"}`,
			`{"text":"\ud83d\ude00[redacted: github token]\ud83d\ude00"}`,
			map[string]int{KindGitHubToken: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, counts, err := RedactJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(out)); diff != "" {
				t.Errorf("RedactJSON mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.counts, counts); diff != "" {
				t.Errorf("counts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func unicodeEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(`\u00`)
		b.WriteByte("0123456789abcdef"[r>>4])
		b.WriteByte("0123456789abcdef"[r&15])
	}
	return b.String()
}

func TestRedactJSONNestedAndArrays(t *testing.T) {
	f := newFakes(14)
	bot, visa, jwt, pw := f.slackBot(), f.card("4", 16), f.jwt(), f.password()
	raw := []byte(`{"structuredContent":{"rows":[["` + bot + `",1],{"deep":{"deeper":["ok","card ` + visa + `"]}}],` +
		`"auth":{"password":"` + pw + `","tokens":["` + jwt + `"]}}}`)
	out, counts, err := RedactJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"structuredContent":{"rows":[["[redacted: slack token]",1],{"deep":{"deeper":["ok","card [redacted: card number]"]}}],` +
		`"auth":{"password":"[redacted: password]","tokens":["[redacted: jwt]"]}}}`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("RedactJSON mismatch (-want +got):\n%s", diff)
	}
	wantCounts := map[string]int{KindSlackToken: 1, KindCardNumber: 1, KindJWT: 1, KindPassword: 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
}

func TestRedactJSONLeavesCleanDocumentsAlone(t *testing.T) {
	f := newFakes(15)
	docs := map[string]string{
		"image content block": `{"content":[{"type":"image","data":"` + pngBase64(t, 64, 2) + `","mimeType":"image/png"}]}`,
		"audio content block": `{"content":[{"type":"audio","data":"` + f.azureKey() + f.azureKey() + f.azureKey() + `","mimeType":"audio/wav"}]}`,
		"resource blob":       `{"contents":[{"uri":"file:///a.bin","blob":"` + pngBase64(t, 16, 3) + `"}]}`,
		"ids and digests": `{"sha":"3f786850e387550fdab836ed7e6dc881de23001b","id":"123e4567-e89b-12d3-a456-426614174000",` +
			`"node_id":"MDQ6VXNlcjU4MzIzMQ==","etag":"W/\"a1b2c3\"","number":4111111111111112,"snowflake":1234567890123456789,"ms":1718000000000,"created_at":"2024-01-15T10:30:00Z"}`,
		"tool schema": `{"tools":[{"name":"create_issue","inputSchema":{"type":"object","properties":{"token":{"type":"string",` +
			`"description":"A GitHub token with repo scope"},"password":{"type":"string"}}}}]}`,
		"empty":  `{}`,
		"string": `"just text"`,
		"number": `12345678901234567890`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			raw := []byte(doc)
			out, counts, err := RedactJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			if counts != nil || !bytes.Equal(out, raw) {
				t.Fatalf("changed a clean document: counts %v", counts)
			}
			if &out[0] != &raw[0] {
				t.Errorf("returned a copy, want the input slice itself")
			}
			if fs, _ := ScanJSON(raw); len(fs) != 0 {
				t.Errorf("ScanJSON found %+v", fs)
			}
		})
	}
}

func TestRedactJSONIsIdempotentAndClean(t *testing.T) {
	for _, tc := range detectorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"content": []any{map[string]string{"type": "text", "text": tc.text}}})
			once, counts, err := RedactJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(once) {
				t.Fatalf("output is not valid JSON: %s", once)
			}
			if len(tc.want) > 0 && counts == nil {
				t.Errorf("nothing redacted in %q", tc.text)
			}
			twice, counts2, err := RedactJSON(once)
			if err != nil || !bytes.Equal(once, twice) || counts2 != nil {
				t.Errorf("second pass changed the document: %s → %s (%v, %v)", once, twice, counts2, err)
			}
			if fs, _ := ScanJSON(once); len(fs) != 0 {
				t.Errorf("output still has findings: %+v", fs)
			}
			for _, w := range tc.want {
				if bytes.Contains(once, []byte(w.Text)) {
					t.Errorf("output still holds %q", w.Text)
				}
			}
		})
	}
}

func TestInvalidJSON(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a":}`, `{"a":"b"} x`, `["\x"]`, `{"a":"\ud800` + "\x01" + `"}`} {
		if _, err := ScanJSON([]byte(doc)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("ScanJSON(%q) error = %v, want ErrInvalidJSON", doc, err)
		}
		out, counts, err := RedactJSON([]byte(doc))
		if !errors.Is(err, ErrInvalidJSON) || out != nil || counts != nil {
			t.Errorf("RedactJSON(%q) = %q, %v, %v; want nil, nil, ErrInvalidJSON", doc, out, counts, err)
		}
	}
}

// toolResult builds a realistic tools/call result holding one of each kind
// of secret among ordinary text, structured content and an image.
func toolResult(t testing.TB) []byte {
	f := newFakes(42)
	text := strings.Join([]string{
		"Found 3 matches in DEFRA/ffc-pay:",
		"config/.env.example:3: DB_PASSWORD=" + f.password(),
		"scripts/deploy.sh:12: export GITHUB_TOKEN=" + f.github("ghp"),
		"docs/setup.md:40: aws_access_key_id = " + f.awsID(),
		"docs/setup.md:41: aws_secret_access_key = " + f.awsSecret(),
		"src/db.ts:8: const url = \"postgres://pay:" + f.password() + "@db1.internal:5432/pay\";",
		"src/notify.ts:2: const hook = \"" + f.slackWebhook() + "\";",
		"customer NINO JG 10 37 48 A, card " + f.card("5", 16),
	}, "\n")
	doc := map[string]any{
		"jsonrpc": "2.0",
		"id":      3,
		"result": map[string]any{
			"content": []any{
				map[string]any{"type": "text", "text": text},
				map[string]any{"type": "image", "mimeType": "image/png", "data": pngBase64(t, 8, 4)},
			},
			"structuredContent": map[string]any{
				"storage": map[string]any{
					"connectionString": "DefaultEndpointsProtocol=https;AccountName=paystore;AccountKey=" + f.azureKey() + ";EndpointSuffix=core.windows.net",
				},
				"atlassian": map[string]any{"email": "svc@example.org", "api_token": f.atlassian()},
				"oauth":     map[string]any{"access_token": f.jwt(), "token_type": "Bearer", "expires_in": 3600},
			},
			"isError": false,
		},
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRedactJSONGolden(t *testing.T) {
	out, counts, err := RedactJSON(toolResult(t))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(map[string]any{"counts": counts}, "", "  ")
	got = append(append(out, '\n'), got...)
	golden(t, "tool_result.golden", got)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestFindingsAreOrderedAndDisjoint(t *testing.T) {
	fs, err := ScanJSON(toolResult(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 11 {
		t.Fatalf("found %d findings, want 11", len(fs))
	}
	byPath := map[string][]Finding{}
	for _, f := range fs {
		byPath[f.Path] = append(byPath[f.Path], f)
	}
	for p, list := range byPath {
		for i := 1; i < len(list); i++ {
			if list[i].Start < list[i-1].End {
				t.Errorf("%s: findings overlap or are out of order: %+v", p, list)
			}
		}
	}
}

// TestRedactJSONCardNumbersWrittenAsNumbers checks a card number written as
// a JSON number is found and replaced by its marker as a string (a number
// cannot hold a marker, and any other number would pass as data), while
// other numbers keep their exact spelling.
func TestRedactJSONCardNumbersWrittenAsNumbers(t *testing.T) {
	f := newFakes(12)
	visa, amex := f.card("4", 16), f.card("37", 15)
	raw := `{"payment":{"card":` + visa + `, "amount":12.50,"order":4111111111111112,"cards":[-` + amex + `,1e400]},"ts":1718000000000}`
	want := `{"payment":{"card":"[redacted: card number]", "amount":12.50,"order":4111111111111112,"cards":["[redacted: card number]",1e400]},"ts":1718000000000}`
	out, counts, err := RedactJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("RedactJSON\n got %s\nwant %s", out, want)
	}
	if counts[KindCardNumber] != 2 {
		t.Errorf("counts = %v", counts)
	}
	fs, err := ScanJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got []jsonFound
	for _, fd := range fs {
		got = append(got, jsonFound{fd.Kind, fd.Path, fd.Preview})
	}
	wantFound := []jsonFound{
		{KindCardNumber, "payment.card", "…" + visa[12:]},
		{KindCardNumber, "payment.cards[0]", "…" + amex[11:]},
	}
	if diff := cmp.Diff(wantFound, got); diff != "" {
		t.Errorf("ScanJSON (-want +got):\n%s", diff)
	}
	if again, c, _ := RedactJSON(out); c != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %s", again)
	}
}

// TestRedactJSONBase64Blobs checks a resource blob, or any other base64
// value, that decodes to a secret is replaced whole, escapes and all,
// while base64 images and cursors that hold none pass byte for byte.
func TestRedactJSONBase64Blobs(t *testing.T) {
	f := newFakes(13)
	ghp, ant := f.github("ghp"), f.anthropicKey()
	env := base64.StdEncoding.EncodeToString([]byte("REGION=eu-west-2\nGITHUB_TOKEN=" + ghp + "\n"))
	escaped := strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte("ANTHROPIC_API_KEY="+ant+"\n#"+strings.Repeat("?", 40))), "/", `\/`)
	if !strings.Contains(escaped, `\/`) {
		t.Fatal("the escaped blob has no escape to test")
	}
	png := pngBase64(t, 24, 5)
	raw := `{"contents":[{"uri":"file:///app/.env","mimeType":"text/plain","blob":"` + env + `"},` +
		`{"uri":"file:///keys","blob":"` + escaped + `"},` +
		`{"uri":"file:///logo.png","mimeType":"image/png","blob":"` + png + `"}],` +
		`"nextCursor":"` + base64.StdEncoding.EncodeToString([]byte(`{"page":2}`)) + `"}`
	want := strings.Replace(strings.Replace(raw, env, "[redacted: github token]", 1), escaped, "[redacted: anthropic api key]", 1)
	out, counts, err := RedactJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("RedactJSON\n got %s\nwant %s", out, want)
	}
	if diff := cmp.Diff(map[string]int{KindGitHubToken: 1, KindAnthropicKey: 1}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	fs, _ := ScanJSON([]byte(raw))
	for _, fd := range fs {
		if fd.Preview != "base64…" {
			t.Errorf("finding %+v: a blob's preview shows part of it", fd)
		}
	}
}
