package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
)

// sessionLogSize is how many decided calls the session log keeps.
const sessionLogSize = 10000

// SessionLog is the audit viewer's source until the viewer reads the
// stored audit log: the calls decided since Countersign started, in
// memory, without arguments. Verify checks the stored log.
type SessionLog struct {
	size    int
	servers []string   // configured server ids, for the filter
	stored  *audit.Log // the tamper-evident log every event is written to; nil in tests

	mu     sync.Mutex
	events []AuditEvent // oldest first, at most size
}

func newSessionLog(size int, cfg *config.Config) *SessionLog {
	l := &SessionLog{size: size}
	for _, s := range cfg.Servers {
		l.servers = append(l.servers, s.ID)
	}
	sort.Strings(l.servers)
	return l
}

// record adds every call sub reports as ended, until the queue closes.
func (l *SessionLog) record(sub *gate.Subscription) {
	defer sub.Close()
	for ev := range sub.Events() {
		if ev.Kind == gate.EventEnded {
			l.add(ev.Call, ev.Verdict)
		}
	}
}

func (l *SessionLog) add(c gate.Call, v gate.Verdict) {
	e := AuditEvent{
		Time: v.Decided, CallID: c.ID, Server: c.Server, ServerName: c.ServerName, Tool: c.Tool,
		Client: c.Client, Targets: slices.Clone(c.Targets), Outcome: v.Outcome.String(), Reason: v.Reason,
		Edited: v.Arguments != nil, Waited: Duration(v.Decided.Sub(c.Received)),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) >= l.size {
		l.events = slices.Delete(l.events, 0, len(l.events)-l.size+1)
	}
	l.events = append(l.events, e)
}

// Info describes the session log.
func (l *SessionLog) Info(ctx context.Context) (AuditInfo, error) {
	info := AuditInfo{
		Store: fmt.Sprintf("This view lists up to %d calls decided since Countersign started, without their arguments. "+
			"Every event is also kept in the tamper-evident audit log, which Verify integrity checks.", l.size),
		Servers: slices.Clone(l.servers),
	}
	if l.stored == nil {
		info.VerifyUnavailable = "There is no stored log to verify."
	}
	return info, nil
}

func matches(e AuditEvent, f AuditFilter) bool {
	switch {
	case f.Server != "" && e.Server != f.Server,
		f.Tool != "" && !strings.Contains(strings.ToLower(e.Tool), strings.ToLower(f.Tool)),
		f.Outcome != "" && e.Outcome != f.Outcome,
		!f.From.IsZero() && e.Time.Before(f.From),
		!f.To.IsZero() && !e.Time.Before(f.To):
		return false
	}
	return true
}

// matching returns the events f selects, oldest first.
func (l *SessionLog) matching(f AuditFilter) []AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditEvent
	for _, e := range l.events {
		if matches(e, f) {
			out = append(out, e)
		}
	}
	return out
}

// Query returns a page of the events f selects, newest first.
func (l *SessionLog) Query(ctx context.Context, f AuditFilter, offset, limit int) (AuditPage, error) {
	all := l.matching(f)
	slices.Reverse(all)
	p := AuditPage{Total: len(all)}
	if offset < 0 || limit <= 0 {
		return p, fmt.Errorf("bad page: offset %d, limit %d", offset, limit)
	}
	if offset < len(all) {
		p.Events = all[offset:min(offset+limit, len(all))]
	}
	return p, nil
}

// Export writes the events f selects, oldest first, as CSV (with a header
// row) or JSON Lines.
func (l *SessionLog) Export(ctx context.Context, f AuditFilter, format ExportFormat, w io.Writer) error {
	events := l.matching(f)
	switch format {
	case ExportJSONL:
		enc := json.NewEncoder(w)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return fmt.Errorf("exporting the audit log: %w", err)
			}
		}
		return nil
	case ExportCSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"time", "call", "server", "server_name", "tool", "client", "targets", "outcome", "reason", "edited", "waited_ms"})
		for _, e := range events {
			cw.Write([]string{
				e.Time.UTC().Format(time.RFC3339Nano), e.CallID, cell(e.Server), cell(e.ServerName), cell(e.Tool),
				cell(e.Client), cell(strings.Join(e.Targets, " ")), e.Outcome, cell(e.Reason),
				strconv.FormatBool(e.Edited), strconv.FormatInt(time.Duration(e.Waited).Milliseconds(), 10),
			})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("exporting the audit log: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown export format %q", format)
}

// cell defuses text a spreadsheet would run as a formula: values from AI
// apps and servers are untrusted.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Verify walks the stored audit log's hash chain.
func (l *SessionLog) Verify(ctx context.Context) (Integrity, error) {
	if l.stored == nil {
		return Integrity{}, fmt.Errorf("%w: there is no stored log to verify", ErrNotAvailable)
	}
	rep, err := l.stored.Verify(ctx)
	if err != nil {
		return Integrity{}, err
	}
	in := Integrity{OK: rep.OK(), Checked: int(rep.Events)}
	if !in.OK {
		in.Problem = rep.String()
	}
	return in, nil
}
