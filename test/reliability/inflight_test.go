package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStopWithCallsInFlight: the app is stopped while approved calls run
// at a server that has not answered, and started again on the same data.
// Run returns, each AI app gets one answer, and every call in the audit
// ends (a result, or a record that Countersign stopped).
func TestStopWithCallsInFlight(t *testing.T) {
	enabled(t)
	up := startFaultyUpstream(t)
	s := newSetup(t, httpServer("faulty", up.url))
	in := startApp(t, s)
	ap := approveAll(in.core.Queue)
	hc := newClient()
	defer hc.CloseIdleConnections()
	h := &host{url: in.url("faulty"), token: in.token, hc: hc}
	if err := h.open(context.Background(), "reliability-host"); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var wg sync.WaitGroup
	answers := make([][]message, n)
	for i := range n {
		wg.Go(func() {
			answers[i], _ = h.call(context.Background(), i+1, "echo", map[string]string{"message": fmt.Sprintf("fault:hang:%d", i)})
		})
	}
	for range n {
		select {
		case <-up.hung:
		case <-time.After(60 * time.Second):
			t.Fatal("the approved calls never reached the server")
		}
	}
	ap.stop()
	stopped := make(chan error, 1)
	go func() { stopped <- in.stop(t) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Run did not return within 90 s of being stopped with calls in flight")
	}
	wg.Wait()
	for i, a := range answers {
		if len(a) != 1 {
			t.Errorf("in flight %d: %d answers, want 1", i, len(a))
		}
	}

	in2 := startApp(t, s)
	ap2 := approveAll(in2.core.Queue)
	h2 := &host{url: in2.url("faulty"), token: in2.token, hc: hc}
	if err := h2.open(context.Background(), "reliability-host"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		answerWithin(t, h2, i+1, "echo", map[string]string{"message": fmt.Sprintf("second run %d", i)})
	}
	h2.close()
	ap2.stop()
	if err := in2.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	byRun := runs(auditRecords(t, s.dataDir))
	if len(byRun) != 2 {
		t.Fatalf("the audit holds %d runs of the app, want 2", len(byRun))
	}
	sts := stories(byRun[0])
	for i := range n {
		msg := fmt.Sprintf("fault:hang:%d", i)
		st := storyOf(t, sts, msg)
		if len(st.forwarded) != 1 || len(st.results) != 1 {
			t.Errorf("%s: %d forwarded and %d closing records, want 1 and 1: the call was left half-done", msg, len(st.forwarded), len(st.results))
		}
	}
}
