package audit

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// DefaultRetentionDays is how many whole days of events the log keeps
// unless told otherwise.
const DefaultRetentionDays = 180

// defaultBusyTimeout is how long a write waits for a lock held by another
// connection before it fails (and the call it records is denied).
const defaultBusyTimeout = 5 * time.Second

// maxBatch caps how many waiting appends share one transaction.
const maxBatch = 256

// defaultAsyncHold is how long events queued by AppendAsync wait for a waited
// append (or a Flush) to share its transaction with, before the writer
// commits them on their own. A call's forwarded and result records then
// ride with the next call's submitted record instead of taking a disk
// sync of their own in front of it.
const defaultAsyncHold = 50 * time.Millisecond

// defaultIndexIdle is how long the writer waits for another append before it
// adds the events a waited commit left out to the search index.
const defaultIndexIdle = 100 * time.Millisecond

// maxUnindexed bounds how many events may wait for the search index: past
// it, the next commit adds them whoever waits for it.
const maxUnindexed = 256

// indexedUpTo is an SQL expression for the largest event id in the search
// index. The index holds every event up to it: events are added in id
// order and only pruned from the start.
const indexedUpTo = `SELECT coalesce(max(rowid), 0) FROM events_text`

// ErrClosed is returned by every method of a Log after Close.
var ErrClosed = errors.New("audit log is closed")

// Options configure a Log.
type Options struct {
	// RetentionDays is how many whole UTC days before today are kept: 0
	// means DefaultRetentionDays, a negative value keeps every event.
	RetentionDays int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives failures and prunes, never event contents; nil means
	// slog.Default().
	Logger *slog.Logger

	busyTimeout time.Duration // tests shorten it; zero means defaultBusyTimeout
	asyncHold   time.Duration // tests change it; zero means defaultAsyncHold
	indexIdle   time.Duration // tests change it; zero means defaultIndexIdle
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	logger *slog.Logger
	now    func() time.Time
	w      *sql.DB   // one connection: the only writer
	r      *sql.DB   // readers; never write
	insert *sql.Stmt // adds an event
	// indexText adds the tool, target and reason of the events not yet in
	// the search index to it.
	indexText *sql.Stmt

	textPlan textPlan // tests force a search plan; zero decides per query

	asyncHold time.Duration // see defaultAsyncHold
	indexIdle time.Duration // see defaultIndexIdle
	commits   atomic.Int64  // transactions that appended events, for tests

	retention atomic.Int64 // days; negative keeps everything

	mu     sync.RWMutex // guards closed and sends on jobs
	closed bool
	jobs   chan *job
	done   chan struct{} // closed when the writer goroutine has returned

	// Set by Open.
	repaired []Record // see Repaired
	lastCall uint64   // see LastCallID

	// Owned by the writer goroutine.
	prunedDay int64 // UTC day (days since the Unix epoch) of the last prune
	unindexed int   // events committed since the search index last caught up
	buf       []byte

	heads headState // the newest committed event and who watches it (head.go)
}

// job is one request to the writer: an append, or a prune.
type job struct {
	ev    Event
	prune bool
	flush bool           // Flush: answered once the jobs before it are done
	done  chan jobResult // buffered(1): the writer never blocks on it; nil for AppendAsync
	// after is AppendAsync's callback, run by the writer once the event's
	// transaction committed or failed.
	after func(Record, error)
}

type jobResult struct {
	rec    Record
	pruned Pruned
	err    error
}

