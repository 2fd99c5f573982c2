package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/countersign/countersign/internal/gate"
)

// Defaults for Options.
const (
	// DefaultGather is how long Watch waits after a call arrives for others
	// arriving with it, so a burst becomes one notification.
	DefaultGather = 20 * time.Millisecond
	// DefaultQuiet is the least time between two notifications; calls
	// arriving sooner are told together when it has passed.
	DefaultQuiet = 3 * time.Second
)

// Options configure Watch.
type Options struct {
	Gather time.Duration // zero means DefaultGather
	Quiet  time.Duration // zero means DefaultQuiet
	Logger *slog.Logger  // nil means slog.Default()
}

// Watch shows a notification for the calls that events reports as added,
// until events is closed or ctx ends. One call gets its own notification
// ("GitHub wants to run create_issue on DEFRA/ffc-pay"); calls arriving
// together get one between them ("3 calls waiting"); a call that ends
// before its notification is due is not mentioned.
func Watch(ctx context.Context, events <-chan gate.Event, n Notifier, o Options) {
	if o.Gather <= 0 {
		o.Gather = DefaultGather
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}

	var (
		waiting  []gate.Call // added, not yet told, not ended; oldest first
		lastSent time.Time
		timer    *time.Timer
		due      <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Kind {
			case gate.EventAdded:
				waiting = append(waiting, ev.Call)
				if due == nil {
					wait := o.Gather
					if q := time.Until(lastSent.Add(o.Quiet)); q > wait {
						wait = q
					}
					timer = time.NewTimer(wait)
					due = timer.C
				}
			case gate.EventEnded:
				for i, c := range waiting {
					if c.ID == ev.Call.ID {
						waiting = append(waiting[:i], waiting[i+1:]...)
						break
					}
				}
			}
		case <-due:
			due, timer = nil, nil
			if len(waiting) == 0 {
				continue
			}
			title, message := SummaryText(waiting)
			if err := n.Notify(title, message); err != nil {
				log.Warn("could not show a notification", "calls", len(waiting), "err", err)
			}
			waiting = nil
			lastSent = time.Now()
		}
	}
}
