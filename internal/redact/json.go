package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ScanJSON returns the findings in every string of a JSON document (object
// keys included), each with the Path of its string. A string value under a
// secret-like key ("password", "client_secret", "api_key", "token"...) is
// also judged as a whole, so a random-looking value there is a finding even
// though the same value elsewhere would not be.
func ScanJSON(raw []byte) ([]Finding, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("scanning: %w", ErrInvalidJSON)
	}
	var out []Finding
	w := walker{raw: raw}
	w.visit = func(start, end int, cls keyClass) {
		s := decodeLiteral(raw[start:end], nil)
		if hits := scanValue(s, cls); len(hits) > 0 {
			out = append(out, findings(hits, s, w.path())...)
		}
	}
	w.number = func(start, end int) {
		s := string(raw[start:end])
		if hits := scanNumber(s); len(hits) > 0 {
			out = append(out, findings(hits, s, w.path())...)
		}
	}
	w.walk()
	return out, nil
}

// scanNumber scans a JSON number's literal: a card number written as a
// number is as much a card number as one in a string.
func scanNumber(lit string) []hit {
	if len(lit) < 13 {
		return nil // fewer digits than any card number
	}
	sc := scanner{s: lit, depth: maxBlobDepth}
	sc.run()
	return resolve(sc.hits)
}