// Open opens the audit log at path, creating it (and missing parent
// directories, mode 0700) with mode 0600, and bringing an older schema up
// to date. Right after it returns, the writer prunes events beyond the
// retention period; appends queue behind that. Before it returns, it
// records an end for every call the last run left half-done (see
// [Log.Repaired]).
func Open(path string, opts Options) (*Log, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	if strings.ContainsRune(abs, '?') {
		// The driver reads options after a '?' in the name.
		return nil, fmt.Errorf("opening audit log %s: the path may not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("creating audit log directory: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	busy := opts.busyTimeout
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	l := &Log{
		logger:    opts.Logger,
		now:       opts.Now,
		jobs:      make(chan *job, maxBatch),
		done:      make(chan struct{}),
		asyncHold: cmp.Or(opts.asyncHold, defaultAsyncHold),
		indexIdle: cmp.Or(opts.indexIdle, defaultIndexIdle),
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.SetRetentionDays(opts.RetentionDays)

	// WAL lets the viewer read while relay sessions append. synchronous=FULL
	// syncs the WAL on every commit, so an event Append reported as written
	// survives a power cut, not only a crash: the call it allowed may
	// already have run. Group commit (see run) pays for that sync once per
	// batch of concurrent appends rather than once per event.
	if err := l.open(abs, busy); err != nil {
		l.closeDBs()
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	// A file that cannot be written still opens (its events can be read,
	// and every call is then denied): the failure is only logged.
	if err := l.repair(context.Background()); err != nil {
		l.logger.Error("audit: checking for calls the last run left half-done failed", "err", err)
	}
	// Events the last run (or the repair) left out of the search index.
	l.indexQuietly()
	go l.run()
	return l, nil
}

// open opens the writer and reader pools, brings the schema up to date and
// prepares the writer's statements.
func (l *Log) open(path string, busy time.Duration) error {
	// WAL lets the viewer read while relay sessions append. synchronous=FULL
	// syncs the WAL on every commit, so an event Append reported as written
	// survives a power cut, not only a crash: the call it allowed may
	// already have run. Group commit (see run) pays for that sync once per
	// batch of concurrent appends rather than once per event.
	var err error
	l.w, err = sql.Open("sqlite", fmt.Sprintf(
		"%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate",
		path, busy.Milliseconds()))
	if err != nil {
		return err
	}
	l.w.SetMaxOpenConns(1) // the one writer
	l.w.SetMaxIdleConns(1)
	l.w.SetConnMaxLifetime(0)
	l.w.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if err := migrate(ctx, l.w); err != nil {
		return err
	}
	// Let the planner see the indexes' shape (bounded work, see the SQLite
	// docs for PRAGMA optimize); a failure only costs query speed.
	if _, err := l.w.ExecContext(ctx, `PRAGMA analysis_limit = 1000`); err == nil {
		if _, err := l.w.ExecContext(ctx, `PRAGMA optimize = 0x10002`); err != nil {
			l.logger.Warn("audit: optimizing the query planner failed", "err", err)
		}
	}
	l.insert, err = l.w.PrepareContext(ctx, `INSERT INTO events (`+insertColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	l.indexText, err = l.w.PrepareContext(ctx, `INSERT INTO events_text (rowid, tool, target, reason)
		SELECT id, tool, target, reason FROM events WHERE id > (`+indexedUpTo+`)`)
	if err != nil {
		return err
	}
	l.r, err = sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=query_only(1)", path, busy.Milliseconds()))
	if err != nil {
		return err
	}
	l.r.SetMaxOpenConns(max(2, runtime.GOMAXPROCS(0)))
	return l.loadHead(ctx)
}

// closeDBs closes whatever open managed to open.
func (l *Log) closeDBs() error {
	var errs []error
	if l.indexText != nil {
		errs = append(errs, l.indexText.Close())
	}
	if l.insert != nil {
		errs = append(errs, l.insert.Close())
	}
	if l.r != nil {
		errs = append(errs, l.r.Close())
	}
	if l.w != nil {
		errs = append(errs, l.w.Close())
	}
	return errors.Join(errs...)
}

// createPrivate creates path with mode 0600 if it does not exist, before
// SQLite does (SQLite would use 0644), and narrows a wider mode. SQLite
// gives its -wal and -shm files the database file's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	info, err := f.Stat()
	f.Close()
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return os.Chmod(path, 0o600)
	}
	return nil
}

// SetRetentionDays changes how many whole days are kept (0 means
// DefaultRetentionDays, negative keeps everything). It takes effect at the
// next daily prune or Prune call.
func (l *Log) SetRetentionDays(days int) {
	if days == 0 {
		days = DefaultRetentionDays
	}
	l.retention.Store(int64(days))
}

// Append writes ev to the log and returns it as stored. It returns an error
// unless the event was durably written; the caller must then treat the
// action it records as not allowed (fail closed). Append refuses an unknown
// kind, the KindPruned kind (the log writes those itself), and JSON fields
// that are not JSON. ctx bounds only the wait for the writer to take the
// event: once taken, Append reports what happened to it.
func (l *Log) Append(ctx context.Context, ev Event) (Record, error) {
	if ev.Kind == KindPruned {
		return Record{}, fmt.Errorf("%w: %s events are written by the log itself", errInvalid, KindPruned)
	}
	ev, err := normalize(ev)
	if err != nil {
		return Record{}, err
	}
	res, err := l.do(ctx, &job{ev: ev})
	if err != nil {
		return Record{}, err
	}
	return res.rec, res.err
}

// AppendAsync queues ev to be written with the next group commit and
// returns without waiting for the disk: for events that need not be
// durable before the caller goes on (a call was forwarded, a call's
// result), which Open's repair covers if the process dies before they are
// written (see [Log.Repaired]). It returns an error only when ev is
// invalid or the log is closed; Close writes every queued event first.
// When the queue is full it waits for room, so a writer that falls behind
// slows its callers rather than holding events without bound.
//
// done, if not nil, is called once the event was written or its write
// failed (the failure is also logged). It runs on the writer goroutine: it
// must not block, nor call the Log.
func (l *Log) AppendAsync(ev Event, done func(Record, error)) error {
	if ev.Kind == KindPruned {
		return fmt.Errorf("%w: %s events are written by the log itself", errInvalid, KindPruned)
	}
	ev, err := normalize(ev)
	if err != nil {
		return err
	}
	if done == nil {
		done = func(Record, error) {}
	}
	return l.send(context.Background(), &job{ev: ev, after: done})
}

// Flush waits until every event queued before it (by AppendAsync) has been
// written or has failed. ctx bounds only the wait for the writer to take
// the request.
func (l *Log) Flush(ctx context.Context) error {
	_, err := l.do(ctx, &job{flush: true})
	return err
}

// Prune removes events older than the start of the UTC day RetentionDays
// before today, records where the chain now starts, and appends an
// audit_pruned event saying what it removed. It does nothing when there is
// nothing to remove. The log also prunes by itself once a day.
func (l *Log) Prune(ctx context.Context) (Pruned, error) {
	res, err := l.do(ctx, &job{prune: true})
	if err != nil {
		return Pruned{}, err
	}
	return res.pruned, res.err
}

// do hands j to the writer and waits for its result.
func (l *Log) do(ctx context.Context, j *job) (jobResult, error) {
	j.done = make(chan jobResult, 1)
	if err := l.send(ctx, j); err != nil {
		return jobResult{}, err
	}
	return <-j.done, nil
}

func (l *Log) send(ctx context.Context, j *job) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting to write audit event: %w", context.Cause(ctx))
	}
	select {
	case l.jobs <- j:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to write audit event: %w", context.Cause(ctx))
	}
}

// Close writes what is queued, then closes the file. Later calls return
// ErrClosed; Close itself may be called again.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.jobs)
	l.mu.Unlock()
	<-l.done

	if _, err := l.w.Exec(`PRAGMA optimize`); err != nil {
		l.logger.Warn("audit: optimizing the query planner failed", "err", err)
	}
	if err := l.closeDBs(); err != nil {
		return fmt.Errorf("closing audit log: %w", err)
	}
	return nil
}

