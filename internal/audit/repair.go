package audit

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Sentences of the records Open writes for calls a run left half-done.
const (
	reasonUndecided = "Countersign stopped before anyone decided on this call: it was not run."
	reasonApproved  = "Countersign stopped after this call was approved and before the server answered: whether the server received it is not known, and the AI app got no answer."
	reasonForwarded = "Countersign stopped after sending this call to the server and before the answer came back: the server may have run it, and the AI app got no answer."
)

// openCall is what the repair knows of a call while it reads the log.
type openCall struct {
	first                        int64 // id of the call's first event
	callID                       string
	server, tool, client, target string
	asked                        bool // the AI app was told to call again
	approved                     bool // approved, and it is this call that runs
	forwarded                    bool
}

// Repaired returns the records Open wrote to end the calls the last run
// left half-done (see [OutcomeInterrupted]), oldest first.
func (l *Log) Repaired() []Record { return l.repaired }

// LastCallID is the largest call id the log held when it was opened
// (counting ids that are whole numbers). Call ids of this run continue
// after it, so that every call id names one call across runs.
func (l *Log) LastCallID() uint64 { return l.lastCall }

// repair ends every call the last run left half-done, with a record whose
// outcome is OutcomeInterrupted, and learns the largest call id. It reads
// only the events written since it last ran (see the calls_checked table);
// on a file that never had that table, it reads them all, taking call ids
// as restarting at each app_started event, as older versions wrote them.
// It runs in Open, before the writer starts.
func (l *Log) repair(ctx context.Context) error {
	var from int64
	var lastCall uint64
	legacy := false
	err := l.w.QueryRowContext(ctx, `SELECT last_id, last_call FROM calls_checked`).Scan(&from, &lastCall)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		legacy = true
	case err != nil:
		return fmt.Errorf("reading where the last check of calls ended: %w", err)
	}
	l.lastCall = lastCall

	open, lastCall, err := l.openCalls(ctx, from, legacy)
	l.lastCall = max(l.lastCall, lastCall)
	if err != nil {
		return err
	}
	evs := make([]*Event, len(open))
	for i, c := range open {
		evs[i] = closing(c)
	}

	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording interrupted calls: %w", err)
	}
	defer tx.Rollback()
	recs, err := l.appendRows(ctx, tx, evs)
	if err != nil {
		return fmt.Errorf("recording interrupted calls: %w", err)
	}
	head, err := readHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("recording interrupted calls: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO calls_checked (singleton, last_id, last_call) VALUES (1, ?, ?)
		ON CONFLICT (singleton) DO UPDATE SET last_id = excluded.last_id, last_call = excluded.last_call`,
		head.id, int64(l.lastCall)); err != nil {
		return fmt.Errorf("recording interrupted calls: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording interrupted calls: %w", err)
	}
	l.repaired = recs
	if len(recs) > 0 {
		l.logger.Warn("audit: recorded the end of calls the last run left half-done", "calls", len(recs))
	}
	return nil
}

// openCalls reads the call events after id from and returns the calls
// without a closing record, in the order they started, and the largest
// whole-number call id it saw. With legacy set, call ids are scoped to the
// run (the events after an app_started event) they appear in.
func (l *Log) openCalls(ctx context.Context, from int64, legacy bool) ([]*openCall, uint64, error) {
	rows, err := l.w.QueryContext(ctx, `SELECT id, kind, call_id, outcome, server, tool, client, target
		FROM events WHERE id > ? AND (call_id != '' OR kind = ?) ORDER BY id`, from, KindAppStarted)
	if err != nil {
		return nil, 0, fmt.Errorf("reading calls: %w", err)
	}
	defer rows.Close()
	var lastCall uint64
	var run int64
	calls := map[string]*openCall{}
	for rows.Next() {
		var id int64
		var kind, callID, outcome, server, tool, client, target string
		if err := rows.Scan(&id, &kind, &callID, &outcome, &server, &tool, &client, &target); err != nil {
			return nil, lastCall, fmt.Errorf("reading calls: %w", err)
		}
		if Kind(kind) == KindAppStarted {
			if legacy {
				run = id
			}
			continue
		}
		if n, err := strconv.ParseUint(callID, 10, 64); err == nil {
			lastCall = max(lastCall, n)
		}
		key := strconv.FormatInt(run, 10) + "\x00" + callID
		c := calls[key]
		if c == nil {
			c = &openCall{first: id, callID: callID, server: server, tool: tool, client: client, target: target}
			calls[key] = c
		}
		ended := false
		switch Kind(kind) {
		case KindCallDecided:
			switch Outcome(outcome) {
			case OutcomeAskAgain:
				c.asked = true
			case OutcomeApproved:
				// Approved after the AI app was told to call again: the
				// approval lets the AI app's next identical call run, and
				// that call has records of its own.
				ended = c.asked
				c.approved = true
			default:
				ended = true
			}
		case KindCallForwarded:
			c.forwarded = true
		case KindCallResult, KindPolicyDenied:
			ended = true
		}
		if ended {
			delete(calls, key)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, lastCall, fmt.Errorf("reading calls: %w", err)
	}
	open := make([]*openCall, 0, len(calls))
	for _, c := range calls {
		open = append(open, c)
	}
	slices.SortFunc(open, func(a, b *openCall) int { return cmp.Compare(a.first, b.first) })
	return open, lastCall, nil
}

// closing is the record that ends c: a decision when nobody had decided,
// else the result it never got.
func closing(c *openCall) *Event {
	ev := &Event{Server: c.server, Tool: c.tool, Client: c.client, CallID: c.callID, Target: c.target,
		Outcome: OutcomeInterrupted, Actor: ActorApp}
	switch {
	case c.forwarded:
		ev.Kind, ev.Reason, ev.IsError = KindCallResult, reasonForwarded, true
	case c.approved:
		ev.Kind, ev.Reason, ev.IsError = KindCallResult, reasonApproved, true
	default:
		ev.Kind, ev.Reason = KindCallDecided, reasonUndecided
	}
	return ev
}
