// Package jsonrpc reads and edits JSON-RPC 2.0 messages without re-encoding
// them, so that a relay can pass every byte it does not act on through
// unchanged: unknown fields, _meta, and integers too large for a float64.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	var stack []*nameSet // one per open container; nil for an array
	// key reads the member name at raw[i] in o and the colon after it,
	// and returns where the value starts.
	key := func(o *nameSet, i int) (int, error) {
		if i >= len(raw) || raw[i] != '"' {
			return 0, syntaxAt(i)
		}
		end, plain, err := scanString(raw, i)
		if err != nil {
			return 0, err
		}
		name, err := decodeName(raw[i:end], plain)
		if err != nil {
			return 0, syntaxAt(i)
		}
		if !o.add(foldCase(name, plain)) {
			return 0, fmt.Errorf("%w: %q", ErrAmbiguous, name)
		}
		if i = ws(raw, end); i >= len(raw) || raw[i] != ':' {
			return 0, syntaxAt(i)
		}
		return ws(raw, i+1), nil
	}
	i := ws(raw, 0)
	for {
		// A value starts at i.
		if i >= len(raw) {
			return syntaxAt(i)
		}
		var err error
		switch c := raw[i]; c {
		case '{', '[':
			var o *nameSet
			if c == '{' {
				o = &nameSet{}
			}
			stack = append(stack, o)
			i = ws(raw, i+1)
			if i < len(raw) && raw[i] == c+2 {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if o != nil {
				if i, err = key(o, i); err != nil {
					return err
				}
			}
			continue
		default:
			if i, err = scanScalar(raw, i); err != nil {
				return err
			}
		}
		// A value ended at i.
		for {
			i = ws(raw, i)
			if len(stack) == 0 {
				if i != len(raw) {
					return errors.New("jsonrpc: not exactly one complete JSON value")
				}
				return nil
			}
			if i >= len(raw) {
				return syntaxAt(i)
			}
			o := stack[len(stack)-1]
			closer := byte(']')
			if o != nil {
				closer = '}'
			}
			if raw[i] == closer {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if raw[i] != ',' {
				return syntaxAt(i)
			}
			i = ws(raw, i+1)
			if o != nil {
				if i, err = key(o, i); err != nil {
					return err
				}
			}
			break
		}
	}
}

// foldCase is the name CheckUnambiguous compares: upper-cased, then
// lower-cased, which for ASCII is lower-casing.
func foldCase(name string, plain bool) string {
	if plain {
		return strings.ToLower(name)
	}
	return strings.ToLower(strings.ToUpper(name))
}
