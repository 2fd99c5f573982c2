package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/countersign/countersign/internal/audit"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func logWith(size int) *SessionLog {
	l := newSessionLog(size, &config.Config{Servers: []config.Server{{ID: "jira"}, {ID: "github"}}})
	add := func(id, server, tool string, o gate.Outcome, at time.Duration, args string) {
		c := gate.Call{ID: id, Server: server, ServerName: strings.ToUpper(server), Tool: tool, Client: "Claude",
			Targets: []string{"DEFRA/ffc-pay"}, Received: t0.Add(at - time.Second)}
		v := gate.Verdict{CallID: id, Outcome: o, Decided: t0.Add(at)}
		if args != "" {
			v.Arguments = []byte(args)
		}
		if o == gate.OutcomeDenied {
			v.Reason = "=HYPERLINK(\"http://evil\")"
		}
		l.add(c, v)
	}
	add("1", "github", "create_issue", gate.OutcomeApproved, 0, "")
	add("2", "github", "delete_repo", gate.OutcomeDenied, time.Hour, "")
	add("3", "jira", "create_issue", gate.OutcomeTimedOut, 2*time.Hour, "")
	add("4", "github", "Create_Issue", gate.OutcomeApproved, 25*time.Hour, `{"title":"x"}`)
	return l
}

func ids(p AuditPage) []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.CallID)
	}
	return out
}

func TestSessionLogQuery(t *testing.T) {
	l := logWith(100)
	tests := []struct {
		name          string
		f             AuditFilter
		offset, limit int
		want          []string
		total         int
	}{
		{"everything, newest first", AuditFilter{}, 0, 10, []string{"4", "3", "2", "1"}, 4},
		{"a page", AuditFilter{}, 1, 2, []string{"3", "2"}, 4},
		{"past the end", AuditFilter{}, 10, 2, nil, 4},
		{"by server", AuditFilter{Server: "jira"}, 0, 10, []string{"3"}, 1},
		{"by part of the tool name, any case", AuditFilter{Tool: "create_ISSUE"}, 0, 10, []string{"4", "3", "1"}, 3},
		{"by outcome", AuditFilter{Outcome: "approved"}, 0, 10, []string{"4", "1"}, 2},
		{"from a time", AuditFilter{From: t0.Add(time.Hour)}, 0, 10, []string{"4", "3", "2"}, 3},
		{"before a time", AuditFilter{To: t0.Add(time.Hour)}, 0, 10, []string{"1"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := l.Query(context.Background(), tt.f, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(p)); diff != "" || p.Total != tt.total {
				t.Errorf("total %d (want %d), ids (-want +got)\n%s", p.Total, tt.total, diff)
			}
		})
	}
	if _, err := l.Query(context.Background(), AuditFilter{}, 0, 0); err == nil {
		t.Error("a zero limit was accepted")
	}
}

func TestSessionLogKeepsTheNewest(t *testing.T) {
	l := logWith(3)
	p, _ := l.Query(context.Background(), AuditFilter{}, 0, 10)
	if diff := cmp.Diff([]string{"4", "3", "2"}, ids(p)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestSessionLogRecordsEndedCalls(t *testing.T) {
	q := gate.New(gate.Options{Timeout: time.Hour})
	l := newSessionLog(10, &config.Config{})
	done := make(chan struct{})
	sub := q.Subscribe()
	go func() { l.record(sub); close(done) }()
	verdict := make(chan gate.Verdict, 1)
	go func() {
		verdict <- q.Submit(context.Background(), gate.Call{Server: "s", Tool: "t", Arguments: []byte(`{"a":1}`)})
	}()
	for len(q.Pending()) == 0 {
		time.Sleep(time.Millisecond)
	}
	q.Decide(q.Pending()[0].ID, gate.Decision{Approve: true, Arguments: []byte(`{"a":2}`)})
	<-verdict
	q.Close()
	<-done
	p, _ := l.Query(context.Background(), AuditFilter{}, 0, 10)
	if len(p.Events) != 1 || p.Events[0].Outcome != "approved" || !p.Events[0].Edited || p.Events[0].Tool != "t" {
		t.Fatalf("recorded %+v", p.Events)
	}
}

func TestSessionLogExport(t *testing.T) {
	l := logWith(100)
	t.Run("csv, oldest first, formulas defused", func(t *testing.T) {
		var b bytes.Buffer
		if err := l.Export(context.Background(), AuditFilter{Server: "github"}, ExportCSV, &b); err != nil {
			t.Fatal(err)
		}
		want := `time,call,server,server_name,tool,client,targets,outcome,reason,edited,waited_ms
2026-11-21T10:00:00Z,1,github,GITHUB,create_issue,Claude,DEFRA/ffc-pay,approved,,false,1000
2026-11-21T11:00:00Z,2,github,GITHUB,delete_repo,Claude,DEFRA/ffc-pay,denied,"'=HYPERLINK(""http://evil"")",false,1000
2026-11-22T11:00:00Z,4,github,GITHUB,Create_Issue,Claude,DEFRA/ffc-pay,approved,,true,1000
`
		if diff := cmp.Diff(want, b.String()); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("json lines", func(t *testing.T) {
		var b bytes.Buffer
		if err := l.Export(context.Background(), AuditFilter{Outcome: "timed out"}, ExportJSONL, &b); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, b.String())
		}
		want := map[string]any{"time": "2026-11-21T12:00:00Z", "callId": "3", "server": "jira", "serverName": "JIRA",
			"tool": "create_issue", "client": "Claude", "targets": []any{"DEFRA/ffc-pay"}, "outcome": "timed out", "waitedMs": 1000.0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if err := l.Export(context.Background(), AuditFilter{}, "xml", &bytes.Buffer{}); err == nil {
			t.Error("no error")
		}
	})
}

func TestSessionLogInfo(t *testing.T) {
	info, _ := logWith(10).Info(context.Background())
	if diff := cmp.Diff([]string{"github", "jira"}, info.Servers); diff != "" {
		t.Errorf("servers (-want +got)\n%s", diff)
	}
	if info.Store == "" || info.VerifyUnavailable == "" {
		t.Errorf("info %+v does not say where events are kept and why they cannot be verified", info)
	}
}

func TestSessionLogVerifiesTheStoredLog(t *testing.T) {
	l := logWith(10)
	if _, err := l.Verify(context.Background()); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("Verify without a stored log: %v", err)
	}
	stored, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	for range 3 {
		if _, err := stored.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
			t.Fatal(err)
		}
	}
	l.stored = stored
	info, _ := l.Info(context.Background())
	if info.VerifyUnavailable != "" {
		t.Errorf("verify still unavailable: %q", info.VerifyUnavailable)
	}
	got, err := l.Verify(context.Background())
	if err != nil || !got.OK || got.Checked != 3 {
		t.Errorf("Verify = %+v, %v; want OK with 3 events", got, err)
	}
}
