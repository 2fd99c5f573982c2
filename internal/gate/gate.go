// Package gate holds every tool call until a person decides it.
//
// A relay calls [Queue.Submit] and blocks until the call is approved or
// denied. Decisions come only from [Queue.Decide], an in-process method that
// the app's own interface calls when a person acts; there is no network, CLI
// or environment path to it. Everything else that ends a call — the timeout,
// the host cancelling or going away, the upstream being lost, shutdown — ends
// it as denied, and each call gets exactly one verdict.
package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/phases"
)

// DefaultTimeout is how long a call waits for a person before it is denied.
const DefaultTimeout = 5 * time.Minute

// Causes a relay gives when it cancels the context of a waiting call, so the
// verdict can say why the call ended (see context.WithCancelCause).
var (
	ErrHostCancelled    = errors.New("the AI app cancelled the request")
	ErrHostDisconnected = errors.New("the AI app disconnected")
	ErrUpstreamLost     = errors.New("the connection to the server was lost")
)

// ErrNotPending is returned by Decide for a call that is not waiting, for
// instance one that already timed out.
var ErrNotPending = errors.New("gate: call is not pending")

// ErrEditRefused is wrapped by the error Decide returns when the rules
// refuse arguments the person edited; the call keeps waiting.
var ErrEditRefused = errors.New("gate: the edited arguments were refused")

// EditRefusedError says why Decide refused edited arguments. Reason is one
// plain sentence for the person.
type EditRefusedError struct{ Reason string }

func (e *EditRefusedError) Error() string {
	return "gate: the edited arguments were refused: " + e.Reason
}

// Unwrap makes errors.Is(err, ErrEditRefused) hold.
func (e *EditRefusedError) Unwrap() error { return ErrEditRefused }

// Outcome says how a call ended.
type Outcome int

// The ways a call can end. Only OutcomeApproved lets it run.
const (
	OutcomeApproved Outcome = iota + 1
	OutcomeDenied
	OutcomeTimedOut
	OutcomeCancelled
	OutcomeDisconnected
	OutcomeUpstreamLost
	OutcomeShutdown
	OutcomePaused
	OutcomeBlocked // refused by policy before anyone was asked
	// OutcomeAskAgain: the AI app's own time limit came before the
	// person's decision. The call still waits in the review window; the
	// AI app is told to ask again, and an approval lets the same call run
	// once when it does (see Call.HostBudget).
	OutcomeAskAgain
)

var outcomeNames = map[Outcome]string{
	OutcomeApproved:     "approved",
	OutcomeDenied:       "denied",
	OutcomeTimedOut:     "timed out",
	OutcomeCancelled:    "cancelled",
	OutcomeDisconnected: "disconnected",
	OutcomeUpstreamLost: "upstream lost",
	OutcomeShutdown:     "shut down",
	OutcomePaused:       "paused",
	OutcomeBlocked:      "blocked by policy",
	OutcomeAskAgain:     "asked to call again",
}

