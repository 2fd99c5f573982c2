package jsonrpc

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// This file is the single-pass scanner behind Parse. It walks the bytes
// once, validating JSON as encoding/json does (the same grammar, the same
// nesting limit, any byte from 0x20 up inside strings), and keeps views of
// Raw instead of copies. The decoder-based parser it replaced stays in the
// tests as its differential-fuzz reference (FuzzParseMatchesDecoder).

// errSyntax is wrapped by every error for input that is not JSON.
var errSyntax = errors.New("invalid JSON")

// maxDepth is encoding/json's nesting limit for one value.
const maxDepth = 10000

func syntaxAt(i int) error { return &syntaxError{offset: i} }

// syntaxError reports input that is not valid JSON.
type syntaxError struct {
	offset int // the byte at which the input stopped being JSON
}

func (e *syntaxError) Error() string {
	return "jsonrpc: invalid JSON at byte " + strconv.Itoa(e.offset)
}

func (e *syntaxError) Unwrap() error { return errSyntax }

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func ws(raw []byte, i int) int {
	for i < len(raw) && isWS(raw[i]) {
		i++
	}
	return i
}

// scanString returns the end of the string literal at raw[i] (a '"') and
// whether it is plain: no escapes and no byte above 0x7f, so its contents
// are its value.
func scanString(raw []byte, i int) (end int, plain bool, err error) {
	plain = true
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return j + 1, plain, nil
		case c == '\\':
			plain = false
			j++
			if j >= len(raw) {
				return 0, false, syntaxAt(j)
			}
			switch raw[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(raw) {
					return 0, false, syntaxAt(len(raw))
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(raw[k]) {
						return 0, false, syntaxAt(k)
					}
				}
				j += 4
			default:
				return 0, false, syntaxAt(j)
			}
		case c < 0x20:
			return 0, false, syntaxAt(j)
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return 0, false, syntaxAt(len(raw))
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber returns the end of the number at raw[i].
func scanNumber(raw []byte, i int) (int, error) {
	if raw[i] == '-' {
		i++
	}
	switch {
	case i >= len(raw):
		return 0, syntaxAt(i)
	case raw[i] == '0':
		i++
	case isDigit(raw[i]):
		for i < len(raw) && isDigit(raw[i]) {
			i++
		}
	default:
		return 0, syntaxAt(i)
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		if i >= len(raw) || !isDigit(raw[i]) {
			return 0, syntaxAt(i)
		}
		for i < len(raw) && isDigit(raw[i]) {
			i++
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if i >= len(raw) || !isDigit(raw[i]) {
			return 0, syntaxAt(i)
		}
		for i < len(raw) && isDigit(raw[i]) {
			i++
		}
	}
	return i, nil
}

func scanLiteral(raw []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(raw) || raw[i+k] != lit[k] {
			return 0, syntaxAt(i + k)
		}
	}
	return i + len(lit), nil
}

// scanScalar returns the end of the string, number or literal at raw[i].
func scanScalar(raw []byte, i int) (int, error) {
	switch c := raw[i]; {
	case c == '"':
		end, _, err := scanString(raw, i)
		return end, err
	case c == '-' || isDigit(c):
		return scanNumber(raw, i)
	case c == 't':
		return scanLiteral(raw, i, "true")
	case c == 'f':
		return scanLiteral(raw, i, "false")
	case c == 'n':
		return scanLiteral(raw, i, "null")
	}
	return 0, syntaxAt(i)
}

// keyColon scans an object member's name at raw[i] and the colon after it,
// and returns where its value starts.
func keyColon(raw []byte, i int) (int, error) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, syntaxAt(i)
	}
	end, _, err := scanString(raw, i)
	if err != nil {
		return 0, err
	}
	i = ws(raw, end)
	if i >= len(raw) || raw[i] != ':' {
		return 0, syntaxAt(i)
	}
	return ws(raw, i+1), nil
}