// RedactJSON replaces every finding inside the strings of a JSON document
// with its [Marker] and returns the new document and how many findings of
// each kind it replaced. Only the string literals that held a finding
// change, and within them only the found bytes; when nothing is found the
// input slice itself is returned with a nil map. A number that is itself a
// secret (a card number) is replaced by its marker as a string, which
// keeps the document valid JSON though the value's type changes; no other
// number, literal or non-string value is altered. Invalid JSON yields a nil document
// and an error wrapping [ErrInvalidJSON], so a caller cannot pass it on by
// mistake.
func RedactJSON(raw []byte) ([]byte, map[string]int, error) {
	if len(raw) > math.MaxInt32 {
		return nil, nil, errors.New("redacting: document larger than 2 GiB")
	}
	if !json.Valid(raw) {
		return nil, nil, fmt.Errorf("redacting: %w", ErrInvalidJSON)
	}
	type edit struct {
		start, end int
		lit        []byte
	}
	var (
		edits  []edit
		counts map[string]int
	)
	w := walker{raw: raw}
	w.visit = func(start, end int, cls keyClass) {
		if lit, ok := redactLiteral(raw[start:end], cls, &counts); ok {
			edits = append(edits, edit{start, end, lit})
		}
	}
	w.number = func(start, end int) {
		hits := scanNumber(string(raw[start:end]))
		if len(hits) == 0 {
			return
		}
		if counts == nil {
			counts = make(map[string]int)
		}
		for _, h := range hits {
			counts[h.kind]++
		}
		edits = append(edits, edit{start, end, []byte(`"` + Marker(hits[0].kind) + `"`)})
	}
	w.walk()
	if len(edits) == 0 {
		return raw, nil, nil
	}
	size := len(raw)
	for _, e := range edits {
		size += len(e.lit) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	last := 0
	for _, e := range edits {
		out = append(out, raw[last:e.start]...)
		out = append(out, e.lit...)
		last = e.end
	}
	out = append(out, raw[last:]...)
	return out, counts, nil
}

// scanValue scans a decoded JSON string that sits under a key of class cls.
func scanValue(s string, cls keyClass) []hit {
	sc := scanner{s: s}
	sc.run()
	switch cls {
	case clsNone:
	case clsConnString:
		sc.connString()
	case clsPassword:
		if !isPlaceholder(s) && len(s) >= 3 {
			sc.add(0, len(s), KindPassword, true)
		}
	default:
		vs, ve, ok := 0, len(s), true
		if cls == clsAuth {
			vs, ve, ok = skipScheme(s, 0, len(s), true)
		}
		if ok && acceptValue(cls, s[vs:ve], true) {
			sc.add(vs, ve, cls.kind(), true)
		}
	}
	return resolve(sc.hits)
}

// connString finds random-looking values among the name=value; pairs of a
// connection string (the named ones, such as Password= and AccountKey=,
// are found by keyValue already).
func (sc *scanner) connString() {
	s := sc.s
	for start := 0; start < len(s); {
		end := strings.IndexByte(s[start:], ';')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if eqAt := strings.IndexByte(s[start:end], '='); eqAt >= 0 {
			vs := start + eqAt + 1
			for vs < end && s[vs] == ' ' {
				vs++
			}
			ve := end
			for ve > vs && s[ve-1] == ' ' {
				ve--
			}
			if v := s[vs:ve]; len(v) >= 16 && base64ish(v) && !isPlaceholder(v) && highEntropy(v) {
				sc.add(vs, ve, KindConnectionSecret, true)
			}
		}
		start = end + 1
	}
}

// redactLiteral replaces the findings in one JSON string literal (with its
// quotes), rescanning until the literal is clean. Escapes outside the found
// bytes are kept as they were. It reports false when nothing was found.
func redactLiteral(lit []byte, cls keyClass, counts *map[string]int) ([]byte, bool) {
	changed := false
	for range maxPasses {
		s := decodeLiteral(lit, nil)
		hits := scanValue(s, cls)
		if len(hits) == 0 {
			break
		}
		// Offsets are only needed, and only built, for a literal with
		// escapes that has something to replace.
		var offs []int32
		decodeLiteral(lit, &offs)
		if *counts == nil {
			*counts = make(map[string]int)
		}
		// raw maps a decoded offset to the literal; an escape that decodes
		// to several bytes is replaced whole.
		raw := func(k int, end bool) int {
			if offs == nil {
				return k + 1
			}
			if end && k > 0 {
				for k < len(s) && offs[k] == offs[k-1] {
					k++
				}
			}
			return int(offs[k])
		}
		out := make([]byte, 0, len(lit))
		last := 0
		for _, h := range hits {
			out = append(out, lit[last:max(last, raw(h.start, false))]...)
			out = append(out, Marker(h.kind)...)
			last = raw(h.end, true)
			(*counts)[h.kind]++
		}
		out = append(out, lit[last:]...)
		lit, changed = out, true
	}
	return lit, changed
}

// decodeLiteral decodes a JSON string literal, quotes included. When the
// literal holds escapes and offs is not nil, *offs receives for each decoded
// byte the offset in lit of the byte or escape it came from, plus a final
// entry for the closing quote; an escape-free literal leaves *offs nil
// (offset k+1). Lone surrogates decode to U+FFFD as encoding/json does.
func decodeLiteral(lit []byte, offs *[]int32) string {
	body := lit[1 : len(lit)-1]
	first := bytes.IndexByte(body, '\\')
	if first < 0 {
		return string(body)
	}
	out := make([]byte, 0, len(body))
	var o []int32
	if offs != nil {
		o = make([]int32, 0, len(body)+1)
	}
	mark := func(at, n int) {
		if offs != nil {
			for range n {
				o = append(o, int32(at))
			}
		}
	}
	out = append(out, body[:first]...)
	if offs != nil {
		for k := range first {
			o = append(o, int32(k+1))
		}
	}
	for i := first; i < len(body); {
		c := body[i]
		if c != '\\' {
			if offs == nil {
				// Copy up to the next escape in one go.
				n := bytes.IndexByte(body[i:], '\\')
				if n < 0 {
					n = len(body) - i
				}
				out = append(out, body[i:i+n]...)
				i += n
				continue
			}
			out = append(out, c)
			mark(i+1, 1)
			i++
			continue
		}
		at := i + 1
		switch e := body[i+1]; e {
		case 'u':
			r := rune(hex4(body[i+2 : i+6]))
			n := 6
			if utf16IsHigh(r) && i+12 <= len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				if lo := rune(hex4(body[i+8 : i+12])); utf16IsLow(lo) {
					r = (r-0xd800)<<10 + (lo - 0xdc00) + 0x10000
					n = 12
				}
			}
			if r >= 0xd800 && r <= 0xdfff {
				r = utf8.RuneError
			}
			before := len(out)
			out = utf8.AppendRune(out, r)
			mark(at, len(out)-before)
			i += n
		default:
			out = append(out, unescape(e))
			mark(at, 1)
			i += 2
		}
	}
	if offs != nil {
		o = append(o, int32(len(lit)-1))
		*offs = o
	}
	return string(out)
}

func utf16IsHigh(r rune) bool { return r >= 0xd800 && r < 0xdc00 }
func utf16IsLow(r rune) bool  { return r >= 0xdc00 && r < 0xe000 }