func (o Outcome) String() string {
	if s, ok := outcomeNames[o]; ok {
		return s
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Call is a tool call waiting for a decision.
type Call struct {
	ID        string          // assigned by Submit
	Server    string          // configured server id
	Tool      string          // tool name
	Arguments json.RawMessage // arguments as the AI app sent them
	Client    string          // the AI app's name, from its clientInfo
	Received  time.Time       // set by Submit
	Deadline  time.Time       // set by Submit: when the call is denied unless decided

	// HostBudget is how long the AI app waits for an answer before it
	// gives up on its own; zero means at least as long as Countersign
	// waits. When it passes first, Submit returns OutcomeAskAgain and the
	// call keeps waiting for the person; see Queue.Submit.
	HostBudget time.Duration
	// HostDeadline is set by Submit to when the AI app stops waiting, when
	// that comes before Deadline; zero otherwise.
	HostDeadline time.Time
	// HostGone is set once the AI app has stopped waiting for the call:
	// approving it lets the AI app's next identical call run, once, within
	// RetryWindow of the approval.
	HostGone    bool
	RetryWindow time.Duration
	// AfterHostGone, when set, hears the verdict of a call that ends after
	// the AI app stopped waiting for it, with no AI app waiting again: the
	// person's decision, the timeout or a shutdown. Called without the
	// queue's lock held.
	AfterHostGone func(Verdict)

	// What the person needs to judge the call, filled in before Submit.
	ServerName string    // the server's display name
	Info       *ToolInfo // the tool as the server listed it; nil if never listed
	Targets    []string  // repositories/projects the call touches, as "DEFRA/ffc-pay"
	Warnings   []Warning // things to weigh before deciding, most serious first

	// A 2026-07-28 retry: the server answered an earlier call with an
	// input_required result, and the AI app calls again with its answers.
	InputResponses json.RawMessage // params.inputResponses exactly as sent; nil when absent
	RequestState   json.RawMessage // params.requestState exactly as sent; nil when absent
	// Exchanges pair each answer in InputResponses with the server's
	// question it answers, secrets removed, for the person to read; filled
	// in before Submit.
	Exchanges []Exchange

	// Check, set before Submit, runs the rules again on arguments the
	// person edited: Decide refuses an edit it returns an error for (one
	// plain sentence), and the call keeps waiting. A call without Check
	// cannot be approved with edited arguments.
	Check func(args json.RawMessage) error
	// Preview, when set, judges edited arguments as the person types,
	// without recording anything: why the rules would refuse them (""
	// if they would not), and what to weigh about them, such as a secret.
	// It decides nothing; only Decide, through Check, does.
	Preview func(args json.RawMessage) (refused string, warnings []Warning)
}

// Exchange is one question the server asked during a 2026-07-28 multi
// round-trip request, and the AI app's answer to it.
type Exchange struct {
	Key string // the server's name for the question
	// Request is the server's input request ({"method":…,"params":…}) as
	// Countersign saw it in the earlier input_required result, secrets
	// removed; nil when Countersign did not see it.
	Request json.RawMessage
	// Response is the AI app's answer (an elicitation, sampling or roots
	// result), secrets removed.
	Response json.RawMessage
}

// ToolInfo describes a tool as the server listed it in tools/list.
type ToolInfo struct {
	Title       string
	Description string
	InputSchema json.RawMessage
	// Annotation hints as the server stated them; nil when not stated.
	ReadOnlyHint, DestructiveHint, IdempotentHint, OpenWorldHint *bool
}

// ReadOnly reports whether the server says the tool changes nothing.
func (t *ToolInfo) ReadOnly() bool {
	return t != nil && t.ReadOnlyHint != nil && *t.ReadOnlyHint
}

// Destructive reports whether the tool may destroy or overwrite data. As in
// MCP, a tool that is not read-only is assumed destructive unless the server
// says otherwise.
func (t *ToolInfo) Destructive() bool {
	if t.ReadOnly() {
		return false
	}
	return t == nil || t.DestructiveHint == nil || *t.DestructiveHint
}

// WarningKind names a kind of warning.
type WarningKind string

// Warning kinds, as the review window shows them.
const (
	WarnSecret        WarningKind = "secret"         // a secret was found in the arguments
	WarnTargetUnknown WarningKind = "target-unknown" // which repository/project it touches is unknown
	WarnToolChanged   WarningKind = "tool-changed"   // the tool's definition changed since first seen
	WarnToolNew       WarningKind = "tool-new"       // the tool appeared after the server was first seen
	WarnDestructive   WarningKind = "destructive"    // the tool may destroy or overwrite data
	WarnInputUnseen   WarningKind = "input-unseen"   // answers to questions Countersign did not see the server ask
)

// Warning is something the person should weigh before deciding.
type Warning struct {
	Kind   WarningKind
	Text   string // one plain sentence
	Detail string // optional longer text, such as a diff of the tool's definition
	// Definition identifies the tool definition a tool-changed or tool-new
	// warning is about (pins.Status.CurrentHash), so the person can trust
	// exactly what they were shown; empty otherwise.
	Definition string
}

// Decision is what a person decided about a call.
type Decision struct {
	Approve bool
	Reason  string
	// Arguments, when set on an approval, replaces the call's arguments:
	// the person edited them before approving.
	Arguments json.RawMessage
}

// Verdict is how a call ended.
type Verdict struct {
	CallID    string
	Outcome   Outcome
	Reason    string
	Arguments json.RawMessage // edited arguments, or nil to run the call as sent
	Decided   time.Time
	// Earlier is the id of the earlier, identical call whose review this
	// verdict comes from: the AI app stopped waiting for that one and
	// called again. Empty otherwise.
	Earlier string
}

// Approved reports whether the call may run.
func (v Verdict) Approved() bool { return v.Outcome == OutcomeApproved }

// Message is the plain sentence the AI app receives for a call that did not
// run, written so a model can relay it to the person.
func (v Verdict) Message() string {
	switch v.Outcome {
	case OutcomeApproved:
		return ""
	case OutcomeDenied:
		if v.Reason == "" {
			return "Denied in Countersign by the user."
		}
		return "Denied in Countersign by the user: " + v.Reason
	case OutcomeTimedOut:
		return "Not run: nobody approved this call in Countersign before it timed out (" + v.Reason + ")."
	case OutcomePaused:
		return "Not run: Countersign is paused, so every call is denied until the user resumes it."
	case OutcomeBlocked:
		return v.Reason // a whole sentence from the policy
	case OutcomeAskAgain:
		return "Waiting for approval in Countersign. Ask the user to approve it there, then call the tool again with the same arguments."
	default:
		return "Not run: " + v.Reason + "."
	}
}

// EventKind says what happened to a call.
type EventKind int

// Event kinds.
const (
	EventAdded    EventKind = iota + 1 // a call started waiting
	EventEnded                         // a call got its verdict
	EventHostGone                      // the AI app stopped waiting for a call that still waits (Call.HostGone)
	EventHostBack                      // the AI app called again and waits for the call once more
)

// Event is a change to the queue, delivered to subscribers in order.
type Event struct {
	Kind    EventKind
	Call    Call
	Verdict Verdict // set for EventEnded
}

// Options configure a Queue.
type Options struct {
	Timeout time.Duration // zero means DefaultTimeout
	// GrantWindow is how long the approval of a call the AI app stopped
	// waiting for lets its identical call run; zero means
	// DefaultGrantWindow.
	GrantWindow time.Duration
	// LastID is the largest call id used before (by an earlier run, as
	// the audit log knows it): this queue's ids continue after it, so a
	// call id names one call across runs.
	LastID uint64
}

// Queue is the set of calls waiting for a person. Its zero value is not
// usable; call New.
type Queue struct {
	mu      sync.Mutex
	timeout time.Duration
	window  time.Duration // Options.GrantWindow
	seq     uint64
	lastID  uint64 // Options.LastID: ids at or below it are an earlier run's
	pending map[string]*entry
	grants  map[string]grant // by callKey: approvals waiting for the AI app's call
	subs    map[*Subscription]struct{}
	paused  bool
	closed  bool
}

type entry struct {
	call Call
	done chan Verdict // buffered(1); receives exactly one verdict
	key  string       // callKey(call)
	// waited is set while a Submit waits for the verdict; cleared when
	// the AI app stopped waiting (Call.HostGone), set again by its retry.
	waited bool
	timer  *time.Timer // Countersign's own timeout
}

// New returns an empty queue.
func New(opts Options) *Queue {
	t := opts.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	w := opts.GrantWindow
	if w <= 0 {
		w = DefaultGrantWindow
	}
	return &Queue{
		timeout: t,
		window:  w,
		seq:     opts.LastID,
		lastID:  opts.LastID,
		pending: make(map[string]*entry),
		grants:  make(map[string]grant),
		subs:    make(map[*Subscription]struct{}),
	}
}

// SetTimeout changes the timeout for calls submitted from now on.
func (q *Queue) SetTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultTimeout
	}
	q.mu.Lock()
	q.timeout = d
	q.mu.Unlock()
}