// skipValue returns the end of the JSON value at raw[i], which must not be
// whitespace. Values nest at most maxDepth deep, as in encoding/json.
func skipValue(raw []byte, i int) (int, error) {
	if i >= len(raw) {
		return 0, syntaxAt(i)
	}
	if c := raw[i]; c != '{' && c != '[' {
		return scanScalar(raw, i)
	}
	var stack []byte // the open containers: '{' or '['
	for {
		// A value starts at i.
		if i >= len(raw) {
			return 0, syntaxAt(i)
		}
		var err error
		if c := raw[i]; c == '{' || c == '[' {
			if stack = append(stack, c); len(stack) > maxDepth {
				return 0, syntaxAt(i)
			}
			i = ws(raw, i+1)
			if i < len(raw) && raw[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				stack = stack[:len(stack)-1]
				i++
			} else {
				if c == '{' {
					if i, err = keyColon(raw, i); err != nil {
						return 0, err
					}
				}
				continue
			}
		} else if i, err = scanScalar(raw, i); err != nil {
			return 0, err
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = ws(raw, i)
			if i >= len(raw) {
				return 0, syntaxAt(i)
			}
			open := stack[len(stack)-1]
			if raw[i] == open+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if raw[i] != ',' {
				return 0, syntaxAt(i)
			}
			i = ws(raw, i+1)
			if open == '{' {
				if i, err = keyColon(raw, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// decodeName returns the value of the string literal lit, as encoding/json
// decodes it (invalid UTF-8 becomes U+FFFD).
func decodeName(lit []byte, plain bool) (string, error) {
	if plain {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", err
	}
	return s, nil
}

// objectWalk reads the members of one JSON object in a single pass, for
// Parse and Members: name reads a member's name and refuses one seen
// before, value finds the bounds of its value without decoding it. Each
// caller checks what it needs between the two, so its errors come in the
// order the decoder-based reference gives them.
type objectWalk struct {
	raw     []byte
	i       int // where the walk reads next
	started bool
	seen    nameSet
}

// nameSet is the member names one object has shown so far, for finding a
// name given twice: the first few in place, more in a map.
type nameSet struct {
	inline [8]string
	n      int
	more   map[string]bool
}

// add notes name and reports whether it was new.
func (s *nameSet) add(name string) bool {
	if s.more[name] {
		return false
	}
	for _, k := range s.inline[:s.n] {
		if k == name {
			return false
		}
	}
	if s.n < len(s.inline) {
		s.inline[s.n] = name
		s.n++
		return true
	}
	if s.more == nil {
		s.more = map[string]bool{}
	}
	s.more[name] = true
	return true
}

// name reads the next member's name (after the separator before it). At
// the closing brace it returns ok false, once it has made sure that only
// white space follows the object.
func (w *objectWalk) name() (key string, ok bool, err error) {
	raw := w.raw
	i := ws(raw, w.i)
	switch {
	case !w.started && i < len(raw) && raw[i] == '}':
		return w.close(i + 1)
	case !w.started:
	case i >= len(raw):
		return "", false, syntaxAt(i)
	case raw[i] == '}':
		return w.close(i + 1)
	case raw[i] != ',':
		return "", false, syntaxAt(i)
	default:
		i = ws(raw, i+1)
	}
	w.started = true
	if i >= len(raw) || raw[i] != '"' {
		return "", false, syntaxAt(i)
	}
	end, plain, err := scanString(raw, i)
	if err != nil {
		return "", false, err
	}
	key, err = decodeName(raw[i:end], plain)
	if err != nil {
		return "", false, syntaxAt(i)
	}
	if !w.seen.add(key) {
		return "", false, &memberError{ErrDuplicateKey, key}
	}
	w.i = end
	return key, true, nil
}

// value reads the colon after the member just named and returns the
// bounds of its value.
func (w *objectWalk) value() (start, end int, err error) {
	raw := w.raw
	i := ws(raw, w.i)
	if i >= len(raw) || raw[i] != ':' {
		return 0, 0, syntaxAt(i)
	}
	start = ws(raw, i+1)
	if end, err = skipValue(raw, start); err != nil {
		return 0, 0, err
	}
	w.i = end
	return start, end, nil
}

func (w *objectWalk) close(i int) (string, bool, error) {
	if ws(w.raw, i) != len(w.raw) {
		return "", false, ErrTrailingBytes
	}
	return "", false, nil
}

// notObject is Parse's error for input whose first value is not an object:
// ErrNotObject when that value is complete JSON (what follows it is not
// looked at), a syntax error when it is not.
func notObject(raw []byte, i int) error {
	if raw[i] == '[' {
		return ErrNotObject
	}
	if _, err := scanScalar(raw, i); err != nil {
		return err
	}
	return ErrNotObject
}

// Parse reads one JSON-RPC message. It rejects duplicate top-level members,
// because two readers may disagree about which one counts, and members such
// as "ID" or "Method", which encoding/json (and so mcp-go) would take for
// "id" or "method" while Parse would not. ID, Params, Result and Error are
// views of raw: the message is read once and never copied.
func Parse(raw []byte) (Message, error) {
	m := Message{Raw: raw}
	i := ws(raw, 0)
	if i >= len(raw) {
		return m, syntaxAt(i)
	}
	if raw[i] != '{' {
		return m, notObject(raw, i)
	}
	var version, method []byte
	hasID := false
	w := objectWalk{raw: raw, i: i + 1}
	for {
		key, ok, err := w.name()
		if err != nil {
			return m, err
		}
		if !ok {
			break
		}
		if isCaseVariant(key) {
			return m, &memberError{ErrMemberCase, key}
		}
		start, end, err := w.value()
		if err != nil {
			return m, err
		}
		val := raw[start:end:end]
		switch key {
		case "jsonrpc":
			version = val
		case "id":
			hasID = true
			m.ID = val
			m.idSpan = span{start, end}
		case "method":
			method = val
		case "params":
			m.Params = val
			m.paramsSpan = span{start, end}
		case "result":
			m.Result = val
			m.resultSpan = span{start, end}
		case "error":
			m.Error = val
		}
	}
	if string(version) != `"2.0"` {
		return m, ErrVersion
	}
	if hasID && !validID(m.ID) && !(method == nil && string(m.ID) == "null") {
		return m, ErrBadID
	}
	switch {
	case method != nil:
		name, err := methodName(method)
		if err != nil || name == "" {
			return m, errMethodShape
		}
		m.Method = name
		if m.Result != nil || m.Error != nil {
			return m, ErrShape
		}
		if hasID {
			m.Kind = KindRequest
		} else {
			m.Kind = KindNotification
		}
	case hasID && (m.Result != nil) != (m.Error != nil):
		m.Kind = KindResponse
	default:
		return m, ErrShape
	}
	return m, nil
}

var errMethodShape = &memberError{ErrShape, ""}

// methodName decodes the method member, which must be a JSON string.
func methodName(lit []byte) (string, error) {
	if len(lit) < 2 || lit[0] != '"' {
		var s string
		err := json.Unmarshal(lit, &s) // null decodes to ""; anything else fails
		return s, err
	}
	_, plain, _ := scanString(lit, 0)
	return decodeName(lit, plain)
}

// memberError is an error about one top-level member, matching err.
type memberError struct {
	err  error
	name string
}

func (e *memberError) Error() string {
	if e.err == ErrShape {
		return ErrShape.Error() + ": method must be a non-empty string"
	}
	return e.err.Error() + ": " + strconv.Quote(e.name)
}

func (e *memberError) Unwrap() error { return e.err }
