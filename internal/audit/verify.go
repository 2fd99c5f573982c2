package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Problem is why an event does not verify.
type Problem int

// The ways the chain can break.
const (
	// ProblemContentChanged: the event's columns no longer hash to its
	// stored hash; it was edited after it was written.
	ProblemContentChanged Problem = iota + 1
	// ProblemLinkBroken: the event's prev_hash is not the hash of the
	// event before it; that event was edited and its hash rewritten, or
	// replaced.
	ProblemLinkBroken
	// ProblemMissing: events are missing before this one.
	ProblemMissing
	// ProblemOutOfOrder: the event is older than the one before it, or an
	// export lists events out of id order.
	ProblemOutOfOrder
	// ProblemAnchor: the prune anchor, where the chain starts, is not the
	// one the last audit_pruned event recorded.
	ProblemAnchor
	// ProblemUnreadable: the event cannot be read as an event at all.
	ProblemUnreadable
	// ProblemTruncated: the log ends before the head recorded outside it;
	// its newest events were removed (see anchor.go).
	ProblemTruncated
)

var problemNames = map[Problem]string{
	ProblemContentChanged: "content changed",
	ProblemLinkBroken:     "prev_hash mismatch",
	ProblemMissing:        "events missing",
	ProblemOutOfOrder:     "out of order",
	ProblemAnchor:         "anchor mismatch",
	ProblemUnreadable:     "unreadable",
	ProblemTruncated:      "newest events missing",
}

func (p Problem) String() string {
	if s, ok := problemNames[p]; ok {
		return s
	}
	return fmt.Sprintf("problem(%d)", int(p))
}

// Break is the first event that does not verify.
type Break struct {
	ID      int64 // the event's id; 0 when an export line has none
	Line    int64 // the line in an export (CheckExport only)
	Problem Problem
	Detail  string // one plain sentence
}

// Report is the result of walking the chain.
type Report struct {
	Events  int64   // events that verified, in order, before any break
	FirstID int64   // first event verified (0 if none)
	LastID  int64   // last event verified (0 if none)
	Head    Hash    // hash of the last event verified
	Anchor  *Anchor // where the chain starts, when older events were pruned
	Break   *Break  // nil when everything verified
}

// OK reports whether everything verified.
func (r Report) OK() bool { return r.Break == nil }

// String is the report in one or two lines, for `countersign audit verify`.
func (r Report) String() string {
	var b strings.Builder
	if r.Break == nil {
		if r.Events == 0 {
			b.WriteString("OK: no events")
		} else {
			fmt.Fprintf(&b, "OK: %d events verified, ids %d to %d; last hash %s", r.Events, r.FirstID, r.LastID, r.Head)
		}
	} else {
		b.WriteString("BROKEN")
		switch {
		case r.Break.ID != 0:
			fmt.Fprintf(&b, " at event %d", r.Break.ID)
		case r.Break.Line != 0:
			fmt.Fprintf(&b, " at line %d", r.Break.Line)
		}
		fmt.Fprintf(&b, " (%s): %s", r.Break.Problem, r.Break.Detail)
		if r.Events > 0 {
			fmt.Fprintf(&b, "\n%d events before it verified, ids %d to %d", r.Events, r.FirstID, r.LastID)
		}
	}
	if r.Anchor != nil {
		fmt.Fprintf(&b, "\nolder events were pruned; the chain starts after event %d (%s, hash %s)",
			r.Anchor.ID, r.Anchor.Time.Format(timeLayout), r.Anchor.Hash)
	}
	return b.String()
}

// Verify walks the whole chain, oldest first, in one read snapshot, and
// reports the first event that does not verify. The error is for failures
// to read the file, not for a broken chain.
//
// Every event must have the next id, link to the hash of the event before
// it (or to the prune anchor, or to 32 zero bytes for event 1), hash to its
// stored hash, and not be older than the event before it. With an anchor,
// the last audit_pruned event must name it.
//
// A hash chain cannot show that events were removed from its newest end,
// nor stop someone who rewrites every hash after an edit; compare Head with
// a value recorded elsewhere for that.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	if err := l.readable(); err != nil {
		return Report{}, err
	}
	return verifyDB(ctx, l.r)
}

// VerifyFile verifies the audit log at path without changing it, for
// `countersign audit verify`. It works while the app has the log open.
func VerifyFile(ctx context.Context, path string) (Report, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, err)
	}
	if strings.ContainsRune(abs, '?') {
		return Report{}, fmt.Errorf("verifying audit log %s: the path may not contain '?'", path)
	}
	if _, err := os.Stat(abs); err != nil { // SQLite would create a missing file
		return Report{}, fmt.Errorf("verifying audit log: %w", err)
	}
	db, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=query_only(1)", abs, defaultBusyTimeout.Milliseconds()))
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, err)
	}
	defer db.Close()
	version, err := checkSchema(ctx, db)
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, err)
	}
	if version == 0 {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, ErrNotAuditLog)
	}
	r, err := verifyDB(ctx, db)
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, err)
	}
	return r, nil
}

