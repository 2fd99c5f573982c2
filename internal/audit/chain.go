package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Hash is a SHA-256 digest in the chain.
type Hash [sha256.Size]byte

// String returns the hash as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// short returns the first 12 hex digits, for sentences.
func (h Hash) short() string { return h.String()[:12] }

// parseHash reads 64 hex digits.
func parseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q is not 64 hex digits", s)
	}
	return h, nil
}

// formatV1 is the only canonical encoding so far. Every row stores the
// format it was hashed with, so a later schema can add columns with a new
// format while old rows still verify.
const formatV1 = 1

// row is one events row exactly as stored: the hash covers these values,
// not a re-encoding of them.
type row struct {
	id              int64
	timeMS          int64
	kind            string
	server          string
	tool            string
	client          string
	callID          string
	target          string
	outcome         string
	actor           string
	reason          string
	arguments       string
	editedArguments string
	resultSize      int64
	isError         bool
	redactions      string
	detail          string
	format          int64
	prevHash        Hash
	hash            Hash
}

// canonical appends the v1 canonical encoding of r to b. Fields are written
// in this fixed order, integers as 8-byte big-endian two's complement, the
// flag as one byte 0 or 1, and every string as a 4-byte big-endian length
// followed by its UTF-8 bytes, so no two different rows encode alike:
//
//	"countersign-audit" format id time_ms kind server tool client call_id
//	target outcome actor reason arguments edited_arguments result_size
//	is_error redactions detail
func (r *row) canonical(b []byte) []byte {
	b = appendString(b, "countersign-audit")
	b = binary.BigEndian.AppendUint64(b, uint64(r.format))
	b = binary.BigEndian.AppendUint64(b, uint64(r.id))
	b = binary.BigEndian.AppendUint64(b, uint64(r.timeMS))
	for _, s := range [...]string{r.kind, r.server, r.tool, r.client, r.callID,
		r.target, r.outcome, r.actor, r.reason, r.arguments, r.editedArguments} {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.resultSize))
	if r.isError {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendString(b, r.redactions)
	b = appendString(b, r.detail)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// computeHash returns SHA-256(prev_hash || canonical row), reusing buf for
// the encoding; it returns buf for the next call.
func (r *row) computeHash(buf []byte) (Hash, []byte) {
	buf = append(buf[:0], r.prevHash[:]...)
	buf = r.canonical(buf)
	return sha256.Sum256(buf), buf
}

// newRow is the stored form of a normalized event written at id and t.
func newRow(id int64, t int64, ev *Event) row {
	return row{
		id:              id,
		timeMS:          t,
		kind:            string(ev.Kind),
		server:          ev.Server,
		tool:            ev.Tool,
		client:          ev.Client,
		callID:          ev.CallID,
		target:          ev.Target,
		outcome:         string(ev.Outcome),
		actor:           string(ev.Actor),
		reason:          ev.Reason,
		arguments:       string(ev.Arguments),
		editedArguments: string(ev.EditedArguments),
		resultSize:      ev.ResultSize,
		isError:         ev.IsError,
		redactions:      encodeRedactions(ev.Redactions),
		detail:          string(ev.Detail),
		format:          formatV1,
	}
}

// record turns a stored row into the caller's view of it.
func (r *row) record() (Record, error) {
	red, err := decodeRedactions(r.redactions)
	if err != nil {
		return Record{}, fmt.Errorf("event %d: %w", r.id, err)
	}
	return Record{
		ID:   r.id,
		Time: time.UnixMilli(r.timeMS).UTC(),
		Event: Event{
			Kind:            Kind(r.kind),
			Server:          r.server,
			Tool:            r.tool,
			Client:          r.client,
			CallID:          r.callID,
			Target:          r.target,
			Outcome:         Outcome(r.outcome),
			Actor:           Actor(r.actor),
			Reason:          r.reason,
			Arguments:       rawOrNil(r.arguments),
			EditedArguments: rawOrNil(r.editedArguments),
			ResultSize:      r.resultSize,
			IsError:         r.isError,
			Redactions:      red,
			Detail:          rawOrNil(r.detail),
		},
		PrevHash: r.prevHash,
		Hash:     r.hash,
	}, nil
}

func rawOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
