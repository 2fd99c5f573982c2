package guard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/policy"
)

// BenchmarkGatedCall measures what the guard and the audit log add to one
// tool call, with a person who approves at once (in process): policy,
// redaction, the submitted and decided records (waited for), the queue,
// and the forwarded and result records. p50-ms and p99-ms are per call.
// "no-audit" is the same without an audit log, so the difference is the
// audit's share.
//
//	go test ./internal/guard -run '^$' -bench GatedCall -benchtime 2000x
//
// The log is written in COUNTERSIGN_BENCH_DIR if set (use a directory on
// the disk the app uses: a tmpfs makes a disk sync free), else in a
// temporary directory.
func BenchmarkGatedCall(b *testing.B) {
	for _, withAudit := range []bool{true, false} {
		name := "audit"
		if !withAudit {
			name = "no-audit"
		}
		b.Run(name, func(b *testing.B) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			var rec Recorder
			if withAudit {
				dir := b.TempDir()
				if d := os.Getenv("COUNTERSIGN_BENCH_DIR"); d != "" {
					var err error
					if dir, err = os.MkdirTemp(d, "guard-bench-"); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { os.RemoveAll(dir) })
				}
				log, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { log.Close() })
				rec = log
			}
			q := gate.New(gate.Options{Timeout: time.Minute})
			b.Cleanup(q.Close)
			g := New(Options{Queue: q, Audit: rec, Logger: quiet})
			pol, err := policy.New(policy.Config{Name: "Everything"})
			if err != nil {
				b.Fatal(err)
			}
			g.SetPolicies(map[string]*policy.Policy{"everything": pol})
			sub := q.Subscribe()
			b.Cleanup(sub.Close)
			go func() {
				for ev := range sub.Events() {
					if ev.Kind == gate.EventAdded {
						q.Decide(ev.Call.ID, gate.Decision{Approve: true})
					}
				}
			}()
			args := json.RawMessage(`{"message":"hello from the benchmark"}`)
			result := json.RawMessage(`{"content":[{"type":"text","text":"Echo: hello from the benchmark"}]}`)
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				v := g.Submit(context.Background(), gate.Call{Server: "everything", ServerName: "Everything", Tool: "echo", Client: "bench", Arguments: args})
				if !v.Approved() {
					b.Fatalf("verdict %+v", v)
				}
				g.Forwarded("everything", v.CallID)
				g.Result("everything", "tools/call", v.CallID, result, nil)
				g.Delivered("everything", v.CallID, true)
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