// run is the writer goroutine: the only code that writes to the file. It
// takes whatever appends are waiting and writes them in one transaction
// (group commit), so concurrent relay sessions share one WAL sync. It ends
// when Close closes jobs, after finishing what was queued.
func (l *Log) run() {
	defer close(l.done)
	l.pruneIfDue(true)
	batch := make([]*job, 0, maxBatch)
	hold := time.NewTimer(l.asyncHold)
	hold.Stop()
	idle := time.NewTimer(l.indexIdle)
	idle.Stop()
	for {
		j, ok := l.next(idle)
		if !ok {
			break
		}
		if j == nil {
			l.indexQuietly()
			continue
		}
		batch = l.drain(append(batch[:0], j))
		if queuedOnly(batch) {
			batch = l.holdFor(batch, hold)
		}
		l.process(batch)
	}
	if l.unindexed > 0 {
		l.indexQuietly()
	}
}

// next waits for the next job. While events wait for the search index, it
// returns a nil job once none has come for l.indexIdle. ok is false once the
// queue is closed.
func (l *Log) next(idle *time.Timer) (j *job, ok bool) {
	if l.unindexed == 0 {
		j, ok = <-l.jobs
		return j, ok
	}
	idle.Reset(l.indexIdle)
	defer idle.Stop()
	select {
	case j, ok = <-l.jobs:
		return j, ok
	case <-idle.C:
		return nil, true
	}
}

