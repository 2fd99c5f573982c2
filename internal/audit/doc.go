// Package audit is Countersign's append-only audit log: one SQLite row per
// event (a call submitted, decided, forwarded or answered, a policy denial,
// a sign-in, a settings change, the app starting or stopping), chained by
// hashes so that editing or deleting a row is evident, with the queries and
// exports the audit viewer needs.
//
// # Writing
//
// [Open] opens or creates the file (mode 0600, parent directories 0700)
// with the pure-Go modernc.org/sqlite driver, so it builds with
// CGO_ENABLED=0. [Log.Append] returns only once the event is durably
// written (WAL, synchronous=FULL); if it returns an error the caller must
// deny the call the event is about. One writer goroutine owns all writes
// and commits concurrent appends together, so the chain is computed in one
// place and parallel relay sessions share one disk sync.
//
// [Log.AppendAsync] queues an event for the writer's next group commit and
// returns at once, for records that need not be durable before the caller
// goes on (a call was forwarded, a call's result); Close writes what is
// queued, and a failure is logged and reported to the caller's callback.
//
// # Calls
//
// Events of one tool call share its call id. Call ids are whole numbers
// that continue across runs: [Log.LastCallID] is the largest one the log
// held when it was opened, and the next run's ids start after it. At Open
// the log records an end for every call the last run left half-done
// (waiting for a decision, approved, or sent without an answer): a
// decision or result with [OutcomeInterrupted], so every call in the log
// ends. The calls_checked table remembers how far that check read, so each
// Open reads only the last run's events.
//
// Arguments larger than [MaxArgumentBytes] are stored as an
// [OmittedArguments] object: their size, SHA-256 hash and beginning.
//
// Callers redact arguments before appending: the log never sees a token. It
// refuses JSON fields that are not JSON, makes text valid UTF-8 without NUL
// bytes, and stamps each event with its own clock (UTC, milliseconds),
// never earlier than the event before it.
//
// # The hash chain
//
// Every row stores prev_hash, the hash of the row before it (32 zero bytes
// for the first row), and hash = SHA-256(prev_hash || canonical row). The
// canonical row (format 1) is, in this order: the length-prefixed string
// "countersign-audit"; format, id, time_ms as 8-byte big-endian integers;
// kind, server, tool, client, call_id, target, outcome, actor, reason,
// arguments, edited_arguments as strings; result_size as an 8-byte integer;
// is_error as one byte 0 or 1; redactions and detail as strings. A string
// is a 4-byte big-endian byte length followed by its UTF-8 bytes; JSON
// columns are hashed exactly as stored (compact; "" when absent). Ids are
// consecutive. Each row records its format, so a later schema can add
// columns under a new format while older rows keep verifying.
//
// [Log.Verify] and [VerifyFile] walk the chain and name the first row that
// breaks it: content changed, prev_hash mismatch, events missing, out of
// order, or a prune anchor that does not match. A chain cannot reveal that
// its newest rows were removed, nor an attacker who rewrites every hash
// after an edit; [Report.Head], recorded elsewhere, covers both.
//
// # Retention
//
// Once a day, and at [Open], the log removes events written before the
// start of the UTC day RetentionDays before today (default 180). It removes
// a prefix of the chain, records the last removed row's id and hash as the
// anchor the chain now starts from, and appends an audit_pruned event that
// names the anchor, all in one transaction.
//
// # Reading
//
// [Log.Query] filters by server, tool, client, call id, kinds, outcome,
// time range and free text over tool, target and reason, newest first, with
// keyset paging by id. [Log.Export] streams a filter as CSV or JSONL with
// the hash columns; [CheckExport] checks a JSONL export.
//
// The schema is versioned with PRAGMA user_version and migrated forward at
// Open; a file from a newer build is refused ([ErrNewerSchema]).
package audit
