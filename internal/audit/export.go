package audit

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Format is an export format.
type Format int

// Export formats.
const (
	// FormatCSV is RFC 4180 CSV with a header row. A cell that a
	// spreadsheet would run as a formula (starting with = + - @ tab or CR)
	// gets a leading apostrophe, so the CSV is for reading, not checking.
	FormatCSV Format = iota + 1
	// FormatJSONL is one JSON object per line with every stored column;
	// CheckExport can check it.
	FormatJSONL
)

func (f Format) String() string {
	switch f {
	case FormatCSV:
		return "csv"
	case FormatJSONL:
		return "jsonl"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// exportColumns names the CSV columns and JSONL keys, in order.
var exportColumns = []string{"id", "time", "kind", "server", "tool", "client", "call_id", "target",
	"outcome", "actor", "reason", "arguments", "edited_arguments", "result_size", "is_error",
	"redactions", "detail", "format", "prev_hash", "hash"}

// exportRecord is one JSONL line. JSON columns are embedded as JSON (null
// when absent); time is RFC 3339 in UTC with milliseconds; hashes are hex.
type exportRecord struct {
	ID              int64           `json:"id"`
	Time            string          `json:"time"`
	Kind            string          `json:"kind"`
	Server          string          `json:"server"`
	Tool            string          `json:"tool"`
	Client          string          `json:"client"`
	CallID          string          `json:"call_id"`
	Target          string          `json:"target"`
	Outcome         string          `json:"outcome"`
	Actor           string          `json:"actor"`
	Reason          string          `json:"reason"`
	Arguments       json.RawMessage `json:"arguments"`
	EditedArguments json.RawMessage `json:"edited_arguments"`
	ResultSize      int64           `json:"result_size"`
	IsError         bool            `json:"is_error"`
	Redactions      json.RawMessage `json:"redactions"`
	Detail          json.RawMessage `json:"detail"`
	Format          int64           `json:"format"`
	PrevHash        string          `json:"prev_hash"`
	Hash            string          `json:"hash"`
}

// Export writes every event matching f, oldest first, to w in the given
// format, streaming from one read snapshot. It returns how many events it
// wrote. The export carries prev_hash and hash, so a JSONL export can be
// checked with CheckExport.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter, format Format) (int64, error) {
	if format != FormatCSV && format != FormatJSONL {
		return 0, fmt.Errorf("exporting audit log: unknown format %d", int(format))
	}
	terms, err := parseText(f.Text)
	if err != nil {
		return 0, err
	}
	if err := l.readable(); err != nil {
		return 0, err
	}
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("exporting audit log: %w", err)
	}
	defer tx.Rollback()
	p, err := planQuery(ctx, tx, f, terms, 0, false, l.textPlan)
	if err != nil {
		return 0, fmt.Errorf("exporting audit log: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var put func(*row) error
	var flush func() error
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(exportColumns); err != nil {
			return 0, fmt.Errorf("exporting audit log: %w", err)
		}
		put = func(r *row) error { return cw.Write(csvRecord(r)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false) // JSON values are written exactly as stored
		put = func(r *row) error { return enc.Encode(jsonRecord(r)) }
		flush = func() error { return nil }
	}
	var n int64
	err = p.each(ctx, tx, 0, func(r *row) (bool, error) {
		if err := put(r); err != nil {
			return false, fmt.Errorf("event %d: %w", r.id, err)
		}
		n++
		return true, nil
	})
	if err != nil {
		return n, fmt.Errorf("exporting audit log: %w", err)
	}
	if err := flush(); err != nil {
		return n, fmt.Errorf("exporting audit log: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("exporting audit log: %w", err)
	}
	return n, nil
}

func jsonRecord(r *row) exportRecord {
	return exportRecord{
		ID:              r.id,
		Time:            time.UnixMilli(r.timeMS).UTC().Format(timeLayout),
		Kind:            r.kind,
		Server:          r.server,
		Tool:            r.tool,
		Client:          r.client,
		CallID:          r.callID,
		Target:          r.target,
		Outcome:         r.outcome,
		Actor:           r.actor,
		Reason:          r.reason,
		Arguments:       rawOrNil(r.arguments),
		EditedArguments: rawOrNil(r.editedArguments),
		ResultSize:      r.resultSize,
		IsError:         r.isError,
		Redactions:      rawOrNil(r.redactions),
		Detail:          rawOrNil(r.detail),
		Format:          r.format,
		PrevHash:        r.prevHash.String(),
		Hash:            r.hash.String(),
	}
}

func csvRecord(r *row) []string {
	return []string{
		strconv.FormatInt(r.id, 10),
		time.UnixMilli(r.timeMS).UTC().Format(timeLayout),
		safeCell(r.kind), safeCell(r.server), safeCell(r.tool), safeCell(r.client),
		safeCell(r.callID), safeCell(r.target), safeCell(r.outcome), safeCell(r.actor),
		safeCell(r.reason), safeCell(r.arguments), safeCell(r.editedArguments),
		strconv.FormatInt(r.resultSize, 10), strconv.FormatBool(r.isError),
		safeCell(r.redactions), safeCell(r.detail), strconv.FormatInt(r.format, 10),
		r.prevHash.String(), r.hash.String(),
	}
}

// safeCell defuses a cell a spreadsheet would treat as a formula (OWASP's
// CSV injection advice): tool names, reasons and arguments come from AI
// apps and servers.
func safeCell(s string) string {
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}

// maxExportLine bounds one JSONL line in CheckExport.
const maxExportLine = 64 << 20

// CheckExport checks a JSONL export read from r: every line must be an
// event whose columns hash to its hash, ids must increase, and where two
// lines have consecutive ids the second must link to the first. A filtered
// export has gaps; only the links across them go unchecked. The error is
// for failures to read r; a line that is not an event is a break.
func CheckExport(r io.Reader) (Report, error) {
	var rep Report
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	var line, prevID int64
	var prevHash Hash
	var buf []byte
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rw, err := parseExportLine(b)
		if err != nil {
			rep.Break = &Break{ID: rw.id, Line: line, Problem: ProblemUnreadable, Detail: fmt.Sprintf("line %d is not an audit event: %v", line, err)}
			return rep, nil
		}
		fail := func(p Problem, format string, args ...any) (Report, error) {
			rep.Break = &Break{ID: rw.id, Line: line, Problem: p, Detail: fmt.Sprintf(format, args...)}
			return rep, nil
		}
		if rep.Events > 0 && rw.id <= prevID {
			return fail(ProblemOutOfOrder, "its id is not greater than the id %d on the line before", prevID)
		}
		if rep.Events > 0 && rw.id == prevID+1 && rw.prevHash != prevHash {
			return fail(ProblemLinkBroken, "its prev_hash %s is not the hash %s of event %d before it", rw.prevHash.short(), prevHash.short(), prevID)
		}
		if rw.format != formatV1 {
			return fail(ProblemUnreadable, "it has row format %d, which this build does not know", rw.format)
		}
		var sum Hash
		sum, buf = rw.computeHash(buf)
		if sum != rw.hash {
			return fail(ProblemContentChanged, "its content was changed after it was written (stored hash %s, content hashes to %s)", rw.hash.short(), sum.short())
		}
		if rep.Events == 0 {
			rep.FirstID = rw.id
		}
		rep.Events++
		rep.LastID = rw.id
		rep.Head = rw.hash
		prevID, prevHash = rw.id, rw.hash
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("checking audit export: %w", err)
	}
	return rep, nil
}

// parseExportLine reads one JSONL line back into the stored row.
func parseExportLine(b []byte) (row, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e exportRecord
	if err := dec.Decode(&e); err != nil {
		return row{}, err
	}
	r := row{
		id: e.ID, kind: e.Kind, server: e.Server, tool: e.Tool, client: e.Client,
		callID: e.CallID, target: e.Target, outcome: e.Outcome, actor: e.Actor, reason: e.Reason,
		arguments: rawString(e.Arguments), editedArguments: rawString(e.EditedArguments),
		resultSize: e.ResultSize, isError: e.IsError, redactions: rawString(e.Redactions),
		detail: rawString(e.Detail), format: e.Format,
	}
	if e.ID <= 0 {
		return r, errors.New("no positive id")
	}
	if dec.More() {
		return r, errors.New("text after the JSON object")
	}
	t, err := time.Parse(timeLayout, e.Time)
	if err != nil {
		return r, fmt.Errorf("time: %w", err)
	}
	r.timeMS = t.UnixMilli()
	if r.prevHash, err = parseHash(e.PrevHash); err != nil {
		return r, fmt.Errorf("prev_hash: %w", err)
	}
	if r.hash, err = parseHash(e.Hash); err != nil {
		return r, fmt.Errorf("hash: %w", err)
	}
	return r, nil
}

// rawString is the stored form of an exported JSON column: null means "".
func rawString(m json.RawMessage) string {
	if m == nil || bytes.Equal(m, []byte("null")) {
		return ""
	}
	return string(m)
}