// NewID reserves a call id, for a caller that records a call before it
// submits it. Pass it in Call.ID.
func (q *Queue) NewID() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.newIDLocked()
}

func (q *Queue) newIDLocked() string {
	q.seq++
	return strconv.FormatUint(q.seq, 10)
}

// Submit holds c until it is decided and returns the verdict. It returns
// early, denied, when ctx ends; a cause set with context.WithCancelCause
// (ErrHostCancelled, ErrHostDisconnected, ErrUpstreamLost) says why. c.ID
// is assigned unless it holds an id from NewID that is not in use.
//
// When c.HostBudget passes before anyone decides, Submit returns
// OutcomeAskAgain and the call stays in the queue, marked HostGone. An
// identical call (same server, tool, AI app and arguments, see callKey)
// submitted later waits for that same decision instead of a new one; and
// if the person approved it meanwhile, the identical call runs at once,
// once, within the grant window. Either way its verdict names the earlier
// call in Earlier.
func (q *Queue) Submit(ctx context.Context, c Call) Verdict {
	q.mu.Lock()
	now := time.Now()
	if n, err := strconv.ParseUint(c.ID, 10, 64); err != nil || n <= q.lastID || n > q.seq || q.pending[c.ID] != nil {
		c.ID = q.newIDLocked()
	}
	c.Received = now
	c.Deadline = now.Add(q.timeout)
	if q.closed || q.paused {
		outcome, reason := OutcomeShutdown, "Countersign is shutting down"
		if !q.closed {
			outcome, reason = OutcomePaused, "Countersign is paused"
		}
		q.mu.Unlock()
		return Verdict{CallID: c.ID, Outcome: outcome, Reason: reason, Decided: now}
	}
	if ctx.Err() != nil {
		// Gone before it was held: nobody is shown a call whose AI app
		// has left, and no decision can race the leaving.
		q.mu.Unlock()
		outcome, reason := outcomeFor(context.Cause(ctx))
		return Verdict{CallID: c.ID, Outcome: outcome, Reason: reason, Decided: now}
	}
	key := callKey(c)
	if v, ok := q.takeGrantLocked(key, c.ID, now); ok {
		q.mu.Unlock()
		return v
	}
	e := q.rejoinLocked(key, c, now)
	if e == nil {
		if c.HostBudget > 0 && c.HostBudget < q.timeout {
			c.HostDeadline = now.Add(c.HostBudget)
		}
		e = &entry{call: c, done: make(chan Verdict, 1), key: key, waited: true}
		q.pending[c.ID] = e
		id, timeout := c.ID, q.timeout
		e.timer = time.AfterFunc(timeout, func() { q.end(id, OutcomeTimedOut, "after "+timeout.String(), nil) })
		phases.Mark(phases.Shown)
		q.publishLocked(Event{Kind: EventAdded, Call: c})
	}
	hostDeadline := e.call.HostDeadline
	q.mu.Unlock()

	var hostGone <-chan time.Time
	if !hostDeadline.IsZero() {
		t := time.NewTimer(time.Until(hostDeadline))
		defer t.Stop()
		hostGone = t.C
	}
	select {
	case v := <-e.done:
		return q.forRetry(v, c, e)
	case <-hostGone:
		if v, left := q.leave(e, now); left {
			return q.forRetry(v, c, e)
		}
	case <-ctx.Done():
		outcome, reason := outcomeFor(context.Cause(ctx))
		q.end(e.call.ID, outcome, reason, nil)
	}
	return q.forRetry(<-e.done, c, e)
}

