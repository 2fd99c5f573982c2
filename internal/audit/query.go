package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Page sizes for Query.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Limits on Filter.Text, so a search stays a search.
const (
	maxTerms     = 16
	maxTermBytes = 256
)

// textPlan chooses how a search with words runs; tests force each plan.
type textPlan int

const (
	textAuto  textPlan = iota // decide as textProbeLimit says
	textIndex                 // always drive by the search index
	textScan                  // never use the search index
)

// textProbeLimit decides how a search with words runs when other filters
// are set too. If the words match fewer events than this, the search index
// drives the query and each hit is checked against the other filters;
// otherwise the words are common, and the other filters' indexes drive it.
const textProbeLimit = 4096

// Filter selects events. Empty fields select everything; set fields must
// all match.
type Filter struct {
	Server  string
	Tool    string
	Client  string
	CallID  string
	Kinds   []Kind // any of these kinds
	Outcome Outcome
	Since   time.Time // written at or after Since
	Until   time.Time // written before Until
	// Text is words that must each appear in the tool, target or reason,
	// ignoring ASCII case. Double quotes group words into one phrase:
	// `"not needed" ffc-pay`.
	Text string
}

// Page is one page of Query results, newest first.
type Page struct {
	Records []Record
	More    bool  // older events match too
	Next    int64 // pass as before to Query for the next page; 0 when !More
}

// Query returns up to limit events matching f with ids below before (0
// means from the newest), newest first. limit <= 0 means DefaultPageSize;
// it is capped at MaxPageSize. Paging by id stays stable while events are
// appended.
func (l *Log) Query(ctx context.Context, f Filter, before int64, limit int) (Page, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	terms, err := parseText(f.Text)
	if err != nil {
		return Page{}, err
	}
	if err := l.readable(); err != nil {
		return Page{}, err
	}
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Page{}, fmt.Errorf("querying audit log: %w", err)
	}
	defer tx.Rollback()
	p, err := planQuery(ctx, tx, f, terms, before, true, l.textPlan)
	if err != nil || p.empty {
		return Page{}, err
	}
	var page Page
	err = p.each(ctx, tx, limit+1, func(r *row) (bool, error) {
		if len(page.Records) == limit {
			page.More = true
			page.Next = page.Records[limit-1].ID
			return false, nil
		}
		rec, err := r.record()
		if err != nil {
			return false, err
		}
		page.Records = append(page.Records, rec)
		return true, nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("querying audit log: %w", err)
	}
	return page, nil
}

// readable returns ErrClosed after Close.
func (l *Log) readable() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

// queryPlan is a SELECT of rowColumns without its LIMIT, possibly in
// parts: the rows of then follow the rows of this one.
type queryPlan struct {
	sql   string
	args  []any
	empty bool       // nothing can match
	then  *queryPlan // the next part, or nil
}

// each runs the plan's parts in order, calling yield on each row, up to
// limit rows in all (none: limit <= 0), or until yield returns false.
func (p queryPlan) each(ctx context.Context, tx *sql.Tx, limit int, yield func(*row) (bool, error)) error {
	if p.empty {
		return nil
	}
	n := 0
	for part := &p; part != nil; part = part.then {
		query, args := part.sql, part.args
		if limit > 0 {
			query, args = query+` LIMIT ?`, append(slices.Clip(args), limit-n)
		}
		more, err := eachRow(ctx, tx, query, args, func(r *row) (bool, error) {
			n++
			return yield(r)
		})
		if err != nil || !more || limit > 0 && n >= limit {
			return err
		}
	}
	return nil
}

// eachRow runs one query; more is false when yield stopped it.
func eachRow(ctx context.Context, tx *sql.Tx, query string, args []any, yield func(*row) (bool, error)) (more bool, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return false, err
		}
		if ok, err := yield(&r); err != nil || !ok {
			return false, err
		}
	}
	return true, rows.Err()
}

const rowColumns = `e.id, e.time_ms, e.kind, e.server, e.tool, e.client, e.call_id, e.target,
	e.outcome, e.actor, e.reason, e.arguments, e.edited_arguments, e.result_size, e.is_error,
	e.redactions, e.detail, e.format, e.prev_hash, e.hash`

