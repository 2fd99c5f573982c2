package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// exportFixture is queryFixture plus events whose text a spreadsheet would
// run as formulas.
var exportFixture = append(append([]Event{}, queryFixture...),
	Event{Kind: KindCallSubmitted, Server: "github", Tool: `=HYPERLINK("http://evil.example","x")`, CallID: "6",
		Target: "+DEFRA", Reason: "@sum", Arguments: []byte(`-1`)},
	Event{Kind: KindCallDecided, Server: "github", Tool: "create_issue", CallID: "7", Outcome: OutcomeApproved, Actor: ActorPerson,
		Arguments: []byte(`{"title":"<b>a & b</b>"}`), EditedArguments: []byte(`{"title":"a \u0026 b"}`)},
	Event{Kind: KindCallResult, CallID: "7", ResultSize: 99, IsError: true, Redactions: map[string]int{"jwt": 1, "github token": 2}},
)

// golden compares got with testdata/name, or rewrites it with -update.
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
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// TestExportGolden pins the export formats and, through the hashes in them,
// the canonical encoding: a change to either breaks every existing log.
func TestExportGolden(t *testing.T) {
	l, _ := fixtureLog(t, exportFixture)
	for _, format := range []Format{FormatJSONL, FormatCSV} {
		t.Run(format.String(), func(t *testing.T) {
			var buf bytes.Buffer
			n, err := l.Export(context.Background(), &buf, Filter{}, format)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(exportFixture)) {
				t.Errorf("Export wrote %d events, want %d", n, len(exportFixture))
			}
			golden(t, "export."+format.String(), buf.Bytes())
		})
	}
}

func TestExportCSVDefusesFormulas(t *testing.T) {
	l, _ := fixtureLog(t, exportFixture)
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, Filter{CallID: "6"}, FormatCSV); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("got %d CSV records, want a header and one event", len(recs))
	}
	if diff := cmp.Diff(exportColumns, recs[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	for _, cell := range recs[1] {
		if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
			t.Errorf("cell %q would run as a formula", cell)
		}
	}
}

func TestExportFilteredStillChecks(t *testing.T) {
	l, _ := fixtureLog(t, exportFixture)
	for _, f := range []Filter{{}, {Server: "github"}, {Text: "ffc"}, {Outcome: OutcomeDenied}, {Server: "nobody"}} {
		var buf bytes.Buffer
		n, err := l.Export(context.Background(), &buf, f, FormatJSONL)
		if err != nil {
			t.Fatal(err)
		}
		want := ids(queryAll(t, l, f, MaxPageSize))
		var got []int64
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var e exportRecord
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			got = append([]int64{e.ID}, got...) // exports run oldest first
		}
		if diff := cmp.Diff(want, got); diff != "" || n != int64(len(want)) {
			t.Errorf("filter %+v: exported %d events (-query +export):\n%s", f, n, diff)
		}
		rep, err := CheckExport(&buf)
		if err != nil || !rep.OK() || rep.Events != n {
			t.Errorf("filter %+v: CheckExport = %v, %v", f, rep, err)
		}
	}
}