func outcomeFor(cause error) (Outcome, string) {
	switch {
	case errors.Is(cause, ErrHostCancelled):
		return OutcomeCancelled, cause.Error()
	case errors.Is(cause, ErrUpstreamLost):
		return OutcomeUpstreamLost, cause.Error()
	case errors.Is(cause, ErrHostDisconnected), errors.Is(cause, context.Canceled):
		return OutcomeDisconnected, ErrHostDisconnected.Error()
	case errors.Is(cause, context.DeadlineExceeded):
		return OutcomeTimedOut, "the request's deadline passed"
	case cause != nil:
		return OutcomeCancelled, cause.Error()
	}
	return OutcomeCancelled, "cancelled"
}

// Decide records a person's decision on a pending call. It returns
// ErrNotPending if the call already ended. Edited arguments are approved
// only if the call's Check accepts them; otherwise Decide returns an
// *EditRefusedError and the call keeps waiting.
func (q *Queue) Decide(id string, d Decision) error {
	outcome := OutcomeDenied
	var args json.RawMessage
	if d.Approve {
		outcome = OutcomeApproved
		args = d.Arguments
		if args != nil {
			if !json.Valid(args) {
				return &EditRefusedError{Reason: "The edited arguments are not valid JSON."}
			}
			if err := q.checkEdit(id, args); err != nil {
				return err
			}
		}
	}
	if !q.end(id, outcome, d.Reason, args) {
		return fmt.Errorf("%w: %s", ErrNotPending, id)
	}
	return nil
}

