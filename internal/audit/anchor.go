package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// A hash chain cannot show that its newest events were removed: what is
// left is a valid, shorter chain. The head (the newest event's id and
// hash) is therefore recorded outside the database after each commit — in
// the OS keychain and in every batch of exported events — and VerifyHead
// compares the chain with it.

// MarshalText writes the head as "id:hash", the form kept outside the
// database.
func (h Head) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%d:%s", h.ID, h.Hash), nil
}

// UnmarshalText reads the "id:hash" form.
func (h *Head) UnmarshalText(b []byte) error {
	id, hash, ok := strings.Cut(string(b), ":")
	var n int64
	if _, err := fmt.Sscanf(id, "%d", &n); !ok || err != nil || n < 0 || fmt.Sprint(n) != id {
		return fmt.Errorf("audit head %q is not id:hash", b)
	}
	hh, err := parseHash(hash)
	if err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	*h = Head{ID: n, Hash: hh}
	return nil
}

// VerifyHead verifies the chain like Verify and then checks it against a
// head recorded outside the database: the recorded event must still be
// there with the recorded hash. When the log ends before it, the report
// breaks with ProblemTruncated: "the log ends at event N but event M was
// recorded". A head at or before the prune anchor cannot be checked and
// passes.
func (l *Log) VerifyHead(ctx context.Context, h Head) (Report, error) {
	if err := l.readable(); err != nil {
		return Report{}, err
	}
	rep, err := verifyDB(ctx, l.r)
	if err != nil {
		return rep, err
	}
	return checkHead(ctx, l.r, rep, h)
}

// VerifyFileHead is VerifyFile checked against a head recorded outside the
// database, as VerifyHead.
func VerifyFileHead(ctx context.Context, path string, h Head) (Report, error) {
	rep, err := VerifyFile(ctx, path)
	if err != nil || !rep.OK() {
		return rep, err
	}
	db, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=query_only(1)", path, defaultBusyTimeout.Milliseconds()))
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log %s: %w", path, err)
	}
	defer db.Close()
	return checkHead(ctx, db, rep, h)
}

// checkHead adds a break to an intact rep when the chain has lost h.
func checkHead(ctx context.Context, db *sql.DB, rep Report, h Head) (Report, error) {
	if !rep.OK() || h.ID == 0 || (rep.Anchor != nil && h.ID <= rep.Anchor.ID) {
		return rep, nil
	}
	if h.ID > rep.LastID {
		end := fmt.Sprintf("the log ends at event %d", rep.LastID)
		if rep.Events == 0 {
			end = "the log holds no events"
		}
		rep.Break = &Break{ID: rep.LastID + 1, Problem: ProblemTruncated,
			Detail: fmt.Sprintf("%s but event %d was recorded (hash %s); the newest events were removed", end, h.ID, h.Hash.short())}
		return rep, nil
	}
	var hash []byte
	err := db.QueryRowContext(ctx, `SELECT hash FROM events WHERE id = ?`, h.ID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Verify found every id up to LastID, so the row cannot be missing
		// unless the file changed since; say so rather than guess.
		rep.Break = &Break{ID: h.ID, Problem: ProblemMissing, Detail: fmt.Sprintf("event %d, recorded as the head, is not in the log", h.ID)}
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("verifying audit log: reading event %d: %w", h.ID, err)
	}
	if string(hash) != string(h.Hash[:]) {
		rep.Break = &Break{ID: h.ID, Problem: ProblemTruncated,
			Detail: fmt.Sprintf("event %d has hash %x, but hash %s was recorded for it; the events from there on were replaced", h.ID, hash[:min(6, len(hash))], h.Hash.short())}
	}
	return rep, nil
}
