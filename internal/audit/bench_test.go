package audit

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Benchmarks: go test ./internal/audit -run '^$' -bench . -benchtime 20x
//
// The query, export and verify benchmarks share one database of benchRows
// events, built once per run in a temporary directory (about two minutes
// here). Set COUNTERSIGN_AUDIT_BENCH_DB to a path to keep it between runs.

const benchRows = 1_000_000

// bigStart is when the benchmark database's first event was written; its
// events are about 15 seconds apart, about 174 days in all.
var bigStart = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

var big struct {
	once sync.Once
	log  *Log
	dir  string // removed after the run; "" when kept
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.log != nil {
		big.log.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "a test left a goroutine behind:", err)
		code = 1
	}
	os.Exit(code)
}

// bigLog returns the shared benchmark database, building it on first use.
func bigLog(b *testing.B) *Log {
	big.once.Do(func() {
		path := os.Getenv("COUNTERSIGN_AUDIT_BENCH_DB")
		if path == "" {
			big.dir, big.err = os.MkdirTemp("", "countersign-audit-bench-")
			if big.err != nil {
				return
			}
			path = filepath.Join(big.dir, "audit.db")
		}
		_, statErr := os.Stat(path)
		var clock atomic.Int64 // Unix ms
		clock.Store(bigStart.UnixMilli())
		big.log, big.err = Open(path, Options{RetentionDays: -1, Logger: quiet,
			Now: func() time.Time { return time.UnixMilli(clock.Load()) }})
		if big.err != nil || statErr == nil {
			return // opened, or kept from an earlier run
		}
		start := time.Now()
		big.err = fillBig(big.log, &clock)
		b.Logf("built %d events in %v", benchRows, time.Since(start).Round(time.Second))
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.log
}

// fillBig is the benchmark's bulk path: it writes benchRows generated events
// through appendRows, so the chain is real, but 10,000 to a transaction,
// with the clock moved between chunks of 50.
func fillBig(l *Log, clock *atomic.Int64) error { return fillN(l, clock, benchRows) }

func fillN(l *Log, clock *atomic.Int64, rows int) error {
	ctx := context.Background()
	gen := newEventGen(1)
	const perTx, perChunk = 10_000, 50
	evs := make([]*Event, perChunk)
	for written := 0; written < rows; {
		tx, err := l.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for n := 0; n < perTx && written < rows; n += perChunk {
			for i := range evs {
				ev, err := normalize(gen.next())
				if err != nil {
					tx.Rollback()
					return err
				}
				evs[i] = &ev
			}
			if _, err := l.appendRows(ctx, tx, evs); err != nil {
				tx.Rollback()
				return err
			}
			written += perChunk
			clock.Add(perChunk * 15_000)
		}
		if _, err := tx.StmtContext(ctx, l.indexText).ExecContext(ctx); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err := l.w.ExecContext(ctx, `PRAGMA optimize = 0x10002`)
	return err
}

// eventGen makes realistic-looking events: calls on six servers through
// their lifecycle, policy denials, and the odd sign-in or settings change.
type eventGen struct {
	rng     *rand.Rand
	pending []Event
	call    int
}

func newEventGen(seed uint64) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(seed, seed))}
}

var (
	genServers = []string{"github", "github", "github", "github", "atlassian", "atlassian", "azure-devops", "sonarqube", "aws", "azure"}
	genTools   = map[string][]string{
		"github":       {"create_issue", "get_issue", "list_issues", "create_pull_request", "merge_pull_request", "get_file_contents", "create_or_update_file", "search_code", "list_commits", "add_issue_comment"},
		"atlassian":    {"createJiraIssue", "getJiraIssue", "searchJiraIssuesUsingJql", "editJiraIssue", "getConfluencePage", "createConfluencePage"},
		"azure-devops": {"wit_create_work_item", "wit_get_work_item", "repo_create_pull_request", "pipelines_run_pipeline"},
		"sonarqube":    {"search_sonar_issues_in_projects", "get_project_quality_gate_status", "change_sonar_issue_status"},
		"aws":          {"call_aws", "suggest_aws_commands"},
		"azure":        {"storage", "keyvault", "monitor"},
	}
	genClients = []string{"Claude Desktop", "Claude Desktop", "Visual Studio Code", "Cursor"}
	genDenials = []string{"not needed now", "wrong repository", "too broad", "ask me tomorrow", ""}
)

