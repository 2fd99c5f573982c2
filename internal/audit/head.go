package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Head is the newest event in the chain: its id and hash. Recorded outside
// the database after each commit, it shows when the newest events were cut
// off (see [Log.VerifyHead]).
type Head struct {
	ID   int64
	Hash Hash
}

// headState is what the log knows of its head and who wants to hear of a
// new one. It is kept apart from the writer's own state so that readers
// never wait for a write.
type headState struct {
	mu       sync.Mutex
	head     Head
	watchers map[chan struct{}]struct{}
}

// Head returns the newest committed event (zero before the first).
func (l *Log) Head() Head {
	l.heads.mu.Lock()
	defer l.heads.mu.Unlock()
	return l.heads.head
}

// Watch returns a channel that receives a value after commits that moved
// the head, coalesced: a receiver that is busy misses no commit, it finds
// one value waiting that stands for all of them. Call stop when done.
func (l *Log) Watch() (c <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	l.heads.mu.Lock()
	if l.heads.watchers == nil {
		l.heads.watchers = map[chan struct{}]struct{}{}
	}
	l.heads.watchers[ch] = struct{}{}
	l.heads.mu.Unlock()
	return ch, func() {
		l.heads.mu.Lock()
		delete(l.heads.watchers, ch)
		l.heads.mu.Unlock()
	}
}

// committed records a new head and wakes the watchers without blocking.
// The writer calls it after each commit.
func (l *Log) committed(rec Record) {
	l.heads.mu.Lock()
	defer l.heads.mu.Unlock()
	if rec.ID <= l.heads.head.ID {
		return
	}
	l.heads.head = Head{ID: rec.ID, Hash: rec.Hash}
	for ch := range l.heads.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// loadHead reads the head from the file when it opens.
func (l *Log) loadHead(ctx context.Context) error {
	var h Head
	var hash []byte
	err := l.w.QueryRowContext(ctx, `SELECT id, hash FROM events ORDER BY id DESC LIMIT 1`).Scan(&h.ID, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the chain head: %w", err)
	}
	copy(h.Hash[:], hash)
	l.heads.mu.Lock()
	l.heads.head = h
	l.heads.mu.Unlock()
	return nil
}

// After returns up to limit events with ids above id, oldest first: what a
// reader that has seen every event up to id reads next. Events pruned
// before it read them are gone; the first event returned then has an id
// further on than id+1.
func (l *Log) After(ctx context.Context, id int64, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	if err := l.readable(); err != nil {
		return nil, err
	}
	rows, err := l.r.QueryContext(ctx, `SELECT `+rowColumns+` FROM events e WHERE e.id > ? ORDER BY e.id LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("reading audit events after %d: %w", id, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("reading audit events after %d: %w", id, err)
		}
		rec, err := r.record()
		if err != nil {
			return nil, fmt.Errorf("reading audit events after %d: %w", id, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit events after %d: %w", id, err)
	}
	return out, nil
}
