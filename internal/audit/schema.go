package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// applicationID marks the SQLite file as a Countersign audit log ("CSAU"),
// so Open never adopts some other database by mistake.
const applicationID = 0x43534155

// ErrNewerSchema means the file was written by a newer Countersign whose
// schema this build does not know; it is left untouched.
var ErrNewerSchema = errors.New("audit log was written by a newer version of Countersign")

// ErrNotAuditLog means the file is a SQLite database but not an audit log.
var ErrNotAuditLog = errors.New("file is not a Countersign audit log")

// migrations[i] takes a file from schema version i (PRAGMA user_version) to
// i+1. They only ever append: a released step is never edited, and a new
// column comes with a new row format (see formatV1) so old rows still
// verify.
var migrations = []string{
	// Version 1.
	`
CREATE TABLE events (
	id               INTEGER PRIMARY KEY, -- previous id + 1, assigned by the writer
	time_ms          INTEGER NOT NULL,    -- Unix milliseconds, UTC; never decreases along the chain
	kind             TEXT    NOT NULL,
	server           TEXT    NOT NULL DEFAULT '',
	tool             TEXT    NOT NULL DEFAULT '',
	client           TEXT    NOT NULL DEFAULT '',
	call_id          TEXT    NOT NULL DEFAULT '',
	target           TEXT    NOT NULL DEFAULT '',
	outcome          TEXT    NOT NULL DEFAULT '',
	actor            TEXT    NOT NULL DEFAULT '',
	reason           TEXT    NOT NULL DEFAULT '',
	arguments        TEXT    NOT NULL DEFAULT '', -- compact JSON, redacted; '' when absent
	edited_arguments TEXT    NOT NULL DEFAULT '', -- compact JSON, redacted; '' when absent
	result_size      INTEGER NOT NULL DEFAULT 0,
	is_error         INTEGER NOT NULL DEFAULT 0 CHECK (is_error IN (0, 1)),
	redactions       TEXT    NOT NULL DEFAULT '', -- JSON object, keys sorted; '' when none
	detail           TEXT    NOT NULL DEFAULT '', -- compact JSON; '' when absent
	format           INTEGER NOT NULL,            -- canonical encoding the hash was computed with
	prev_hash        BLOB    NOT NULL CHECK (length(prev_hash) = 32),
	hash             BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE INDEX events_time    ON events (time_ms);
CREATE INDEX events_kind    ON events (kind);
CREATE INDEX events_server  ON events (server);
CREATE INDEX events_tool    ON events (tool);
CREATE INDEX events_client  ON events (client);
CREATE INDEX events_outcome ON events (outcome);
CREATE INDEX events_call    ON events (call_id);

-- Where the chain starts once older events were pruned: the id, hash and
-- time of the last pruned event. At most one row.
CREATE TABLE anchor (
	singleton    INTEGER PRIMARY KEY CHECK (singleton = 1),
	last_id      INTEGER NOT NULL,
	last_hash    BLOB    NOT NULL CHECK (length(last_hash) = 32),
	last_time_ms INTEGER NOT NULL
) STRICT;

-- Search index for Filter.Text: trigrams of tool, target and reason, kept
-- by the writer (a trigger would make FTS5 flush its buffer to disk on
-- every insert). It is derived data, not evidence: the hash does not cover
-- it, and every row it finds is checked again against the hashed columns.
CREATE VIRTUAL TABLE events_text USING fts5 (
	tool, target, reason,
	content = '', contentless_delete = 1, tokenize = 'trigram'
);

-- Guard rails against accidents, not against an attacker (who can drop
-- them): events are never updated, and only pruned ones are deleted.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
	SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN old.id > coalesce((SELECT last_id FROM anchor), 0) BEGIN
	SELECT RAISE(ABORT, 'audit events are append-only; only pruned events may be deleted');
END;
`,
	// Version 2.
	`
-- What Open found when it last checked the calls, so it reads each event
-- once: every call with an event at or below last_id has a closing record
-- (Open writes one for each call a run left half-done), and last_call is
-- the largest call id in the log, which the next run's ids continue
-- after. Derived data, not evidence: the hash chain does not cover it.
CREATE TABLE calls_checked (
	singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
	last_id   INTEGER NOT NULL,
	last_call INTEGER NOT NULL
) STRICT;
`,
}

// schemaVersion is the version this build writes.
var schemaVersion = len(migrations)

// checkSchema reports the file's schema version, refusing files that are
// not audit logs or are newer than this build.
func checkSchema(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var appID, version, objects int
	if err := q.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, fmt.Errorf("reading application id: %w", err)
	}
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&objects); err != nil {
		return 0, fmt.Errorf("reading schema: %w", err)
	}
	switch {
	case appID == 0 && version == 0 && objects == 0:
		return 0, nil // a new, empty file
	case appID != applicationID:
		return 0, ErrNotAuditLog
	case version > schemaVersion:
		return 0, fmt.Errorf("%w (schema version %d, this build knows up to %d)", ErrNewerSchema, version, schemaVersion)
	}
	return version, nil
}

// migrate brings the file to schemaVersion in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting migration: %w", err)
	}
	defer tx.Rollback()
	version, err := checkSchema(ctx, tx)
	if err != nil {
		return err
	}
	if version == schemaVersion {
		return tx.Rollback()
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v+1, err)
		}
	}
	// PRAGMA arguments cannot be bound; both values are constants of this file.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, applicationID)); err != nil {
		return fmt.Errorf("setting application id: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("setting schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migration: %w", err)
	}
	return nil
}