func (g *eventGen) target(server string) string {
	n := g.rng.IntN(50)
	if g.rng.IntN(100_000) == 0 {
		return "DEFRA/legacy-archive" // rare: about ten events in a million
	}
	switch server {
	case "github":
		return fmt.Sprintf("DEFRA/ffc-pay-%03d", n)
	case "atlassian":
		return fmt.Sprintf("FFC%02d", n)
	case "azure-devops":
		return fmt.Sprintf("defra/Payments-%02d", n)
	case "sonarqube":
		return fmt.Sprintf("ffc-pay-%03d", n)
	}
	return fmt.Sprintf("%s-account-%02d", server, n%5)
}

func (g *eventGen) next() Event {
	if len(g.pending) > 0 {
		ev := g.pending[0]
		g.pending = g.pending[1:]
		return ev
	}
	if g.rng.IntN(200) == 0 {
		return []Event{
			{Kind: KindSignIn, Server: genServers[g.rng.IntN(len(genServers))], Actor: ActorPerson},
			{Kind: KindSettingsChanged, Actor: ActorPerson, Detail: []byte(`{"timeout":"5m0s"}`)},
			{Kind: KindAppStarted, Actor: ActorApp},
		}[g.rng.IntN(3)]
	}
	g.call++
	server := genServers[g.rng.IntN(len(genServers))]
	tools := genTools[server]
	base := Event{
		Server: server,
		Tool:   tools[g.rng.IntN(len(tools))],
		Client: genClients[g.rng.IntN(len(genClients))],
		CallID: fmt.Sprint(g.call),
		Target: g.target(server),
	}
	args := fmt.Sprintf(`{"target":%q,"title":"Fix the payment calculation for scheme %d","body":"The calculation in step %d rounds down; it should round half up as the scheme rules say. See the attached reproduction."}`,
		base.Target, g.rng.IntN(1000), g.rng.IntN(20))
	with := func(kind Kind, f func(*Event)) Event {
		ev := base
		ev.Kind = kind
		if f != nil {
			f(&ev)
		}
		return ev
	}
	switch p := g.rng.IntN(100); {
	case p < 4: // policy denial, nobody asked
		return with(KindPolicyDenied, func(e *Event) {
			e.Outcome, e.Actor = OutcomeDenied, ActorPolicy
			e.Reason = fmt.Sprintf("%s is not in the allowlist", e.Target)
		})
	case p < 84: // approved and run
		g.pending = []Event{
			with(KindCallDecided, func(e *Event) { e.Outcome, e.Actor = OutcomeApproved, ActorPerson }),
			with(KindCallForwarded, nil),
			with(KindCallResult, func(e *Event) {
				e.ResultSize = int64(200 + g.rng.IntN(20000))
				e.IsError = g.rng.IntN(20) == 0
				if g.rng.IntN(50) == 0 {
					e.Redactions = map[string]int{"github token": 1}
				}
			}),
		}
	case p < 94: // denied by the person
		g.pending = []Event{with(KindCallDecided, func(e *Event) {
			e.Outcome, e.Actor = OutcomeDenied, ActorPerson
			e.Reason = genDenials[g.rng.IntN(len(genDenials))]
		})}
	default: // timed out
		g.pending = []Event{with(KindCallDecided, func(e *Event) {
			e.Outcome, e.Actor, e.Reason = OutcomeTimedOut, ActorTimeout, "5m0s"
		})}
	}
	return with(KindCallSubmitted, func(e *Event) { e.Arguments = []byte(args) })
}