// checkEdit runs the call's Check on edited arguments, outside the lock:
// the rules may take a moment, and the call may end meanwhile (then end
// reports it).
func (q *Queue) checkEdit(id string, args json.RawMessage) error {
	q.mu.Lock()
	e, ok := q.pending[id]
	var check func(json.RawMessage) error
	if ok {
		check = e.call.Check
	}
	q.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotPending, id)
	}
	if check == nil {
		return &EditRefusedError{Reason: "Countersign cannot check edited arguments for this call, so it can only be approved as sent."}
	}
	if err := check(args); err != nil {
		return &EditRefusedError{Reason: err.Error()}
	}
	return nil
}

// end gives call id its verdict if it is still pending. Exactly one caller
// wins; it reports whether it was this one.
func (q *Queue) end(id string, outcome Outcome, reason string, args json.RawMessage) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.endLocked(id, outcome, reason, args)
}

func (q *Queue) endLocked(id string, outcome Outcome, reason string, args json.RawMessage) bool {
	e, ok := q.pending[id]
	if !ok {
		return false
	}
	delete(q.pending, id)
	if e.timer != nil {
		e.timer.Stop()
	}
	v := Verdict{CallID: id, Outcome: outcome, Reason: reason, Arguments: args, Decided: time.Now()}
	e.done <- v
	q.publishLocked(Event{Kind: EventEnded, Call: e.call, Verdict: v})
	if !e.waited {
		q.afterHostGoneLocked(e, v)
	}
	return true
}

// Pending returns the waiting calls, oldest first.
func (q *Queue) Pending() []Call {
	q.mu.Lock()
	calls := make([]Call, 0, len(q.pending))
	for _, e := range q.pending {
		calls = append(calls, e.call)
	}
	q.mu.Unlock()
	sort.Slice(calls, func(i, j int) bool {
		a, _ := strconv.ParseUint(calls[i].ID, 10, 64)
		b, _ := strconv.ParseUint(calls[j].ID, 10, 64)
		return a < b
	})
	return calls
}

// SetPaused turns pause on or off. While paused every new call is denied
// without asking, and calls already waiting are denied at once.
func (q *Queue) SetPaused(paused bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = paused
	if paused {
		q.denyAllLocked(OutcomePaused, "Countersign is paused")
		clear(q.grants)
	}
}

// Close denies every waiting call and every later one: the app is shutting
// down. It is safe to call more than once.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.denyAllLocked(OutcomeShutdown, "Countersign is shutting down")
	clear(q.grants)
	for s := range q.subs {
		s.finish()
		delete(q.subs, s)
	}
}

func (q *Queue) denyAllLocked(outcome Outcome, reason string) {
	for id := range q.pending {
		q.endLocked(id, outcome, reason, nil)
	}
}

// Subscribe returns a subscription that receives every later event in
// order. Slow readers never block the queue: events wait in the
// subscription until read.
func (q *Queue) Subscribe() *Subscription {
	s := &Subscription{
		q:    q,
		ch:   make(chan Event),
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		close(s.ch)
		return s
	}
	q.subs[s] = struct{}{}
	q.mu.Unlock()
	go s.pump()
	return s
}

func (q *Queue) publishLocked(ev Event) {
	for s := range q.subs {
		s.push(ev)
	}
}

// Subscription delivers queue events. Read them from Events; call Close
// when done.
type Subscription struct {
	q    *Queue
	ch   chan Event
	wake chan struct{}
	quit chan struct{}
	once sync.Once

	mu      sync.Mutex
	backlog []Event
	final   bool // the queue closed: deliver the backlog, then end
}

// Events is closed when the subscription is closed, or after the last
// event once the queue is closed.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.q.mu.Lock()
	delete(s.q.subs, s)
	s.q.mu.Unlock()
	s.stop()
}

func (s *Subscription) stop() { s.once.Do(func() { close(s.quit) }) }

// finish ends the subscription once its backlog is delivered.
func (s *Subscription) finish() {
	s.mu.Lock()
	s.final = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	s.backlog = append(s.backlog, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves events from the backlog to the channel; it ends when the
// subscription is stopped.
func (s *Subscription) pump() {
	defer close(s.ch)
	for {
		s.mu.Lock()
		if len(s.backlog) == 0 {
			final := s.final
			s.mu.Unlock()
			if final {
				return
			}
			select {
			case <-s.wake:
				continue
			case <-s.quit:
				return
			}
		}
		ev := s.backlog[0]
		s.backlog[0] = Event{}
		s.backlog = s.backlog[1:]
		s.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-s.quit:
			return
		}
	}
}