// unescape returns the byte a one-character JSON escape stands for.
func unescape(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

// hex4 parses four hex digits (already validated by json.Valid).
func hex4(b []byte) int {
	v := 0
	for _, c := range b {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			v |= int(c-'A') + 10
		}
	}
	return v
}

// walker visits every string literal of a valid JSON document, keeping the
// path to it.
type walker struct {
	raw   []byte
	i     int
	stack []step
	// visit is called with the literal's span in raw (quotes included) and
	// the class of the key it is the value of (clsNone for keys and array
	// elements).
	visit func(start, end int, cls keyClass)
	// number, if set, is called with the span of each number.
	number func(start, end int)
}

// step is one level of a path: an object member (key holds its literal) or
// an array element (key is nil).
type step struct {
	key   []byte
	index int
}

func (w *walker) walk() {
	w.value(clsNone)
}

func (w *walker) skipSpace() {
	for w.i < len(w.raw) && isSpace(w.raw[w.i]) {
		w.i++
	}
}

// skipString moves past the string literal at w.i: it finds the next quote
// and then checks the escapes before it, so each byte is searched once.
func (w *walker) skipString() {
	i := w.i + 1
	for {
		q := bytes.IndexByte(w.raw[i:], '"')
		if q < 0 {
			w.i = len(w.raw)
			return
		}
		end := i + q
		j := i
		for {
			bs := bytes.IndexByte(w.raw[j:end], '\\')
			if bs < 0 {
				w.i = end + 1
				return
			}
			if j += bs + 2; j > end {
				break // the quote at end was escaped: look for the next one
			}
		}
		i = j
	}
}

func (w *walker) value(cls keyClass) {
	w.skipSpace()
	if w.i >= len(w.raw) {
		return
	}
	switch w.raw[w.i] {
	case '{':
		w.i++
		w.stack = append(w.stack, step{})
		top := len(w.stack) - 1
		for {
			w.skipSpace()
			if w.i >= len(w.raw) {
				return
			}
			switch w.raw[w.i] {
			case '}':
				w.i++
				w.stack = w.stack[:top]
				return
			case ',':
				w.i++
				continue
			}
			ks := w.i
			w.skipString()
			key := w.raw[ks:w.i]
			w.stack[top] = step{key: key}
			w.visit(ks, w.i, clsNone)
			w.skipSpace()
			w.i++ // ':'
			w.value(classifyLiteral(key))
		}
	case '[':
		w.i++
		w.stack = append(w.stack, step{})
		top := len(w.stack) - 1
		for n := 0; ; {
			w.skipSpace()
			if w.i >= len(w.raw) {
				return
			}
			switch w.raw[w.i] {
			case ']':
				w.i++
				w.stack = w.stack[:top]
				return
			case ',':
				w.i++
				continue
			}
			w.stack[top] = step{index: n}
			n++
			w.value(clsNone)
		}
	case '"':
		start := w.i
		w.skipString()
		w.visit(start, w.i, cls)
	default:
		start := w.i
		for w.i < len(w.raw) && strings.IndexByte(",]} \t\r\n", w.raw[w.i]) < 0 {
			w.i++
		}
		if c := w.raw[start]; w.number != nil && (c == '-' || isDigit(c)) {
			w.number(start, w.i)
		}
	}
}

// classifyLiteral classifies an object key given as its literal.
func classifyLiteral(lit []byte) keyClass {
	if len(lit)-2 > maxKeyLen {
		return clsNone
	}
	return classifyKey(decodeLiteral(lit, nil))
}

// path renders the walker's position, such as "content[0].text" or
// `headers["x-api-key"]`. Keys are redacted too, so a path never carries a
// secret that was used as an object key.
func (w *walker) path() string {
	var b strings.Builder
	for _, st := range w.stack {
		if st.key == nil {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(st.index))
			b.WriteByte(']')
			continue
		}
		k, _ := Redact(decodeLiteral(st.key, nil))
		if plainKey(k) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
			continue
		}
		b.WriteByte('[')
		b.WriteString(strconv.Quote(k))
		b.WriteByte(']')
	}
	return b.String()
}

// plainKey reports whether a key can be written after a dot in a path.
func plainKey(k string) bool {
	if k == "" || isDigit(k[0]) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isWord(k[i]) && k[i] != '$' {
			return false
		}
	}
	return true
}
