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
	// Open runs, on another goroutine, when the person clicks a
	// notification (only with a [Poster]); nil for nothing.
	Open func()
}

// Watch shows a notification for the calls that events reports as added,
// until events is closed or ctx ends. One call gets its own notification
// ("GitHub wants to create issue in DEFRA/ffc-pay"); calls arriving
// together get one between them; the title counts every call still
// waiting, told before or not ("5 calls waiting"). A call that ends before
// its notification is due is not mentioned.
//
// When n is a [Poster], each notification replaces the last, a click on it
// runs o.Open, it is withdrawn once every call it named has ended, and
// while some of them still wait it is rewritten to name only those, with
// the true count ("GitHub wants to create issue…" once the other two are
// decided), so it never tells of a call that is no longer waiting.
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
	poster, _ := n.(Poster)

	var (
		pending  = map[string]bool{} // every call added and not ended
		fresh    []gate.Call         // added, not yet told, not ended; oldest first
		shown    uint32              // the Poster's notification on screen; 0 for none
		named    []gate.Call         // the calls it names that have not ended; oldest first
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
				pending[ev.Call.ID] = true
				fresh = append(fresh, ev.Call)
				if due == nil {
					wait := o.Gather
					if q := time.Until(lastSent.Add(o.Quiet)); q > wait {
						wait = q
					}
					timer = time.NewTimer(wait)
					due = timer.C
				}
			case gate.EventEnded:
				delete(pending, ev.Call.ID)
				if i := indexOf(fresh, ev.Call.ID); i >= 0 {
					fresh = append(fresh[:i], fresh[i+1:]...)
				}
				if i := indexOf(named, ev.Call.ID); i >= 0 {
					named = append(named[:i], named[i+1:]...)
					switch {
					case shown == 0:
					case len(named) == 0:
						if err := poster.Withdraw(shown); err != nil {
							log.Debug("could not withdraw a notification", "err", err)
						}
						shown = 0
					default:
						// Rewrite it in place, the same way it was first
						// written, for the calls it still names.
						title, message := SummaryText(named, len(pending))
						if id, err := poster.Post(shown, title, message, o.Open); err != nil {
							log.Debug("could not update a notification", "err", err)
						} else {
							shown = id
						}
					}
				}
			}
		case <-due:
			due, timer = nil, nil
			if len(fresh) == 0 {
				continue
			}
			title, message := SummaryText(fresh, len(pending))
			var err error
			if poster != nil {
				var id uint32
				id, err = poster.Post(shown, title, message, o.Open)
				if err == nil {
					shown = id
					named = append(named[:0], fresh...)
				}
			} else {
				err = n.Notify(title, message)
			}
			if err != nil {
				log.Warn("could not show a notification", "calls", len(fresh), "err", err)
			}
			fresh = nil
			lastSent = time.Now()
		}
	}
}

// indexOf is the position of the call numbered id in calls, or -1.
func indexOf(calls []gate.Call, id string) int {
	for i, c := range calls {
		if c.ID == id {
			return i
		}
	}
	return -1
}