// planQuery builds the query for f. Ids grow with time (the writer keeps
// times from decreasing), so Since and Until become an id range, and every
// plan walks an index in id order and stops at the page's end.
func planQuery(ctx context.Context, tx *sql.Tx, f Filter, terms []string, before int64, desc bool, how textPlan) (queryPlan, error) {
	upper, lower := int64(math.MaxInt64), int64(0) // lower <= id < upper
	if before > 0 {
		upper = before
	}
	if !f.Since.IsZero() {
		id, ok, err := firstAtOrAfter(ctx, tx, f.Since)
		if err != nil || !ok {
			return queryPlan{empty: true}, err
		}
		lower = id
	}
	if !f.Until.IsZero() {
		id, ok, err := firstAtOrAfter(ctx, tx, f.Until)
		if err != nil {
			return queryPlan{}, err
		}
		if ok {
			upper = min(upper, id)
		}
	}
	if lower >= upper {
		return queryPlan{empty: true}, nil
	}

	where := []string{`e.id < ?`, `e.id >= ?`}
	args := []any{upper, lower}
	equality := false
	eq := func(column, value string) {
		if value != "" {
			where = append(where, column+` = ?`)
			args = append(args, value)
			equality = true
		}
	}
	eq(`e.server`, f.Server)
	eq(`e.tool`, f.Tool)
	eq(`e.client`, f.Client)
	eq(`e.call_id`, f.CallID)
	eq(`e.outcome`, string(f.Outcome))
	if len(f.Kinds) > 0 {
		where = append(where, `e.kind IN (?`+strings.Repeat(`, ?`, len(f.Kinds)-1)+`)`)
		for _, k := range f.Kinds {
			args = append(args, string(k))
		}
		equality = true
	}
	if !f.Since.IsZero() {
		where = append(where, `e.time_ms >= ?`)
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		where = append(where, `e.time_ms < ?`)
		args = append(args, f.Until.UnixMilli())
	}
	var long []string // words the trigram index can look up
	for _, t := range terms {
		p := likePattern(t)
		where = append(where, `(e.tool LIKE ? ESCAPE '\' OR e.target LIKE ? ESCAPE '\' OR e.reason LIKE ? ESCAPE '\')`)
		args = append(args, p, p, p)
		if utf8.RuneCountInString(t) >= 3 {
			long = append(long, t)
		}
	}

	order := ` DESC`
	if !desc {
		order = ``
	}
	useIndex := false
	var match string
	if len(long) > 0 && how != textScan {
		match = matchExpr(long)
		useIndex = how == textIndex || !equality && len(long) == len(terms)
		if !useIndex {
			var n int
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM events_text
				WHERE events_text MATCH ? AND rowid < ? AND rowid >= ? LIMIT ?)`,
				match, upper, lower, textProbeLimit).Scan(&n)
			if err != nil {
				return queryPlan{}, fmt.Errorf("querying audit log: searching text: %w", err)
			}
			useIndex = n < textProbeLimit
		}
	}
	if useIndex {
		// The search index yields candidates in id order; the LIKE terms
		// above decide, so results are exactly what the plain plan gives.
		// Events newer than the index (a waited commit leaves them to a
		// later one) are read directly.
		var indexed int64
		if err := tx.QueryRowContext(ctx, indexedUpTo).Scan(&indexed); err != nil {
			return queryPlan{}, fmt.Errorf("querying audit log: searching text: %w", err)
		}
		cond := strings.Join(where, ` AND `)
		index := queryPlan{
			sql: `SELECT ` + rowColumns + ` FROM events_text t CROSS JOIN events e ON e.id = t.rowid
				WHERE events_text MATCH ? AND t.rowid < ? AND t.rowid >= ? AND t.rowid <= ? AND ` + cond +
				` ORDER BY t.rowid` + order,
			args: append([]any{match, upper, lower, indexed}, args...),
		}
		if indexed+1 >= upper {
			return index, nil
		}
		tail := queryPlan{
			sql:  `SELECT ` + rowColumns + ` FROM events e WHERE e.id > ? AND ` + cond + ` ORDER BY e.id` + order,
			args: append([]any{indexed}, args...),
		}
		if desc {
			tail.then = &index
			return tail, nil
		}
		index.then = &tail
		return index, nil
	}
	return queryPlan{
		sql:  `SELECT ` + rowColumns + ` FROM events e WHERE ` + strings.Join(where, ` AND `) + ` ORDER BY e.id` + order,
		args: args,
	}, nil
}

// firstAtOrAfter returns the id of the first event written at or after t.
func firstAtOrAfter(ctx context.Context, tx *sql.Tx, t time.Time) (int64, bool, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM events WHERE time_ms >= ? ORDER BY time_ms, id LIMIT 1`, t.UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("querying audit log: finding time %s: %w", t.UTC().Format(timeLayout), err)
	}
	return id, true, nil
}

// parseText splits a search into words. Whitespace and NUL separate words;
// a double quote starts or ends a phrase in which whitespace is kept. Empty
// words are dropped.
func parseText(s string) ([]string, error) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var terms []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			terms = append(terms, cur.String())
			cur.Reset()
		}
	}
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			flush()
			quoted = !quoted
		case r == 0 || !quoted && unicode.IsSpace(r):
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	if len(terms) > maxTerms {
		return nil, fmt.Errorf("search has %d words; at most %d are allowed", len(terms), maxTerms)
	}
	for _, t := range terms {
		if len(t) > maxTermBytes {
			return nil, fmt.Errorf("search word of %d bytes is too long; at most %d are allowed", len(t), maxTermBytes)
		}
	}
	return terms, nil
}

// likePattern matches t anywhere, with LIKE's wildcards in t escaped.
func likePattern(t string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return `%` + r.Replace(t) + `%`
}

// matchExpr is an FTS5 query requiring every word as a phrase.
func matchExpr(terms []string) string {
	q := make([]string, len(terms))
	for i, t := range terms {
		q[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	return strings.Join(q, ` AND `)
}

type scanner interface{ Scan(dest ...any) error }

// scanRow reads rowColumns.
func scanRow(s scanner) (row, error) {
	var r row
	var isError int64
	var prev, hash []byte
	err := s.Scan(&r.id, &r.timeMS, &r.kind, &r.server, &r.tool, &r.client, &r.callID, &r.target,
		&r.outcome, &r.actor, &r.reason, &r.arguments, &r.editedArguments, &r.resultSize, &isError,
		&r.redactions, &r.detail, &r.format, &prev, &hash)
	if err != nil {
		return r, err
	}
	switch isError {
	case 0:
	case 1:
		r.isError = true
	default:
		return r, fmt.Errorf("event %d: is_error is %d, not 0 or 1", r.id, isError)
	}
	if len(prev) != len(r.prevHash) || len(hash) != len(r.hash) {
		return r, fmt.Errorf("event %d: hashes are %d and %d bytes, not %d", r.id, len(prev), len(hash), len(r.hash))
	}
	copy(r.prevHash[:], prev)
	copy(r.hash[:], hash)
	return r, nil
}