func verifyDB(ctx context.Context, db *sql.DB) (Report, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log: %w", err)
	}
	defer tx.Rollback()

	var rep Report
	v := verifier{rep: &rep}
	var anchorHash []byte
	var anchorMS int64
	var a Anchor
	err = tx.QueryRowContext(ctx, `SELECT last_id, last_hash, last_time_ms FROM anchor`).Scan(&a.ID, &anchorHash, &anchorMS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Report{}, fmt.Errorf("verifying audit log: reading the anchor: %w", err)
	case len(anchorHash) != len(a.Hash):
		rep.Break = &Break{ID: a.ID + 1, Problem: ProblemAnchor, Detail: fmt.Sprintf("the prune anchor's hash is %d bytes, not 32", len(anchorHash))}
		return rep, nil
	default:
		copy(a.Hash[:], anchorHash)
		a.Time = time.UnixMilli(anchorMS).UTC()
		rep.Anchor = &a
		v.prevID, v.prevHash, v.prevMS = a.ID, a.Hash, anchorMS
		v.anchored = true
		// The last audit_pruned event must name this anchor; it is checked
		// when the walk reaches it, so breaks are reported in chain order.
		err := tx.QueryRowContext(ctx, `SELECT id FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1`, string(KindPruned)).Scan(&v.lastPrune)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Report{}, fmt.Errorf("verifying audit log: finding the last prune: %w", err)
		}
	}

	rows, err := tx.QueryContext(ctx, `SELECT `+rowColumns+` FROM events e ORDER BY e.id`)
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if rep.Events%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return Report{}, fmt.Errorf("verifying audit log: %w", err)
			}
		}
		r, err := scanRow(rows)
		if err != nil {
			rep.Break = &Break{ID: r.id, Problem: ProblemUnreadable, Detail: err.Error()}
			return rep, nil
		}
		if !v.next(&r) {
			return rep, nil
		}
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("verifying audit log: %w", err)
	}
	if v.anchored && rep.Events == 0 {
		rep.Break = &Break{ID: a.ID + 1, Problem: ProblemMissing,
			Detail: "no events follow the prune anchor; at least the audit_pruned event that recorded it must"}
	} else if v.anchored && v.lastPrune == 0 {
		rep.Break = &Break{ID: rep.FirstID, Problem: ProblemAnchor,
			Detail: fmt.Sprintf("no audit_pruned event records the prune anchor (event %d, hash %s)", a.ID, a.Hash.short())}
	}
	return rep, nil
}

// verifier checks events one after another.
type verifier struct {
	rep       *Report
	prevID    int64
	prevHash  Hash
	prevMS    int64
	anchored  bool  // the chain starts at an anchor
	lastPrune int64 // id of the last audit_pruned event, checked against the anchor
	buf       []byte
}

// next checks r against the event before it; on a break it records it in
// the report and returns false.
func (v *verifier) next(r *row) bool {
	fail := func(p Problem, format string, args ...any) bool {
		v.rep.Break = &Break{ID: r.id, Problem: p, Detail: fmt.Sprintf(format, args...)}
		return false
	}
	first := v.rep.Events == 0
	if r.id != v.prevID+1 {
		if r.id <= v.prevID {
			return fail(ProblemOutOfOrder, "its id is not greater than the id %d before it", v.prevID)
		}
		where := fmt.Sprintf("after event %d", v.prevID)
		if first && v.anchored {
			where = fmt.Sprintf("after the prune anchor (event %d)", v.prevID)
		} else if first {
			where = "at the start of the log"
		}
		if r.id-1 == v.prevID+1 {
			return fail(ProblemMissing, "event %d is missing %s", v.prevID+1, where)
		}
		return fail(ProblemMissing, "events %d to %d are missing %s", v.prevID+1, r.id-1, where)
	}
	if r.prevHash != v.prevHash {
		switch {
		case first && v.anchored:
			return fail(ProblemLinkBroken, "its prev_hash %s is not the prune anchor's hash %s", r.prevHash.short(), v.prevHash.short())
		case first:
			return fail(ProblemLinkBroken, "its prev_hash %s is not the zero hash that starts the log", r.prevHash.short())
		default:
			return fail(ProblemLinkBroken, "its prev_hash %s is not the hash %s of event %d before it; that event was changed and its hash rewritten, or replaced",
				r.prevHash.short(), v.prevHash.short(), v.prevID)
		}
	}
	if r.format != formatV1 {
		return fail(ProblemUnreadable, "it has row format %d, which this build does not know", r.format)
	}
	var sum Hash
	sum, v.buf = r.computeHash(v.buf)
	if sum != r.hash {
		return fail(ProblemContentChanged, "its content was changed after it was written (stored hash %s, content hashes to %s)", r.hash.short(), sum.short())
	}
	if r.timeMS < v.prevMS {
		return fail(ProblemOutOfOrder, "its time %s is before the time %s of the event before it",
			time.UnixMilli(r.timeMS).UTC().Format(timeLayout), time.UnixMilli(v.prevMS).UTC().Format(timeLayout))
	}
	if v.anchored && r.id == v.lastPrune {
		a := v.rep.Anchor
		var d pruneDetail
		if err := json.Unmarshal([]byte(r.detail), &d); err != nil {
			return fail(ProblemAnchor, "the last audit_pruned event's detail cannot be read: %v", err)
		}
		if d.AnchorID != a.ID || d.AnchorHash != a.Hash.String() {
			return fail(ProblemAnchor, "the last prune recorded anchor event %d (hash %.12s), but the chain starts after event %d (hash %s)",
				d.AnchorID, d.AnchorHash, a.ID, a.Hash.short())
		}
	}
	if first {
		v.rep.FirstID = r.id
	}
	v.rep.Events++
	v.rep.LastID = r.id
	v.rep.Head = r.hash
	v.prevID, v.prevHash, v.prevMS = r.id, r.hash, r.timeMS
	return true
}
