package audit

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
	"github.com/google/go-cmp/cmp"
)

// queryFixture is twelve events a minute apart from t0 (ids 1 to 12).
var queryFixture = []Event{
	{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1", Target: "DEFRA/ffc-pay"},
	{Kind: KindCallDecided, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1", Target: "DEFRA/ffc-pay", Outcome: OutcomeApproved, Actor: ActorPerson},
	{Kind: KindCallForwarded, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1", Target: "DEFRA/ffc-pay"},
	{Kind: KindCallResult, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1", Target: "DEFRA/ffc-pay", ResultSize: 10},
	{Kind: KindCallSubmitted, Server: "jira", Tool: "create_issue", Client: "Cursor", CallID: "2", Target: "ABC"},
	{Kind: KindCallDecided, Server: "jira", Tool: "create_issue", Client: "Cursor", CallID: "2", Target: "ABC", Outcome: OutcomeDenied, Actor: ActorPerson, Reason: "not needed now"},
	{Kind: KindPolicyDenied, Server: "github", Tool: "delete_repository", Client: "Cursor", CallID: "3", Target: "DEFRA/ffc_pay", Outcome: OutcomeDenied, Actor: ActorPolicy, Reason: "repository DEFRA/ffc_pay is not in the allowlist"},
	{Kind: KindCallSubmitted, Server: "sonarqube", Tool: "get_issues", Client: "Claude Desktop", CallID: "4", Target: "proj-100%"},
	{Kind: KindCallDecided, Server: "sonarqube", Tool: "get_issues", Client: "Claude Desktop", CallID: "4", Target: "proj-100%", Outcome: OutcomeTimedOut, Actor: ActorTimeout, Reason: "5m0s"},
	{Kind: KindSignIn, Server: "github", Actor: ActorPerson},
	{Kind: KindSettingsChanged, Actor: ActorPerson, Detail: []byte(`{"timeout":"10m"}`)},
	{Kind: KindCallSubmitted, Server: "github", Tool: "search_code", Client: "Claude Desktop", CallID: "5", Target: `C:\repos\x`},
}

func fixtureLog(t testing.TB, evs []Event) (*Log, *clocktest.Clock) {
	t.Helper()
	l, _, c := openTest(t, Options{})
	for _, ev := range evs {
		mustAppend(t, l, ev)
		c.Advance(time.Minute)
	}
	return l, c
}

func ids(recs []Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	l, _ := fixtureLog(t, queryFixture)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"everything, newest first", Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"server", Filter{Server: "github"}, []int64{12, 10, 7, 4, 3, 2, 1}},
		{"tool", Filter{Tool: "create_issue"}, []int64{6, 5, 4, 3, 2, 1}},
		{"client", Filter{Client: "Cursor"}, []int64{7, 6, 5}},
		{"call", Filter{CallID: "1"}, []int64{4, 3, 2, 1}},
		{"kinds", Filter{Kinds: []Kind{KindPolicyDenied, KindCallDecided}}, []int64{9, 7, 6, 2}},
		{"outcome", Filter{Outcome: OutcomeDenied}, []int64{7, 6}},
		{"server and outcome", Filter{Server: "github", Outcome: OutcomeDenied}, []int64{7}},
		{"server nobody used", Filter{Server: "aws"}, nil},
		{"since", Filter{Since: at(5)}, []int64{12, 11, 10, 9, 8, 7, 6}},
		{"until", Filter{Until: at(3)}, []int64{3, 2, 1}},
		{"since and until", Filter{Since: at(2), Until: at(6)}, []int64{6, 5, 4, 3}},
		{"since after the last event", Filter{Since: at(60)}, nil},
		{"until before the first event", Filter{Until: at(-1)}, nil},
		{"since a moment between events", Filter{Since: at(10).Add(time.Millisecond)}, []int64{12}},
		{"text in target", Filter{Text: "ffc-pay"}, []int64{4, 3, 2, 1}},
		{"underscore is not a wildcard", Filter{Text: "ffc_pay"}, []int64{7}},
		{"percent is not a wildcard", Filter{Text: "100%"}, []int64{9, 8}},
		{"backslash is literal", Filter{Text: `repos\x`}, []int64{12}},
		{"text ignores case", Filter{Text: "NOT NEEDED"}, []int64{6}},
		{"quoted phrase", Filter{Text: `"not needed" now`}, []int64{6}},
		{"phrase order matters", Filter{Text: `"needed not"`}, nil},
		{"every word must appear", Filter{Text: "create issue"}, []int64{6, 5, 4, 3, 2, 1}},
		{"short word", Filter{Text: "is"}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"server is not searched as text", Filter{Text: "github"}, nil},
		{"text and server", Filter{Text: "ffc", Server: "jira"}, nil},
		{"text and outcome", Filter{Text: "allowlist", Outcome: OutcomeDenied}, []int64{7}},
		{"only spaces", Filter{Text: "   "}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
	}
	for _, plan := range []textPlan{textAuto, textIndex, textScan} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/plan %d", tt.name, plan), func(t *testing.T) {
				l.textPlan = plan
				page, err := l.Query(context.Background(), tt.f, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, ids(page.Records)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if page.More || page.Next != 0 {
					t.Errorf("More = %v, Next = %d on a single page", page.More, page.Next)
				}
			})
		}
	}
}