func TestCheckExport(t *testing.T) {
	l, _ := fixtureLog(t, exportFixture)
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, Filter{}, FormatJSONL); err != nil {
		t.Fatal(err)
	}
	verified, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	edit := func(i int, f func(e *exportRecord)) string {
		var e exportRecord
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	with := func(i int, line string) string {
		c := append([]string{}, lines...)
		c[i] = line
		return strings.Join(c, "")
	}
	rehashed := func(e *exportRecord) {
		e.Outcome = "approved"
		r, err := parseExportLine(mustJSON(t, e))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := r.computeHash(nil)
		e.Hash = h.String()
	}
	tests := []struct {
		name  string
		input string
		want  Report // Break.Detail is only checked for a prefix
	}{
		{"unchanged", buf.String(), Report{Events: 15, FirstID: 1, LastID: 15, Head: verified.Head}},
		{"blank lines ignored", "\n" + strings.Join(lines, "\n"), Report{Events: 15, FirstID: 1, LastID: 15, Head: verified.Head}},
		{"empty", "", Report{}},
		{"decision edited", with(5, edit(5, func(e *exportRecord) { e.Outcome = "approved" })),
			Report{Events: 5, FirstID: 1, LastID: 5, Head: lineHash(t, lines[4]), Break: &Break{ID: 6, Line: 6, Problem: ProblemContentChanged}}},
		{"edit with its hash recomputed", with(5, edit(5, rehashed)),
			Report{Events: 6, FirstID: 1, LastID: 6, Head: lineHash(t, edit(5, rehashed)), Break: &Break{ID: 7, Line: 7, Problem: ProblemLinkBroken}}},
		{"lines swapped", strings.Join(append(append(append([]string{}, lines[:3]...), lines[4], lines[3]), lines[5:]...), ""),
			Report{Events: 4, FirstID: 1, LastID: 5, Head: lineHash(t, lines[4]), Break: &Break{ID: 4, Line: 5, Problem: ProblemOutOfOrder}}},
		{"a line removed reads as a filtered export", strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), ""),
			Report{Events: 14, FirstID: 1, LastID: 15, Head: verified.Head}},
		{"not JSON", with(2, "hello\n"),
			Report{Events: 2, FirstID: 1, LastID: 2, Head: lineHash(t, lines[1]), Break: &Break{Line: 3, Problem: ProblemUnreadable}}},
		{"unknown field", with(0, `{"id":1,"sneaky":true}`+"\n"),
			Report{Break: &Break{Line: 1, Problem: ProblemUnreadable}}},
		{"short hash", with(0, edit(0, func(e *exportRecord) { e.Hash = "abcd" })),
			Report{Break: &Break{ID: 1, Line: 1, Problem: ProblemUnreadable}}},
		{"bad time", with(0, edit(0, func(e *exportRecord) { e.Time = "yesterday" })),
			Report{Break: &Break{ID: 1, Line: 1, Problem: ProblemUnreadable}}},
		{"two objects on a line", with(0, strings.TrimSuffix(lines[0], "\n")+lines[1]),
			Report{Break: &Break{ID: 1, Line: 1, Problem: ProblemUnreadable}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckExport(strings.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if got.Break != nil {
				got.Break.Detail = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckExport (-want +got):\n%s", diff)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lineHash(t *testing.T, line string) Hash {
	t.Helper()
	var e exportRecord
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	h, err := parseHash(e.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestExportRefusesUnknownFormat(t *testing.T) {
	l, _ := fixtureLog(t, queryFixture[:1])
	if _, err := l.Export(context.Background(), &bytes.Buffer{}, Filter{}, Format(9)); err == nil {
		t.Error("Export with an unknown format succeeded")
	}
}

func FuzzCheckExport(f *testing.F) {
	l, _, c := openTest(f, Options{})
	for _, ev := range exportFixture {
		mustAppend(f, l, ev)
		c.Advance(1)
	}
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, Filter{}, FormatJSONL); err != nil {
		f.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	f.Add(buf.String())
	f.Add(lines[0])
	f.Add(lines[0] + lines[2])
	f.Add(strings.Replace(lines[5], "denied", "approved", 1))
	f.Add(`{"id":1}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, input string) {
		rep, err := CheckExport(strings.NewReader(input))
		if err != nil {
			t.Fatalf("CheckExport of an in-memory input failed: %v", err)
		}
		nonBlank := int64(0)
		for _, line := range strings.Split(input, "\n") {
			if strings.TrimSpace(line) != "" {
				nonBlank++
			}
		}
		if rep.OK() && rep.Events != nonBlank {
			t.Errorf("OK with %d events for %d lines", rep.Events, nonBlank)
		}
		if !rep.OK() && rep.Break.Line == 0 {
			t.Errorf("break without a line: %+v", rep.Break)
		}
	})
}
