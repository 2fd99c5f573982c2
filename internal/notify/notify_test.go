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
			"GitHub wants to create issue in DEFRA/ffc-pay"},
		{"uses the server's title for the tool",
			gate.Call{ServerName: "GitHub", Tool: "create_issue", Info: &gate.ToolInfo{Title: "Open a pull request"}, Targets: []string{"DEFRA/ffc-pay"}},
			"GitHub wants to open a pull request in DEFRA/ffc-pay"},
		{"drops a title's trailing \"tool\"",
			gate.Call{ServerName: "Everything", Tool: "echo", Info: &gate.ToolInfo{Title: "Echo Tool"}},
			"Everything wants to echo"},
		{"makes a camel-case name readable",
			gate.Call{ServerName: "Jira", Tool: "getJiraIssue"},
			"Jira wants to get jira issue"},
		{"falls back to the server id",
			gate.Call{Server: "github", Tool: "create_issue", Targets: []string{"DEFRA/ffc-pay"}},
			"github wants to create issue in DEFRA/ffc-pay"},
		{"leaves out an unknown target",
			gate.Call{Server: "jira", ServerName: "Jira", Tool: "search"},
			"Jira wants to search"},
		{"counts further targets",
			gate.Call{ServerName: "GitHub", Tool: "fork", Targets: []string{"a/b", "c/d", "e/f"}},
			"GitHub wants to fork in a/b and 2 more"},
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
		waiting      int
		title, wantM string
	}{
		{"one call reads like Text", []gate.Call{c("GitHub")}, 1,
			"Review a tool call", "GitHub wants to t"},
		{"one new call among others counts them all", []gate.Call{c("GitHub")}, 4,
			"4 calls waiting", "GitHub wants to t. Review it in Countersign."},
		{"one server", []gate.Call{c("GitHub"), c("GitHub")}, 2,
			"2 calls waiting", "GitHub wants to run tools. Review them in Countersign."},
		{"two servers", []gate.Call{c("GitHub"), c("Jira"), c("GitHub")}, 3,
			"3 calls waiting", "GitHub and Jira want to run tools. Review them in Countersign."},
		{"three servers", []gate.Call{c("A"), c("B"), c("C")}, 5,
			"5 calls waiting", "A, B and C want to run tools. Review them in Countersign."},
		{"many servers", []gate.Call{c("A"), c("B"), c("C"), c("D"), c("E")}, 5,
			"5 calls waiting", "A, B and 3 other servers want to run tools. Review them in Countersign."},
		{"a count below the new calls is raised to them", []gate.Call{c("A"), c("B")}, 0,
			"2 calls waiting", "A and B want to run tools. Review them in Countersign."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, msg := SummaryText(tt.calls, tt.waiting)
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
			want := []shown{{At: DefaultGather, Title: "Review a tool call", Message: "GitHub wants to create issue"}}
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
				{At: DefaultGather, Title: "Review a tool call", Message: "GitHub wants to a"},
				// The first call still waits: three in all.
				{At: DefaultGather + DefaultQuiet, Title: "3 calls waiting", Message: "GitHub and Jira want to run tools. Review them in Countersign."},
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

// poster is a Poster that remembers what it was asked to do.
type poster struct {
	recorder
	next      uint32
	posts     []post
	withdrawn []uint32
}

type post struct {
	Replaces, ID   uint32
	Title, Message string
	Opens          bool
}

func (p *poster) Post(replaces uint32, title, message string, open func()) (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.posts = append(p.posts, post{replaces, p.next, title, message, open != nil})
	return p.next, nil
}

func (p *poster) Withdraw(id uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.withdrawn = append(p.withdrawn, id)
	return nil
}

func (p *poster) state() ([]post, []uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]post(nil), p.posts...), append([]uint32(nil), p.withdrawn...)
}

func TestWatchCountsEveryWaitingCall(t *testing.T) {
	// Five calls, two at once and three a moment later, once gave "2
	// waiting" and then "3 waiting": each notification counted only the
	// calls it was the first to tell.
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.submit("GitHub", "a")
		h.submit("GitHub", "b")
		time.Sleep(time.Second)
		h.submit("GitHub", "c")
		h.submit("Jira", "d")
		h.submit("GitHub", "e")
		time.Sleep(10 * time.Second)
		var titles []string
		for _, s := range h.rec.shown() {
			titles = append(titles, s.Title)
		}
		if diff := cmp.Diff([]string{"2 calls waiting", "5 calls waiting"}, titles); diff != "" {
			t.Errorf("titles (-want +got)\n%s", diff)
		}
	})
}

func TestWatchWithAPoster(t *testing.T) {
	run := func(t *testing.T, p *poster, open func()) *gate.Queue {
		q := gate.New(gate.Options{Timeout: time.Hour})
		sub := q.Subscribe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Watch(ctx, sub.Events(), p, Options{Open: open, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		}()
		t.Cleanup(func() { q.Close(); cancel(); <-done; sub.Close() })
		return q
	}
	submit := func(q *gate.Queue, tool string) {
		go q.Submit(context.Background(), gate.Call{ServerName: "GitHub", Tool: tool})
		synctest.Wait()
	}
	decide := func(q *gate.Queue, tool string) {
		for _, c := range q.Pending() {
			if c.Tool == tool {
				q.Decide(c.ID, gate.Decision{})
			}
		}
		synctest.Wait()
	}
	t.Run("a later notification replaces the earlier one and opens the review", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &poster{}
			q := run(t, p, func() {})
			submit(q, "a")
			time.Sleep(time.Second)
			submit(q, "b")
			time.Sleep(10 * time.Second)
			posts, withdrawn := p.state()
			want := []post{
				{0, 1, "Review a tool call", "GitHub wants to a", true},
				{1, 2, "2 calls waiting", "GitHub wants to b. Review it in Countersign.", true},
			}
			if diff := cmp.Diff(want, posts); diff != "" {
				t.Errorf("posts (-want +got)\n%s", diff)
			}
			if len(withdrawn) != 0 {
				t.Errorf("withdrawn %v with calls still waiting", withdrawn)
			}
		})
	})
	t.Run("a notification is withdrawn once every call it names is decided", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &poster{}
			q := run(t, p, nil)
			submit(q, "a")
			submit(q, "b")
			time.Sleep(time.Second)
			decide(q, "a")
			posts, w := p.state()
			if len(w) != 0 {
				t.Fatalf("withdrawn %v while b still waits", w)
			}
			// It no longer tells of a, nor counts it.
			want := []post{
				{0, 1, "2 calls waiting", "GitHub wants to run tools. Review them in Countersign.", false},
				{1, 2, "Review a tool call", "GitHub wants to b", false},
			}
			if diff := cmp.Diff(want, posts); diff != "" {
				t.Errorf("posts (-want +got)\n%s", diff)
			}
			decide(q, "b")
			if _, w := p.state(); !cmp.Equal(w, []uint32{2}) {
				t.Fatalf("withdrawn %v, want [2]", w)
			}
			// The next call gets a new notification, not a replacement of
			// the withdrawn one.
			submit(q, "c")
			time.Sleep(10 * time.Second)
			posts, _ = p.state()
			if last := posts[len(posts)-1]; last.Replaces != 0 || last.Message != "GitHub wants to c" {
				t.Errorf("last post %+v, want a new one for c", last)
			}
		})
	})
}