// drain adds the jobs already waiting to batch, up to maxBatch.
func (l *Log) drain(batch []*job) []*job {
	for len(batch) < maxBatch {
		select {
		case j, ok := <-l.jobs:
			if !ok {
				return batch
			}
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// holdFor waits up to l.asyncHold for a job that someone waits for, so that
// batch, which holds only queued events, is committed with it.
func (l *Log) holdFor(batch []*job, hold *time.Timer) []*job {
	hold.Reset(l.asyncHold)
	defer hold.Stop()
	for len(batch) < maxBatch {
		select {
		case j, ok := <-l.jobs:
			if !ok {
				return batch
			}
			batch = append(batch, j)
			if j.after == nil {
				return l.drain(batch)
			}
		case <-hold.C:
			return batch
		}
	}
	return batch
}

// queuedOnly says whether batch holds only AppendAsync's events, which
// nobody waits for.
func queuedOnly(batch []*job) bool {
	for _, j := range batch {
		if j.after == nil {
			return false
		}
	}
	return true
}

// process runs a batch in order: consecutive appends share a transaction,
// a prune runs on its own. The day's first appends prune first.
func (l *Log) process(batch []*job) {
	for len(batch) > 0 {
		if batch[0].flush {
			batch[0].done <- jobResult{}
			batch = batch[1:]
			continue
		}
		if batch[0].prune {
			l.prunedDay = dayOf(l.now()) // this is today's prune
			p, err := l.prune(context.Background())
			batch[0].done <- jobResult{pruned: p, err: err}
			batch = batch[1:]
			continue
		}
		l.pruneIfDue(false)
		n := 1
		for n < len(batch) && !batch[n].prune && !batch[n].flush {
			n++
		}
		l.writeAppends(batch[:n])
		batch = batch[n:]
	}
}

// chainHead is the last event in the chain (or the prune anchor, or the
// all-zero start), which the next event links to.
type chainHead struct {
	id     int64
	timeMS int64
	hash   Hash
}

// readHead reads the chain head inside the write transaction, so it is
// right even if something else wrote to the file.
func readHead(ctx context.Context, tx *sql.Tx) (chainHead, error) {
	var h chainHead
	var hash []byte
	err := tx.QueryRowContext(ctx, `SELECT id, time_ms, hash FROM events ORDER BY id DESC LIMIT 1`).Scan(&h.id, &h.timeMS, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT last_id, last_time_ms, last_hash FROM anchor`).Scan(&h.id, &h.timeMS, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			return chainHead{}, nil
		}
	}
	if err != nil {
		return chainHead{}, fmt.Errorf("reading the chain head: %w", err)
	}
	if len(hash) != len(h.hash) {
		return chainHead{}, fmt.Errorf("reading the chain head: event %d has a %d-byte hash", h.id, len(hash))
	}
	copy(h.hash[:], hash)
	return h, nil
}

// appendRows links evs to the chain head and inserts them in tx, returning
// them as stored. Times never decrease along the chain: an event stamped
// while the clock is behind the previous event gets the previous event's
// time, so id order and time order agree.
func (l *Log) appendRows(ctx context.Context, tx *sql.Tx, evs []*Event) ([]Record, error) {
	head, err := readHead(ctx, tx)
	if err != nil {
		return nil, err
	}
	now := l.now().UnixMilli()
	stmt := tx.StmtContext(ctx, l.insert)
	recs := make([]Record, len(evs))
	for i, ev := range evs {
		r := newRow(head.id+1, max(now, head.timeMS), ev)
		r.prevHash = head.hash
		r.hash, l.buf = r.computeHash(l.buf)
		if _, err := stmt.ExecContext(ctx, r.insertArgs()...); err != nil {
			return nil, fmt.Errorf("inserting event %d: %w", r.id, err)
		}
		recs[i] = Record{ID: r.id, Time: time.UnixMilli(r.timeMS).UTC(), Event: *ev, PrevHash: r.prevHash, Hash: r.hash}
		head = chainHead{id: r.id, timeMS: r.timeMS, hash: r.hash}
	}
	return recs, nil
}

// writeAppends writes a batch of appends in one transaction and answers
// each job. If anything fails, nothing of the batch is written and every
// job gets the error.
func (l *Log) writeAppends(jobs []*job) {
	evs := make([]*Event, len(jobs))
	for i, j := range jobs {
		evs[i] = &j.ev
	}
	// The search index is derived data: a commit someone waits for (a
	// call's submitted or decided record) leaves it to a later commit or
	// to a quiet moment (see run), so the call pays for fewer pages.
	index := queuedOnly(jobs) || l.unindexed+len(jobs) > maxUnindexed
	recs, err := l.writeEvents(context.Background(), evs, index)
	if err != nil {
		l.logger.Error("audit: writing events failed; the calls they record are denied",
			"events", len(jobs), "err", err)
	}
	for i, j := range jobs {
		var res jobResult
		if err != nil {
			res.err = err
		} else {
			res.rec = recs[i]
		}
		if j.after != nil {
			j.after(res.rec, res.err)
		} else {
			j.done <- res
		}
	}
}

// writeEvents appends evs in one committed transaction, with every event
// not yet in the search index added to it if index is set.
func (l *Log) writeEvents(ctx context.Context, evs []*Event, index bool) ([]Record, error) {
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("writing audit events: %w", err)
	}
	defer tx.Rollback()
	recs, err := l.appendRows(ctx, tx, evs)
	if err != nil {
		return nil, fmt.Errorf("writing audit events: %w", err)
	}
	if index {
		if _, err := tx.StmtContext(ctx, l.indexText).ExecContext(ctx); err != nil {
			return nil, fmt.Errorf("writing audit events: indexing them for search: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("writing audit events: %w", err)
	}
	if index {
		l.unindexed = 0
	} else {
		l.unindexed += len(evs)
	}
	l.commits.Add(1)
	l.committed(recs[len(recs)-1])
	return recs, nil
}

// indexQuietly adds the events not yet in the search index to it, in a
// transaction of its own; run calls it when no append has come for
// l.indexIdle. A failure is logged and tried again later: searches still
// find those events (see planQuery).
func (l *Log) indexQuietly() {
	if _, err := l.indexText.Exec(); err != nil {
		l.logger.Warn("audit: adding events to the search index failed; searches read them directly meanwhile", "err", err)
		return
	}
	l.unindexed = 0
}

const insertColumns = `id, time_ms, kind, server, tool, client, call_id, target, outcome, actor,
	reason, arguments, edited_arguments, result_size, is_error, redactions, detail, format, prev_hash, hash`

func (r *row) insertArgs() []any {
	isError := 0
	if r.isError {
		isError = 1
	}
	return []any{r.id, r.timeMS, r.kind, r.server, r.tool, r.client, r.callID, r.target,
		r.outcome, r.actor, r.reason, r.arguments, r.editedArguments, r.resultSize, isError,
		r.redactions, r.detail, r.format, r.prevHash[:], r.hash[:]}
}

// Anchor is where the chain starts after a prune: the last pruned event.
type Anchor struct {
	ID   int64
	Hash Hash
	Time time.Time
}

// Pruned says what a prune removed.
type Pruned struct {
	Events int64     // events removed; zero when there was nothing to remove
	Before time.Time // the cutoff: the start of a UTC day
	Anchor Anchor    // the last removed event, where the chain now starts
	Record Record    // the audit_pruned event recording the prune
}

// pruneDetail is the Detail of an audit_pruned event. Verify checks that
// the last one names the stored anchor.
type pruneDetail struct {
	AnchorID   int64  `json:"anchor_id"`
	AnchorHash string `json:"anchor_hash"`
	AnchorTime string `json:"anchor_time"`
	Before     string `json:"before"`
	Events     int64  `json:"events"`
}

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// pruneIfDue prunes once per UTC day (always when force is set). A failure
// is logged, and the next try is the next day: appends report their own
// failures.
func (l *Log) pruneIfDue(force bool) {
	day := dayOf(l.now())
	if !force && day == l.prunedDay {
		return
	}
	l.prunedDay = day
	if _, err := l.prune(context.Background()); err != nil {
		l.logger.Error("audit: pruning old events failed", "err", err)
	}
}

// prune implements Prune. It removes a prefix of the chain, by id: every
// event before the first one written at or after the cutoff. The anchor
// update, the deletions and the audit_pruned event commit together.
func (l *Log) prune(ctx context.Context) (Pruned, error) {
	days := l.retention.Load()
	if days < 0 {
		return Pruned{}, nil
	}
	now := l.now().UTC()
	cutoff := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -int(days))
	p := Pruned{Before: cutoff}

	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("pruning audit log: %w", err)
	}
	defer tx.Rollback()

	// Walk from the oldest event to the first one to keep (NOT INDEXED keeps
	// the planner on the id order), so the cost grows with what is removed,
	// not with what is kept.
	var last int64
	err = tx.QueryRowContext(ctx, `SELECT id - 1 FROM events NOT INDEXED WHERE time_ms >= ? ORDER BY id LIMIT 1`, cutoff.UnixMilli()).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&last)
	}
	if err != nil {
		return p, fmt.Errorf("pruning audit log: finding old events: %w", err)
	}
	var hash []byte
	var timeMS int64
	err = tx.QueryRowContext(ctx, `SELECT id, time_ms, hash FROM events WHERE id <= ? ORDER BY id DESC LIMIT 1`, last).Scan(&p.Anchor.ID, &timeMS, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil // nothing older than the cutoff
	}
	if err != nil {
		return p, fmt.Errorf("pruning audit log: reading the last old event: %w", err)
	}
	if len(hash) != len(p.Anchor.Hash) {
		return p, fmt.Errorf("pruning audit log: event %d has a %d-byte hash", p.Anchor.ID, len(hash))
	}
	copy(p.Anchor.Hash[:], hash)
	p.Anchor.Time = time.UnixMilli(timeMS).UTC()
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE id <= ?`, p.Anchor.ID).Scan(&p.Events); err != nil {
		return p, fmt.Errorf("pruning audit log: counting old events: %w", err)
	}
	// The anchor moves first: the delete trigger allows only ids at or
	// below it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO anchor (singleton, last_id, last_hash, last_time_ms) VALUES (1, ?, ?, ?)
		ON CONFLICT (singleton) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash, last_time_ms = excluded.last_time_ms`,
		p.Anchor.ID, p.Anchor.Hash[:], timeMS); err != nil {
		return p, fmt.Errorf("pruning audit log: recording the anchor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, p.Anchor.ID); err != nil {
		return p, fmt.Errorf("pruning audit log: deleting old events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events_text WHERE rowid <= ?`, p.Anchor.ID); err != nil {
		return p, fmt.Errorf("pruning audit log: deleting old events from the search index: %w", err)
	}
	detail, err := json.Marshal(pruneDetail{
		AnchorID:   p.Anchor.ID,
		AnchorHash: p.Anchor.Hash.String(),
		AnchorTime: p.Anchor.Time.Format(timeLayout),
		Before:     cutoff.Format(timeLayout),
		Events:     p.Events,
	})
	if err != nil {
		return p, fmt.Errorf("pruning audit log: %w", err)
	}
	ev := Event{
		Kind:   KindPruned,
		Actor:  ActorApp,
		Reason: fmt.Sprintf("pruned %d events up to %s", p.Events, p.Anchor.Time.Format(timeLayout)),
		Detail: detail,
	}
	recs, err := l.appendRows(ctx, tx, []*Event{&ev})
	if err != nil {
		return p, fmt.Errorf("pruning audit log: %w", err)
	}
	if _, err := tx.StmtContext(ctx, l.indexText).ExecContext(ctx); err != nil {
		return p, fmt.Errorf("pruning audit log: indexing for search: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return p, fmt.Errorf("pruning audit log: %w", err)
	}
	p.Record = recs[0]
	l.unindexed = 0
	l.committed(p.Record)
	l.logger.Info("audit: pruned old events", "events", p.Events, "before", cutoff.Format(time.DateOnly), "anchor", p.Anchor.ID)
	return p, nil
}
