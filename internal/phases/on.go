//go:build phases

package phases

import (
	"sync"
	"time"
)

var (
	mu    sync.Mutex
	at    [points]time.Time
	steps [points - 1][]time.Duration
)

// Mark notes that the current gated call reached p. Held starts a call;
// Checked ends it and keeps its steps.
func Mark(p Point) {
	now := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if p == Held {
		at = [points]time.Time{}
	}
	at[p] = now
	if p != Checked || at[Held].IsZero() {
		return
	}
	for i := range steps {
		if !at[i].IsZero() && !at[i+1].IsZero() {
			steps[i] = append(steps[i], at[i+1].Sub(at[i]))
		}
	}
	at = [points]time.Time{}
}

// Steps returns, for each step in Names, the durations of the calls seen
// so far.
func Steps() [][]time.Duration {
	mu.Lock()
	defer mu.Unlock()
	out := make([][]time.Duration, len(steps))
	for i, s := range steps {
		out[i] = append([]time.Duration(nil), s...)
	}
	return out
}