func TestQueryPages(t *testing.T) {
	l, _ := fixtureLog(t, queryFixture)
	tests := []struct {
		name   string
		before int64
		limit  int
		want   []int64
		more   bool
	}{
		{"first page", 0, 5, []int64{12, 11, 10, 9, 8}, true},
		{"second page", 8, 5, []int64{7, 6, 5, 4, 3}, true},
		{"last page", 3, 5, []int64{2, 1}, false},
		{"exactly the rest", 6, 5, []int64{5, 4, 3, 2, 1}, false},
		{"before the first", 1, 5, nil, false},
		{"default size", 0, 0, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := l.Query(context.Background(), Filter{}, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(page.Records)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			wantNext := int64(0)
			if tt.more {
				wantNext = tt.want[len(tt.want)-1]
			}
			if page.More != tt.more || page.Next != wantNext {
				t.Errorf("More, Next = %v, %d; want %v, %d", page.More, page.Next, tt.more, wantNext)
			}
		})
	}
}

func TestQueryRefusesOverlongSearches(t *testing.T) {
	l, _ := fixtureLog(t, queryFixture[:1])
	for _, text := range []string{
		strings.Repeat("a ", maxTerms+1),
		strings.Repeat("a", maxTermBytes+1),
	} {
		if _, err := l.Query(context.Background(), Filter{Text: text}, 0, 0); err == nil {
			t.Errorf("Query(%.20q…) succeeded", text)
		}
	}
}

// matchesFilter is the reference for Query: what a filter means, in Go.
func matchesFilter(r Record, f Filter, terms []string) bool {
	ms := r.Time.UnixMilli()
	switch {
	case f.Server != "" && r.Server != f.Server,
		f.Tool != "" && r.Tool != f.Tool,
		f.Client != "" && r.Client != f.Client,
		f.CallID != "" && r.CallID != f.CallID,
		f.Outcome != "" && r.Outcome != f.Outcome,
		len(f.Kinds) > 0 && !slices.Contains(f.Kinds, r.Kind),
		!f.Since.IsZero() && ms < f.Since.UnixMilli(),
		!f.Until.IsZero() && ms >= f.Until.UnixMilli():
		return false
	}
	for _, t := range terms {
		t = asciiLower(t)
		if !strings.Contains(asciiLower(r.Tool), t) && !strings.Contains(asciiLower(r.Target), t) && !strings.Contains(asciiLower(r.Reason), t) {
			return false
		}
	}
	return true
}

// asciiLower lowercases ASCII letters only, as SQLite's LIKE compares.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// queryAll pages through every match of f.
func queryAll(t testing.TB, l *Log, f Filter, limit int) []Record {
	t.Helper()
	var all []Record
	before := int64(0)
	for {
		page, err := l.Query(context.Background(), f, before, limit)
		if err != nil {
			t.Fatalf("Query(%+v): %v", f, err)
		}
		all = append(all, page.Records...)
		if !page.More {
			return all
		}
		before = page.Next
	}
}