// BenchmarkAppend measures durable appends (one WAL sync per transaction)
// to a fresh log, from one goroutine and from many at once.
func BenchmarkAppend(b *testing.B) {
	for _, parallel := range []int{0, 8, 64} {
		name := "sequential"
		if parallel > 0 {
			name = fmt.Sprintf("parallel-%d", parallel)
		}
		b.Run(name, func(b *testing.B) {
			l, _, _ := openTest(b, Options{})
			gen := newEventGen(2)
			evs := make([]Event, 4096)
			for i := range evs {
				evs[i] = gen.next()
			}
			var n atomic.Int64
			b.ResetTimer()
			start := time.Now()
			if parallel == 0 {
				for i := 0; i < b.N; i++ {
					if _, err := l.Append(context.Background(), evs[i%len(evs)]); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				// RunParallel starts parallel × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, parallel/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if _, err := l.Append(context.Background(), evs[int(i)%len(evs)]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkQuery1M measures one page (100 events) of the audit viewer's
// queries over a million events.
func BenchmarkQuery1M(b *testing.B) {
	l := bigLog(b)
	mid := bigStart.Add(87 * 24 * time.Hour)
	tests := []struct {
		name string
		f    Filter
	}{
		{"newest", Filter{}},
		{"server+outcome", Filter{Server: "github", Outcome: OutcomeDenied}},
		{"rare-server+outcome", Filter{Server: "aws", Outcome: OutcomeTimedOut}},
		{"kind", Filter{Kinds: []Kind{KindSignIn}}},
		{"day", Filter{Since: mid, Until: mid.Add(24 * time.Hour)}},
		{"day+server+outcome", Filter{Since: mid, Until: mid.Add(24 * time.Hour), Server: "sonarqube", Outcome: OutcomeDenied}},
		{"text-common", Filter{Text: "ffc-pay-017"}},
		{"text-rare", Filter{Text: "legacy-archive"}},
		{"text-none", Filter{Text: "no-such-repository"}},
		{"text-short", Filter{Text: "pr"}},
		{"text+server", Filter{Text: "allowlist", Server: "azure"}},
		{"text-common+outcome", Filter{Text: "ffc-pay", Outcome: OutcomeTimedOut}},
		{"text-common+other-server", Filter{Text: "FFC0", Server: "github"}},
		{"text-short+other-server", Filter{Text: "FF", Server: "github"}},
		{"text-none+server", Filter{Text: "no-such-repository", Server: "github"}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			var n int
			start := time.Now()
			for i := 0; i < b.N; i++ {
				page, err := l.Query(context.Background(), tt.f, 0, 100)
				if err != nil {
					b.Fatal(err)
				}
				n = len(page.Records)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/query")
			b.ReportMetric(float64(n), "rows")
		})
	}
	b.Run("page-5000", func(b *testing.B) {
		// A deep page: keyset paging costs the same as the first page.
		page, err := l.Query(context.Background(), Filter{Server: "atlassian"}, 0, MaxPageSize)
		if err != nil {
			b.Fatal(err)
		}
		before := page.Next
		for range 4 {
			page, err = l.Query(context.Background(), Filter{Server: "atlassian"}, before, MaxPageSize)
			if err != nil {
				b.Fatal(err)
			}
			before = page.Next
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, err := l.Query(context.Background(), Filter{Server: "atlassian"}, before, 100); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/query")
	})
}

// BenchmarkVerify1M walks the whole chain of a million events.
func BenchmarkVerify1M(b *testing.B) {
	l := bigLog(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rep, err := l.Verify(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Events != benchRows {
			b.Fatalf("Verify: %v", rep)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkExport1M streams a million events as JSONL.
func BenchmarkExport1M(b *testing.B) {
	l := bigLog(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		n, err := l.Export(context.Background(), io.Discard, Filter{}, FormatJSONL)
		if err != nil || n != benchRows {
			b.Fatalf("Export = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkCallRecords measures the audit's cost on the path of one
// approved tool call: its four records (submitted, decided, forwarded,
// result) all waited for, as before, against the two the security model
// needs waited for (submitted, decided) with the other two queued
// (AppendAsync), as the guard writes them now. ms/call is the time the
// call waits for the log.
func BenchmarkCallRecords(b *testing.B) {
	evs := callEvents("github", "create_issue", "DEFRA/ffc-pay", "1")
	for _, async := range []bool{false, true} {
		name := "all-waited"
		if async {
			name = "forwarded-result-queued"
		}
		b.Run(name, func(b *testing.B) {
			l, _, _ := openTest(b, Options{})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j, ev := range evs {
					ev.CallID = fmt.Sprint(i + 1)
					if async && j >= 2 {
						if err := l.AppendAsync(ev, nil); err != nil {
							b.Fatal(err)
						}
						continue
					}
					if _, err := l.Append(context.Background(), ev); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if err := l.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
