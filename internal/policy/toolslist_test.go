package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func hideNames(names ...string) func(string) bool {
	return func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
}

func TestFilterToolsList(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		hidden []string
		want   string
	}{
		{"middle entry", `{"tools":[{"name":"a"},{"name":"b"},{"name":"c"}],"nextCursor":"n"}`, []string{"b"},
			`{"tools":[{"name":"a"},{"name":"c"}],"nextCursor":"n"}`},
		{"first entry", `{"tools":[{"name":"a"},{"name":"b"},{"name":"c"}],"nextCursor":"n"}`, []string{"a"},
			`{"tools":[{"name":"b"},{"name":"c"}],"nextCursor":"n"}`},
		{"last entry", `{"tools":[{"name":"a"},{"name":"b"},{"name":"c"}],"nextCursor":"n"}`, []string{"c"},
			`{"tools":[{"name":"a"},{"name":"b"}],"nextCursor":"n"}`},
		{"every entry", `{"nextCursor":"n","tools":[{"name":"a"},{"name":"b"}],"_meta":{"k":1}}`, []string{"a", "b"},
			`{"nextCursor":"n","tools":[],"_meta":{"k":1}}`},
		{"white space kept", "{ \"tools\" : [ {\"name\":\"a\"} ,\n {\"name\":\"b\"} ] , \"_meta\" : {} }", []string{"a"},
			"{ \"tools\" : [ {\"name\":\"b\"} ] , \"_meta\" : {} }"},
		{"kept entries byte for byte", `{"tools":[{"name":"a","inputSchema":{"type":"object","x":1.50,"n":12345678901234567890}},{"name":"b"}]}`, []string{"b"},
			`{"tools":[{"name":"a","inputSchema":{"type":"object","x":1.50,"n":12345678901234567890}}]}`},
		{"escaped name", `{"tools":[{"name":"del\u0065te_file"},{"name":"get"}]}`, []string{"delete_file"},
			`{"tools":[{"name":"get"}]}`},
		{"nothing hidden", `{"tools":[{"name":"a"}], "nextCursor": "n"}`, []string{"z"},
			`{"tools":[{"name":"a"}], "nextCursor": "n"}`},
		{"no tools member", `{"nextCursor":"n"}`, []string{"a"}, `{"nextCursor":"n"}`},
		{"null tools", `{"tools":null}`, []string{"a"}, `{"tools":null}`},
		{"empty tools", `{"tools":[]}`, []string{"a"}, `{"tools":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FilterToolsList([]byte(tt.in), hideNames(tt.hidden...))
			if err != nil {
				t.Fatalf("FilterToolsList: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("FilterToolsList =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestFilterToolsListReturnsInputWhenNothingHidden(t *testing.T) {
	in := []byte(`{"tools":[{"name":"a"}]}`)
	got, err := FilterToolsList(in, hideNames())
	if err != nil || &got[0] != &in[0] {
		t.Errorf("FilterToolsList copied or changed a result with nothing to hide (err %v)", err)
	}
}

func TestFilterToolsListRefusesMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not JSON", `{"tools":[`},
		{"trailing data", `{"tools":[]} {}`},
		{"not an object", `[{"name":"a"}]`},
		{"tools not an array", `{"tools":{"name":"a"}}`},
		{"two tools members", `{"tools":[{"name":"a"}],"tools":[{"name":"b"}]}`},
		{"entry not an object", `{"tools":["a"]}`},
		{"entry without a name", `{"tools":[{"description":"x"}]}`},
		{"name not a string", `{"tools":[{"name":5}]}`},
		{"two names", `{"tools":[{"name":"get","name":"delete_file"}]}`},
		{"name in another case", `{"tools":[{"name":"get","NAME":"delete_file"}]}`},
		{"only a Name", `{"tools":[{"Name":"delete_file"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FilterToolsList([]byte(tt.in), hideNames("delete_file"))
			if !errors.Is(err, ErrMalformedToolsList) {
				t.Errorf("FilterToolsList(%s) = %s, %v; want ErrMalformedToolsList", tt.in, got, err)
			}
		})
	}
}

// TestFilterToolsListGolden filters a page shaped like GitHub's tools/list
// (real tool definitions, a cursor, _meta and an unknown member).
func TestFilterToolsListGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "toolslist", "github-page.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPolicy(t, "github", nil, nil, "delete_*", "merge_pull_request")
	got, err := FilterToolsList(in, p.Hidden)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "toolslist", "github-page.filtered.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("filtered page differs from %s (-want +got):\n%s", golden, diff)
	}
	checkFilterInvariants(t, in, got, p.Hidden)
	if bytes.Contains(got, []byte(`"delete_repository"`)) || !bytes.Contains(got, []byte(`"get_file_contents"`)) {
		t.Error("the filtered page has the wrong tools")
	}
}

// checkFilterInvariants: every member but tools is unchanged, the kept
// tools are the visible ones in order and byte for byte.
func checkFilterInvariants(t *testing.T, in, out []byte, hidden func(string) bool) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("output is not valid JSON: %s", out)
	}
	var a, b map[string]json.RawMessage
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("members changed: %d in, %d out", len(a), len(b))
	}
	for k, v := range a {
		if k == "tools" {
			continue
		}
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("member %q changed: %s -> %s", k, v, b[k])
		}
	}
	var inTools, outTools []json.RawMessage
	_ = json.Unmarshal(a["tools"], &inTools)
	_ = json.Unmarshal(b["tools"], &outTools)
	var want []json.RawMessage
	for _, raw := range inTools {
		name, _ := toolName(raw)
		if !hidden(name) {
			want = append(want, raw)
		}
	}
	if len(want) != len(outTools) {
		t.Fatalf("kept %d tools, want %d", len(outTools), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], outTools[i]) {
			t.Fatalf("tool %d changed:\n%s\n%s", i, want[i], outTools[i])
		}
	}
}

// FuzzFilterToolsList: whatever the input, a result that is not refused
// keeps every other member and every visible tool byte for byte.
func FuzzFilterToolsList(f *testing.F) {
	f.Add([]byte(`{"tools":[{"name":"a"},{"name":"delete"}],"nextCursor":"x"}`))
	f.Add([]byte(`{ "tools" : [ ] , "_meta" : { "a" : [ 1 , 2 ] } }`))
	f.Add([]byte(`{"tools":[{"name":"d\u0064","inputSchema":{}}, {"name":"x"}]}`))
	f.Add([]byte(`{"tools":null,"nextCursor":null}`))
	if b, err := os.ReadFile(filepath.Join("testdata", "toolslist", "github-page.json")); err == nil {
		f.Add(b)
	}
	hidden := func(n string) bool { return strings.Contains(n, "d") }
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := FilterToolsList(in, hidden)
		if err != nil {
			return
		}
		checkFilterInvariants(t, in, out, hidden)
	})
}
