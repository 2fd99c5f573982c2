package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/google/go-cmp/cmp"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		call gate.Call
		want string
	}{
		{"names the server, tool and target",
			gate.Call{Server: "github", ServerName: "GitHub", Tool: "create_issue", Targets: []string{"DEFRA/ffc-pay"}},
			"GitHub wants to run create_issue on DEFRA/ffc-pay"},
		{"falls back to the server id",
			gate.Call{Server: "github", Tool: "create_issue", Targets: []string{"DEFRA/ffc-pay"}},
			"github wants to run create_issue on DEFRA/ffc-pay"},
		{"leaves out an unknown target",
			gate.Call{Server: "jira", ServerName: "Jira", Tool: "search"},
			"Jira wants to run search"},
		{"counts further targets",
			gate.Call{ServerName: "GitHub", Tool: "fork", Targets: []string{"a/b", "c/d", "e/f"}},
			"GitHub wants to run fork on a/b and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, msg := Text(tt.call)
			if title != "Review a tool call" {
				t.Errorf("title = %q", title)
			}
			if msg != tt.want {
				t.Errorf("message = %q, want %q", msg, tt.want)
			}
		})
	}
}

func TestSummaryText(t *testing.T) {
	c := func(name string) gate.Call { return gate.Call{ServerName: name, Tool: "t"} }
	tests := []struct {
		name         string
		calls        []gate.Call
		title, wantM string
	}{
		{"one call reads like Text", []gate.Call{c("GitHub")},
			"Review a tool call", "GitHub wants to run t"},
		{"one server", []gate.Call{c("GitHub"), c("GitHub")},
			"2 calls waiting", "GitHub wants to run tools. Review them in Countersign."},
		{"two servers", []gate.Call{c("GitHub"), c("Jira"), c("GitHub")},
			"3 calls waiting", "GitHub and Jira want to run tools. Review them in Countersign."},
		{"three servers", []gate.Call{c("A"), c("B"), c("C")},
			"3 calls waiting", "A, B and C want to run tools. Review them in Countersign."},
		{"many servers", []gate.Call{c("A"), c("B"), c("C"), c("D"), c("E")},
			"5 calls waiting", "A, B and 3 other servers want to run tools. Review them in Countersign."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, msg := SummaryText(tt.calls)
			if diff := cmp.Diff([]string{tt.title, tt.wantM}, []string{title, msg}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// recorder is a Notifier that remembers what it was asked to show and when.
type recorder struct {
	mu   sync.Mutex
	got  []shown
	fail error
}

type shown struct {
	At             time.Duration // since the test started
	Title, Message string
}

func (r *recorder) Notify(title, message string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, shown{At: time.Since(start), Title: title, Message: message})
	return r.fail
}

func (r *recorder) shown() []shown {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]shown(nil), r.got...)
}

var start time.Time

// harness runs Watch on a real queue inside a synctest bubble.
type harness struct {
	q      *gate.Queue
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	start = time.Now()
	h := &harness{q: gate.New(gate.Options{Timeout: time.Hour}), rec: &recorder{}, done: make(chan struct{})}
	sub := h.q.Subscribe()
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		Watch(ctx, sub.Events(), h.rec, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	t.Cleanup(func() {
		h.q.Close()
		h.cancel()
		<-h.done
		sub.Close()
	})
	return h
}

// submit starts a call that waits for a decision, and lets it arrive.
func (h *harness) submit(server, tool string) {
	go h.q.Submit(context.Background(), gate.Call{Server: server, ServerName: server, Tool: tool})
	synctest.Wait()
}

func TestWatch(t *testing.T) {
	t.Run("a lone call is told after the gather time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.submit("GitHub", "create_issue")
			time.Sleep(time.Second)
			want := []shown{{At: DefaultGather, Title: "Review a tool call", Message: "GitHub wants to run create_issue"}}
			if diff := cmp.Diff(want, h.rec.shown()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("calls arriving together are told once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.submit("GitHub", "a")
			h.submit("Jira", "b")
			time.Sleep(5 * time.Millisecond)
			h.submit("GitHub", "c")
			time.Sleep(time.Second)
			want := []shown{{At: DefaultGather, Title: "3 calls waiting", Message: "GitHub and Jira want to run tools. Review them in Countersign."}}
			if diff := cmp.Diff(want, h.rec.shown()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("calls arriving soon after a notification wait for the quiet time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.submit("GitHub", "a")
			time.Sleep(time.Second)
			h.submit("GitHub", "b")
			time.Sleep(500 * time.Millisecond)
			h.submit("Jira", "c")
			time.Sleep(10 * time.Second)
			want := []shown{
				{At: DefaultGather, Title: "Review a tool call", Message: "GitHub wants to run a"},
				{At: DefaultGather + DefaultQuiet, Title: "2 calls waiting", Message: "GitHub and Jira want to run tools. Review them in Countersign."},
			}
			if diff := cmp.Diff(want, h.rec.shown()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("a call that ends before it is told is not mentioned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.submit("GitHub", "a")
			time.Sleep(time.Second) // told
			h.submit("GitHub", "b")
			synctest.Wait()
			for _, c := range h.q.Pending() {
				if c.Tool == "b" {
					h.q.Decide(c.ID, gate.Decision{})
				}
			}
			time.Sleep(10 * time.Second)
			if got := h.rec.shown(); len(got) != 1 {
				t.Errorf("shown %+v, want only the first call", got)
			}
		})
	})
	t.Run("a failing notifier does not stop later notifications", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.rec.fail = errors.New("no notification daemon")
			h.submit("GitHub", "a")
			time.Sleep(5 * time.Second)
			h.submit("GitHub", "b")
			time.Sleep(5 * time.Second)
			if got := h.rec.shown(); len(got) != 2 {
				t.Errorf("shown %+v, want two attempts", got)
			}
		})
	})
	t.Run("it ends when the queue closes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.q.Close()
			<-h.done
		})
	})
	t.Run("it ends when its context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t)
			h.submit("GitHub", "a") // armed timer must not outlive Watch
			synctest.Wait()
			h.cancel()
			<-h.done
		})
	})
}

// BenchmarkArrivalToNotification measures how long after a call starts
// waiting its notification is handed to the notifier (real clock, default
// gather time, no quiet time between iterations).
func BenchmarkArrivalToNotification(b *testing.B) {
	q := gate.New(gate.Options{Timeout: time.Hour})
	defer q.Close()
	sub := q.Subscribe()
	told := make(chan struct{}, 1)
	n := notifierFunc(func(string, string) error { told <- struct{}{}; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, sub.Events(), n, Options{Quiet: time.Nanosecond})
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		go q.Submit(context.Background(), gate.Call{Server: "s", Tool: "t"})
		<-told
		total += time.Since(t0)
		for _, c := range q.Pending() {
			q.Decide(c.ID, gate.Decision{})
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/notification")
}

type notifierFunc func(title, message string) error

func (f notifierFunc) Notify(title, message string) error { return f(title, message) }
