package gate

import (
	"bytes"
	"encoding/json"
	"time"
)

// DefaultGrantWindow is how long an approval given after the AI app stopped
// waiting lets its identical call run.
const DefaultGrantWindow = 10 * time.Minute

// grant is a person's approval of a call the AI app had stopped waiting
// for: the AI app's next identical call runs under it, once.
type grant struct {
	callID  string          // the call the person approved
	args    json.RawMessage // the person's edited arguments, if any
	reason  string
	expires time.Time
}

// SetGrantWindow changes how long an approval given after the AI app
// stopped waiting lets its identical call run (zero: DefaultGrantWindow).
// Grants already given keep no more than the new window.
func (q *Queue) SetGrantWindow(d time.Duration) {
	if d <= 0 {
		d = DefaultGrantWindow
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, g := range q.grants {
		if limit := g.expires.Add(-q.window).Add(d); limit.Before(g.expires) {
			g.expires = limit
			q.grants[k] = g
		}
	}
	q.window = d
}

// callKey names a call for matching a retry with the call it repeats: same
// server, tool and AI app, and arguments (and 2026-07-28 input responses
// and request state) that are the same JSON once member order and
// whitespace are set aside. Anything else is a different call.
func callKey(c Call) string {
	var b bytes.Buffer
	for _, part := range []string{c.Server, c.Tool, c.Client} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	for _, raw := range []json.RawMessage{c.Arguments, c.InputResponses, c.RequestState} {
		b.Write(canonical(raw))
		b.WriteByte(0)
	}
	return b.String()
}

// canonical returns raw with object members sorted and whitespace removed;
// numbers and strings keep their text. JSON that does not parse is kept
// as it is, so it only ever matches itself.
func canonical(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// takeGrantLocked uses up the grant for key, if there is one still valid:
// the call id runs under it.
func (q *Queue) takeGrantLocked(key, id string, now time.Time) (Verdict, bool) {
	for k, g := range q.grants {
		if !now.Before(g.expires) {
			delete(q.grants, k)
		}
	}
	g, ok := q.grants[key]
	if !ok {
		return Verdict{}, false
	}
	delete(q.grants, key)
	return Verdict{CallID: id, Outcome: OutcomeApproved, Reason: g.reason, Arguments: g.args, Decided: now, Earlier: g.callID}, true
}

// rejoinLocked finds the oldest waiting call identical to c that the AI
// app stopped waiting for, and makes c's Submit wait for its decision.
func (q *Queue) rejoinLocked(key string, c Call, now time.Time) *entry {
	var found *entry
	for _, e := range q.pending {
		if e.key == key && !e.waited && (found == nil || olderID(e.call.ID, found.call.ID)) {
			found = e
		}
	}
	if found == nil {
		return nil
	}
	found.waited = true
	found.call.HostGone = false
	found.call.HostBudget = c.HostBudget
	found.call.HostDeadline = time.Time{}
	if d := now.Add(c.HostBudget); c.HostBudget > 0 && d.Before(found.call.Deadline) {
		found.call.HostDeadline = d
	}
	q.publishLocked(Event{Kind: EventHostBack, Call: found.call})
	return found
}

// leave is called when the AI app's time limit for e passed: unless the
// call ended meanwhile, it keeps waiting for the person, marked HostGone,
// and the AI app is told to ask again.
func (q *Queue) leave(e *entry, now time.Time) (Verdict, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending[e.call.ID] != e {
		return Verdict{}, false
	}
	e.waited = false
	e.call.HostGone = true
	q.publishLocked(Event{Kind: EventHostGone, Call: e.call})
	return Verdict{CallID: e.call.ID, Outcome: OutcomeAskAgain, Reason: "the AI app stops waiting after " + e.call.HostBudget.String(), Decided: now}, true
}

// forRetry is v as the Submit of c gets it: when c rejoined an earlier
// call, under c's own id, naming the earlier one.
func (q *Queue) forRetry(v Verdict, c Call, e *entry) Verdict {
	if c.ID != e.call.ID {
		v.CallID, v.Earlier = c.ID, e.call.ID
	}
	return v
}

// afterHostGoneLocked is called when a call ends that no AI app waits for
// any more: it tells AfterHostGone, then, if the person approved it, keeps
// the approval for the AI app's identical call. Off the lock, so that
// AfterHostGone may take its time (writing the audit log); until it is
// done the identical call is reviewed again, which is safe.
func (q *Queue) afterHostGoneLocked(e *entry, v Verdict) {
	go func() {
		if e.call.AfterHostGone != nil {
			e.call.AfterHostGone(v)
		}
		if v.Outcome != OutcomeApproved {
			return
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed || q.paused {
			return
		}
		q.grants[e.key] = grant{callID: e.call.ID, args: v.Arguments, reason: v.Reason, expires: v.Decided.Add(q.window)}
	}()
}

// olderID reports whether call id a was given before b.
func olderID(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