// TestQueryAgreesWithReference runs random filters over random events, with
// each search plan, and compares with matchesFilter.
func TestQueryAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	servers := []string{"github", "jira", "sonarqube", ""}
	tools := []string{"create_issue", "get_issues", "search_code", "delete_repository", "Merge_PR"}
	targets := []string{"DEFRA/ffc-pay", "DEFRA/ffc_pay", "ABC", "proj-100%", "Straße", "ÉCOLE/x", ""}
	reasons := []string{"", "not needed now", "5m0s", "repository is not in the allowlist", "NOT NEEDED"}
	outcomes := []Outcome{OutcomeApproved, OutcomeDenied, OutcomeTimedOut, ""}
	var evs []Event
	for i := range 300 {
		evs = append(evs, Event{
			Kind:    Kinds()[rng.IntN(len(Kinds())-1)], // not KindPruned
			Server:  pick(servers...),
			Tool:    pick(tools...),
			Client:  pick("Claude Desktop", "Cursor"),
			CallID:  fmt.Sprint(i / 4),
			Target:  pick(targets...),
			Outcome: outcomes[rng.IntN(len(outcomes))],
			Reason:  pick(reasons...),
		})
	}
	l, _ := fixtureLog(t, evs)
	all := queryAll(t, l, Filter{}, MaxPageSize)
	for i := range 100 {
		f := Filter{}
		if rng.IntN(3) == 0 {
			f.Server = pick(servers...)
		}
		if rng.IntN(4) == 0 {
			f.Tool = pick(tools...)
		}
		if rng.IntN(4) == 0 {
			f.Outcome = outcomes[rng.IntN(len(outcomes))]
		}
		if rng.IntN(4) == 0 {
			f.Kinds = []Kind{KindCallDecided, KindPolicyDenied}
		}
		if rng.IntN(3) == 0 {
			f.Since = t0.Add(time.Duration(rng.IntN(300)) * time.Minute)
		}
		if rng.IntN(3) == 0 {
			f.Until = t0.Add(time.Duration(rng.IntN(300)) * time.Minute)
		}
		if rng.IntN(2) == 0 {
			f.Text = pick("ffc", "ffc-pay", "FFC_", "issue", "is", "%", "_", "100%", "strasse", "STRAßE", "école", "école/", `"not needed"`, "needed not", "allowlist repository", "e")
		}
		terms, _ := parseText(f.Text)
		var want []int64
		for _, r := range all {
			if matchesFilter(r, f, terms) {
				want = append(want, r.ID)
			}
		}
		for _, plan := range []textPlan{textAuto, textIndex, textScan} {
			l.textPlan = plan
			got := ids(queryAll(t, l, f, 10+rng.IntN(100)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("case %d, plan %d, filter %+v (-want +got):\n%s", i, plan, f, diff)
			}
		}
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"ffc-pay", []string{"ffc-pay"}},
		{" create\tissue\n", []string{"create", "issue"}},
		{`"not needed" now`, []string{"not needed", "now"}},
		{`ab"cd ef"gh`, []string{"ab", "cd ef", "gh"}},
		{`"unterminated phrase`, []string{"unterminated phrase"}},
		{`""`, nil},
		{"a\x00b", []string{"a", "b"}},
		{"bad\xffbyte", []string{"bad\uFFFDbyte"}},
		{"100% _x_", []string{"100%", "_x_"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseText(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseText(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{"", "a b", `"a b" c`, "a\x00b", "\xff", `"`, "x\u00a0y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms, err := parseText(s)
		if err != nil {
			return // too many or too long words
		}
		for _, term := range terms {
			if term == "" || strings.ContainsAny(term, "\"\x00") || !utf8Valid(term) {
				t.Errorf("parseText(%q) gave word %q", s, term)
			}
		}
		if !strings.ContainsAny(s, "\"\x00") && utf8Valid(s) {
			if want := strings.Fields(s); !slices.Equal(terms, want) {
				t.Errorf("parseText(%q) = %q, want %q", s, terms, want)
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// FuzzQueryText adds an event with a fuzzed tool name and target to a
// small log and searches with fuzzed text, with each plan, comparing with
// matchesFilter. The event is written in a transaction that is rolled back,
// so the log stays small and nothing waits for the disk.
func FuzzQueryText(f *testing.F) {
	f.Add("create_issue", "issue")
	f.Add("ffc-pay", "ffc_pay")
	f.Add("100%", "%")
	f.Add(`a\b`, `\`)
	f.Add("Straße", "STRASSE")
	f.Add("KELVIN", "\u212a")
	f.Add("éé", "ÉÉ")
	f.Add("x", `"a b" "`)
	l, _, _ := openTest(f, Options{})
	var fixture []Record
	for _, ev := range queryFixture {
		fixture = append(fixture, mustAppend(f, l, ev))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tool, text string) {
		terms, err := parseText(text)
		if err != nil {
			return // too many or too long words
		}
		ev, err := normalize(Event{Kind: KindCallSubmitted, Tool: tool, Target: text})
		if err != nil {
			t.Fatal(err)
		}
		tx, err := l.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		added, err := l.appendRows(ctx, tx, []*Event{&ev})
		if err != nil {
			t.Fatal(err)
		}
		var want []int64 // newest first
		if matchesFilter(added[0], Filter{}, terms) {
			want = append(want, added[0].ID)
		}
		for _, r := range slices.Backward(fixture) {
			if matchesFilter(r, Filter{}, terms) {
				want = append(want, r.ID)
			}
		}
		for _, plan := range []textPlan{textIndex, textScan} {
			p, err := planQuery(ctx, tx, Filter{Text: text}, terms, 0, true, plan)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			if err := p.each(ctx, tx, 0, func(r *row) (bool, error) {
				got = append(got, r.id)
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("plan %d, tool %q, text %q (-want +got):\n%s", plan, tool, text, diff)
			}
		}
	})
}

// indexedEvents counts the events in the search index.
func indexedEvents(t *testing.T, l *Log) int {
	t.Helper()
	var n int
	if err := l.r.QueryRow(`SELECT count(*) FROM events_text`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A commit someone waits for (a call's submitted or decided record) leaves
// the search index to a later commit, yet a search finds the event at
// once; queued events, a quiet moment and Close bring the index up to date.
func TestWaitedAppendsLeaveTheSearchIndexForLater(t *testing.T) {
	l, path, _ := openTest(t, Options{indexIdle: time.Hour, asyncHold: time.Millisecond})
	ctx := context.Background()
	if _, err := l.Append(ctx, Event{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue", Target: "DEFRA/ffc-pay"}); err != nil {
		t.Fatal(err)
	}
	if n := indexedEvents(t, l); n != 0 {
		t.Errorf("%d events indexed by a waited commit; want the index left for later", n)
	}
	for _, plan := range []textPlan{textIndex, textScan} {
		l.textPlan = plan
		page, err := l.Query(ctx, Filter{Text: "ffc-pay"}, 0, 0)
		if err != nil || len(page.Records) != 1 {
			t.Errorf("plan %d: a search for the unindexed event found %d, %v", plan, len(page.Records), err)
		}
	}
	if err := l.AppendAsync(Event{Kind: KindCallResult, Server: "github", Tool: "create_issue"}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "queued events index what waited", func() bool { return indexedEvents(t, l) == 2 })

	// Pages that span the indexed events and the newer ones read directly
	// hold what a plain scan finds, in order.
	for range 3 {
		if _, err := l.Append(ctx, Event{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue", Target: "DEFRA/ffc-pay"}); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(plan textPlan) (ids []int64) {
		l.textPlan = plan
		before := int64(0)
		for {
			page, err := l.Query(ctx, Filter{Text: "ffc-pay"}, before, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Records {
				ids = append(ids, r.ID)
			}
			if !page.More {
				return ids
			}
			before = page.Next
		}
	}
	if diff := cmp.Diff([]int64{5, 4, 3, 1}, pages(textIndex)); diff != "" {
		t.Errorf("pages through the index and past it (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{5, 4, 3, 1}, pages(textScan)); diff != "" {
		t.Errorf("pages of a plain scan (-want +got):\n%s", diff)
	}
	l.textPlan = textIndex
	var csv bytes.Buffer
	if n, err := l.Export(ctx, &csv, Filter{Text: "ffc-pay"}, FormatCSV); err != nil || n != 4 {
		t.Errorf("export through the index and past it: %d events, %v; want 4", n, err)
	}
	l.textPlan = textAuto

	if _, err := l.Append(ctx, Event{Kind: KindCallSubmitted, Server: "github", Tool: "get_issue"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM events_text`).Scan(&n); err != nil || n != 6 {
		t.Errorf("after Close the index holds %d events, %v; want 6", n, err)
	}

	quiet, _, _ := openTest(t, Options{indexIdle: 10 * time.Millisecond})
	if _, err := quiet.Append(ctx, Event{Kind: KindCallSubmitted, Server: "github", Tool: "get_issue"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a quiet moment to index the event", func() bool { return indexedEvents(t, quiet) == 1 })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
