// Package jsonrpc reads and edits JSON-RPC 2.0 messages without re-encoding
// them, so that a relay can pass every byte it does not act on through
// unchanged: unknown fields, _meta, and integers too large for a float64.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind says what a message is.
type Kind int

// The kinds of JSON-RPC message.
const (
	KindRequest Kind = iota + 1
	KindNotification
	KindResponse
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "invalid"
}

// span is the byte range of one top-level member's value in Raw.
type span struct{ start, end int }

// Message is one parsed JSON-RPC message. Raw holds the exact bytes it was
// parsed from; ID, Method, Params, Result and Error are views of Raw.
type Message struct {
	Raw    []byte
	Kind   Kind
	ID     json.RawMessage // nil for notifications
	Method string          // empty for responses
	Params json.RawMessage // nil when absent
	Result json.RawMessage // nil when absent
	Error  json.RawMessage // nil when absent

	idSpan     span
	paramsSpan span
	resultSpan span
}

// Errors returned by Parse.
var (
	ErrNotObject     = errors.New("jsonrpc: message is not a JSON object")
	ErrVersion       = errors.New(`jsonrpc: "jsonrpc" member is not "2.0"`)
	ErrDuplicateKey  = errors.New("jsonrpc: duplicate top-level member")
	ErrMemberCase    = errors.New("jsonrpc: member name differs from a JSON-RPC member only in case")
	ErrBadID         = errors.New("jsonrpc: id must be a string or a number")
	ErrShape         = errors.New("jsonrpc: not a request, notification or response")
	ErrTrailingBytes = errors.New("jsonrpc: data after the message")
)

// members are the top-level names Parse acts on.
var members = [...]string{"jsonrpc", "id", "method", "params", "result", "error"}

// isCaseVariant reports whether key is not one of members but matches one
// under the Unicode case folding encoding/json uses for field names.
func isCaseVariant(key string) bool {
	for _, name := range members {
		if foldsTo(key, name) {
			return true
		}
	}
	return false
}

// validID reports whether raw is a JSON string or number.
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return false
}

// SplitBatch returns the elements of a JSON array of messages, or the single
// message itself when raw is not an array. isBatch says which it was.
func SplitBatch(raw []byte) (msgs [][]byte, isBatch bool, err error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return [][]byte{raw}, false, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, true, fmt.Errorf("jsonrpc: batch: %w", err)
	}
	if len(elems) == 0 {
		return nil, true, errors.New("jsonrpc: empty batch")
	}
	msgs = make([][]byte, len(elems))
	for i, e := range elems {
		msgs[i] = e
	}
	return msgs, true, nil
}

// WithID returns a copy of m's bytes with the id value replaced by id. Every
// other byte is kept as it was.
func (m Message) WithID(id json.RawMessage) []byte {
	if m.ID == nil {
		return m.Raw
	}
	out := make([]byte, 0, len(m.Raw)-len(m.ID)+len(id))
	out = append(out, m.Raw[:m.idSpan.start]...)
	out = append(out, id...)
	out = append(out, m.Raw[m.idSpan.end:]...)
	return out
}

// WithParams returns a copy of m's bytes with the params value replaced.
// m must have params.
func (m Message) WithParams(params json.RawMessage) []byte {
	if m.Params == nil {
		return m.Raw
	}
	out := make([]byte, 0, len(m.Raw)-len(m.Params)+len(params))
	out = append(out, m.Raw[:m.paramsSpan.start]...)
	out = append(out, params...)
	out = append(out, m.Raw[m.paramsSpan.end:]...)
	return out
}

// WithIDResult returns a copy of a response's bytes with the id and the
// result replaced; a nil argument keeps that value. Every other byte is kept.
func (m Message) WithIDResult(id, result json.RawMessage) []byte {
	type edit struct {
		at  span
		val []byte
	}
	var edits []edit
	if id != nil && m.ID != nil {
		edits = append(edits, edit{m.idSpan, id})
	}
	if result != nil && m.Result != nil {
		edits = append(edits, edit{m.resultSpan, result})
	}
	if len(edits) == 2 && edits[1].at.start < edits[0].at.start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	out := make([]byte, 0, len(m.Raw)+len(id)+len(result))
	pos := 0
	for _, e := range edits {
		out = append(out, m.Raw[pos:e.at.start]...)
		out = append(out, e.val...)
		pos = e.at.end
	}
	return append(out, m.Raw[pos:]...)
}

// Response builds a success response with the given id and result.
func Response(id json.RawMessage, result any) ([]byte, error) {
	res, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
	}{"2.0", id, res})
}

// Standard JSON-RPC error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeConnectionClosed is the MCP SDKs' code for a lost connection.
	CodeConnectionClosed = -32000
)

// ErrorResponse builds an error response. A nil id, or one that is not
// valid JSON, becomes JSON null.
func ErrorResponse(id json.RawMessage, code int, message string) []byte {
	if id == nil || !json.Valid(id) {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message}})
	return b
}

// Notification builds a notification with the given method and params.
func Notification(method string, params any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params"`
	}{"2.0", method, p})
}

// ErrAmbiguous is returned by CheckUnambiguous.
var ErrAmbiguous = errors.New("jsonrpc: object has a member name twice, or two names that differ only in case")

// CheckUnambiguous rejects JSON in which any object, at any depth, names a
// member twice or has two names equal but for case. Readers disagree about
// such objects (JavaScript takes the last exact match, Go also matches case
// variants), so what a person reviews might not be what a server runs.
func CheckUnambiguous(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool // folded names seen
		atKey  bool            // the next token in this object is a name
	}
	var stack []*frame
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 || values != 1 {
				return errors.New("jsonrpc: not exactly one complete JSON value")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("jsonrpc: %w", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if key, ok := tok.(string); ok {
				folded := strings.ToLower(strings.ToUpper(key))
				if top.keys[folded] {
					return fmt.Errorf("%w: %q", ErrAmbiguous, key)
				}
				top.keys[folded] = true
				top.atKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, atKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a name next.
		if len(stack) == 0 {
			values++
		} else if stack[len(stack)-1].object {
			stack[len(stack)-1].atKey = true
		}
	}
}
