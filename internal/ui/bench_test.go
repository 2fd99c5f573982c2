package ui

import (
	"context"
	"strconv"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/countersign/countersign/internal/gate"
)

// BenchmarkArrivalToRow measures how long after a call starts waiting its
// row is on screen in the review window: the queue's event, the hand-over
// to the UI goroutine, and the list update. (The notification takes the
// other path: notify.BenchmarkArrivalToNotification.)
func BenchmarkArrivalToRow(b *testing.B) {
	q := gate.New(gate.Options{Timeout: time.Hour})
	defer q.Close()
	ui := &uiQueue{wake: make(chan struct{}, 1)}
	d := New(test.NewTempApp(b), Options{Queue: q, Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true, Do: ui.do})
	d.start()
	defer d.stop()
	d.showReview()
	c := createIssue("", time.Time{})
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		go q.Submit(context.Background(), c)
		for {
			ui.drain()
			if rows := visibleRows(d.review); len(rows) == 1 && rows[0].summary.Text != "" {
				break
			}
			<-ui.wake
		}
		total += time.Since(t0)
		id := d.review.calls[0].ID
		q.Decide(id, gate.Decision{})
		d.review.remove(id)
		d.review.refresh()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/row")
}

// reviewWith shows the review window with n waiting calls; the clock
// moves on a second each time it is read.
func reviewWith(b *testing.B, n int) *Desktop {
	calls := make([]gate.Call, n)
	for i := range calls {
		calls[i] = createIssue(strconv.Itoa(i+1), T0.Add(time.Duration(i)*time.Second))
	}
	q := &fixedQueue{Queue: gate.New(gate.Options{}), calls: calls, decided: map[string]gate.Decision{}}
	b.Cleanup(q.Close)
	ui := &uiQueue{wake: make(chan struct{}, 1)}
	now := T0
	d := New(test.NewTempApp(b), Options{Queue: q, Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true,
		Do: ui.do, Now: func() time.Time { now = now.Add(time.Second); return now }})
	d.start()
	b.Cleanup(d.stop)
	d.showReview()
	return d
}

// BenchmarkTick1000 is the once-a-second refresh of ages and countdowns
// with 1,000 calls waiting: only the rows on screen are redrawn.
func BenchmarkTick1000(b *testing.B) {
	d := reviewWith(b, 1000)
	for b.Loop() {
		d.review.tick()
	}
}

// BenchmarkScroll1000 jumps the list to another place among 1,000 calls
// and lays out the rows that come into view.
func BenchmarkScroll1000(b *testing.B) {
	d := reviewWith(b, 1000)
	i := 0
	for b.Loop() {
		i = (i + 137) % 1000
		d.review.list.ScrollTo(i)
	}
}

// BenchmarkBurst1000 applies 1,000 calls arriving at once, as one batch
// from the queue, to an open review window.
func BenchmarkBurst1000(b *testing.B) {
	events := make([]gate.Event, 1000)
	for i := range events {
		events[i] = gate.Event{Kind: gate.EventAdded, Call: createIssue(strconv.Itoa(i+1), T0)}
	}
	d := reviewWith(b, 0)
	for b.Loop() {
		d.apply(events)
		b.StopTimer()
		d.review.calls = nil
		d.review.selected = ""
		d.review.refresh()
		b.StartTimer()
	}
}

// BenchmarkFirstCall measures what building the review window on the first
// call costs: from the call starting to wait in a tray app that has shown
// nothing yet (no window built, no font parsed) to its row on screen. Each
// round starts a fresh app, whose font cache is empty.
func BenchmarkFirstCall(b *testing.B) {
	c := createIssue("", time.Time{})
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		q := gate.New(gate.Options{Timeout: time.Hour})
		ui := &uiQueue{wake: make(chan struct{}, 1)}
		d := New(test.NewTempApp(b), Options{Queue: q, Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true, Do: ui.do})
		d.start()
		for ui.drain() {
		}
		b.StartTimer()
		t0 := time.Now()
		go q.Submit(context.Background(), c)
		for {
			ui.drain()
			if d.review.visible {
				if rows := visibleRows(d.review); len(rows) == 1 && rows[0].summary.Text != "" {
					break
				}
			}
			<-ui.wake
		}
		total += time.Since(t0)
		b.StopTimer()
		d.stop()
		q.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/first-call")
}
