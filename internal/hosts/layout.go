package hosts

import (
	"bytes"
	"fmt"

	"github.com/tailscale/hujson"
)

// This file edits hujson syntax trees so that everything around an edit keeps
// its bytes: a new member copies the indentation of its neighbours, a comment
// on the line of the previous last member stays on that line, a trailing comma
// stays a trailing comma, and removing a member is the exact inverse of adding
// it.

// extraPart is one run of whitespace or one comment inside an Extra.
type extraPart struct {
	start, end int
	comment    bool
}

// scanExtra splits whitespace-and-comments into parts. A line comment's part
// includes its terminating newline, as hujson's grammar has it.
func scanExtra(b []byte) []extraPart {
	var parts []extraPart
	for i := 0; i < len(b); {
		switch {
		case bytes.HasPrefix(b[i:], []byte("//")):
			j := bytes.IndexByte(b[i:], '\n')
			end := len(b)
			if j >= 0 {
				end = i + j + 1
			}
			parts = append(parts, extraPart{i, end, true})
			i = end
		case bytes.HasPrefix(b[i:], []byte("/*")):
			j := bytes.Index(b[i+2:], []byte("*/"))
			end := len(b)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			parts = append(parts, extraPart{i, end, true})
			i = end
		default:
			j := i
			for j < len(b) && !bytes.HasPrefix(b[j:], []byte("//")) && !bytes.HasPrefix(b[j:], []byte("/*")) {
				j++
			}
			parts = append(parts, extraPart{i, j, false})
			i = j
		}
	}
	return parts
}

// lineBreaks returns the offsets of the newlines in b that end a line: those
// in whitespace and those ending line comments, not those inside block
// comments.
func lineBreaks(b []byte) []int {
	var out []int
	for _, p := range scanExtra(b) {
		switch {
		case !p.comment:
			for i := p.start; i < p.end; i++ {
				if b[i] == '\n' {
					out = append(out, i)
				}
			}
		case bytes.HasPrefix(b[p.start:], []byte("//")) && b[p.end-1] == '\n':
			out = append(out, p.end-1)
		}
	}
	return out
}

// breakStart moves a split point at a '\n' back over a preceding '\r'.
func breakStart(b []byte, i int) int {
	if i > 0 && b[i-1] == '\r' {
		return i - 1
	}
	return i
}

// isBlank reports whether b is only whitespace.
func isBlank(b []byte) bool {
	return len(bytes.Trim(b, " \t\r\n")) == 0
}

// splitFirstLine splits b before its first line break: head is what stays on
// the current line (blank heads become empty), rest starts with the break.
// ok is false when b has no line break.
func splitFirstLine(b []byte) (head, rest []byte, ok bool) {
	br := lineBreaks(b)
	if len(br) == 0 {
		return b, nil, false
	}
	i := breakStart(b, br[0])
	head, rest = b[:i], b[i:]
	if isBlank(head) {
		head = nil
	}
	return head, rest, true
}

// trimLastLine drops b's final line break and the blank indentation after it,
// returning what remains (nil if that is blank).
func trimLastLine(b []byte) []byte {
	br := lineBreaks(b)
	if len(br) == 0 {
		if isBlank(b) {
			return nil
		}
		return b
	}
	last := br[len(br)-1]
	if !isBlank(b[last+1:]) {
		return b
	}
	body := b[:breakStart(b, last)]
	if isBlank(body) {
		return nil
	}
	return body
}

// tailIndent returns the blank indentation after b's last line break.
func tailIndent(b []byte) (string, bool) {
	br := lineBreaks(b)
	if len(br) == 0 {
		return "", false
	}
	t := b[br[len(br)-1]+1:]
	if len(bytes.Trim(t, " \t")) != 0 {
		return "", false
	}
	return string(t), true
}

// lineIndentAt returns the leading blanks of the line holding src[off].
func lineIndentAt(src []byte, off int) string {
	if off > len(src) {
		off = len(src)
	}
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	end := start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return string(src[start:end])
}

// detectUnit guesses the file's indentation unit from its first indented
// line, falling back to def.
func detectUnit(src []byte, def string) string {
	for _, line := range bytes.Split(src, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		switch line[0] {
		case '\t':
			return "\t"
		case ' ':
			n := len(line) - len(bytes.TrimLeft(line, " "))
			if n < len(line) && line[n] != '\r' {
				return string(bytes.Repeat([]byte(" "), min(n, 8)))
			}
		}
	}
	return def
}

// layout is the text style of one document.
type layout struct {
	nl      string // "\n" or "\r\n"
	unit    string // one level of indentation
	src     []byte // the text the tree was parsed from, for line indents
	oneLine bool   // a non-empty document written on a single line
	tight   bool   // ... without a space after its colons
}

// memberIndent is the indentation of the line a member's name is on.
func (l layout) memberIndent(m *hujson.ObjectMember) string {
	if ind, ok := tailIndent(m.Name.BeforeExtra); ok {
		return ind
	}
	return lineIndentAt(l.src, m.Name.StartOffset)
}

// multiline reports whether an object is laid out one member per line.
func multiline(obj *hujson.Object) bool {
	for i := range obj.Members {
		if len(lineBreaks(obj.Members[i].Name.BeforeExtra)) > 0 {
			return true
		}
	}
	return len(lineBreaks(obj.AfterExtra)) > 0
}

// dupError is a member name that appears twice in one object. Which one the
// host uses is not ours to guess, so the file is not edited.
type dupError struct {
	name string
	off  int // the second occurrence
}

func (e *dupError) Error() string { return fmt.Sprintf("%q appears twice", e.name) }

// findMember returns the index of the member called name, or -1.
func findMember(obj *hujson.Object, name string) (int, error) {
	at := -1
	for i := range obj.Members {
		if memberName(&obj.Members[i]) == name {
			if at >= 0 {
				return -1, &dupError{name, obj.Members[i].Name.StartOffset}
			}
			at = i
		}
	}
	return at, nil
}

func memberName(m *hujson.ObjectMember) string {
	lit, ok := m.Name.Value.(hujson.Literal)
	if !ok {
		return ""
	}
	return lit.String()
}

// valueFunc renders a member's value for a given member indentation.
type valueFunc func(style) (hujson.Value, error)

// insertMember inserts name: value into obj at index at (len = append). base
// is the indentation of the line holding the member whose value obj is. lead
// is comment text to put on the lines above the new member (it starts with a
// line break or a space and never ends with one); normally nil.
func (l layout) insertMember(obj *hujson.Object, at int, base, name string, value valueFunc, lead []byte) error {
	n := len(obj.Members)
	at = min(at, n)
	var m hujson.ObjectMember
	m.Name.Value = hujson.String(name)
	m.Value.BeforeExtra = hujson.Extra(" ")
	multi := true
	var st style

	switch {
	case n == 0 && l.oneLine && !hasComment(obj.AfterExtra):
		// {} in a one-line document stays on one line.
		multi = false
		st.tight = l.tight
		if st.tight {
			m.Value.BeforeExtra = nil
		}
		m.Name.BeforeExtra = hujson.Extra(lineAfter(lead, l.nl))

	case n == 0:
		// An empty object opens up: comments inside it stay, above the new
		// member.
		indent := base + l.unit
		body := trimLastLine(obj.AfterExtra)
		m.Name.BeforeExtra = hujson.Extra(string(body) + string(lead) + l.nl + indent)
		obj.AfterExtra = hujson.Extra(l.nl + base)
		st.indent = indent

	case !multiline(obj):
		// Copy the separator style: what follows a comma, and what
		// follows a colon.
		multi = false
		ref := &obj.Members[min(at, n-1)]
		sep := " "
		switch {
		case n >= 2 && isBlank(obj.Members[n-1].Name.BeforeExtra):
			sep = string(obj.Members[n-1].Name.BeforeExtra)
		case n == 1 && len(ref.Value.BeforeExtra) == 0:
			sep = ""
		}
		m.Name.BeforeExtra = hujson.Extra(sep + lineAfter(lead, l.nl))
		m.Value.BeforeExtra = nil
		if isBlank(ref.Value.BeforeExtra) {
			m.Value.BeforeExtra = append(hujson.Extra(nil), ref.Value.BeforeExtra...)
		}
		st.tight = len(m.Value.BeforeExtra) == 0

	case at < n:
		st.indent = l.memberIndent(&obj.Members[at])
		m.Name.BeforeExtra = hujson.Extra(string(lead) + l.nl + st.indent)

	default:
		last := &obj.Members[n-1]
		st.indent = l.memberIndent(last)
		// What follows the last member on its line (a comment) stays on
		// that line; the comma goes before it.
		head, rest, ok := splitFirstLine(obj.AfterExtra)
		if !ok {
			rest = []byte(l.nl + base)
		}
		m.Name.BeforeExtra = hujson.Extra(string(head) + string(lead) + l.nl + st.indent)
		obj.AfterExtra = hujson.Extra(rest)
	}
	st.multiline = multi
	v, err := value(st)
	if err != nil {
		return err
	}
	m.Value.Value = v.Value

	if at == n {
		// A trailing comma stays trailing.
		if n > 0 && obj.Members[n-1].Value.AfterExtra != nil {
			m.Value.AfterExtra = hujson.Extra{}
		}
		obj.Members = append(obj.Members, m)
		return nil
	}
	obj.Members = append(obj.Members[:at], append([]hujson.ObjectMember{m}, obj.Members[at:]...)...)
	return nil
}

// lineAfter returns lead followed by a line break, so a line comment in it
// cannot swallow what follows; "" for no lead.
func lineAfter(lead []byte, nl string) string {
	if len(lead) == 0 {
		return ""
	}
	return string(lead) + nl
}

func hasComment(b []byte) bool {
	for _, p := range scanExtra(b) {
		if p.comment {
			return true
		}
	}
	return false
}

// leadOf returns the comment lines above member m: its leading whitespace
// and comments without the final line break and indentation.
func leadOf(m *hujson.ObjectMember) []byte {
	if !hasComment(m.Name.BeforeExtra) {
		return nil
	}
	return trimLastLine(m.Name.BeforeExtra)
}

// removeMember removes member i from obj, keeping the object's trailing-comma
// style. With keepLead, comments above the member stay in the file (moved to
// the next member); otherwise they leave with it (see leadOf). Removing a
// member insertMember added gives back the exact text.
func removeMember(obj *hujson.Object, i int, keepLead bool) {
	n := len(obj.Members)
	m := obj.Members[i]
	var leftover []byte
	if keepLead {
		leftover = trimLastLine(m.Name.BeforeExtra)
	}
	if m.Value.AfterExtra != nil && hasComment(m.Value.AfterExtra) {
		leftover = append(append([]byte(nil), leftover...), m.Value.AfterExtra...)
	}
	switch {
	case i < n-1:
		next := &obj.Members[i+1]
		if leftover != nil {
			next.Name.BeforeExtra = hujson.Extra(string(leftover) + string(next.Name.BeforeExtra))
		}
	case n == 1:
		obj.AfterExtra = hujson.Extra(string(leftover) + string(obj.AfterExtra))
		if isBlank(obj.AfterExtra) {
			obj.AfterExtra = nil // {} again
		}
	default:
		prev := &obj.Members[i-1]
		trailing := m.Value.AfterExtra != nil
		after := string(leftover) + string(obj.AfterExtra)
		switch {
		case trailing && prev.Value.AfterExtra == nil:
			prev.Value.AfterExtra = hujson.Extra{}
		case !trailing && prev.Value.AfterExtra != nil:
			// prev becomes last: whatever sat before its comma moves
			// after it, and no trailing comma appears.
			after = string(prev.Value.AfterExtra) + after
			prev.Value.AfterExtra = nil
		}
		obj.AfterExtra = hujson.Extra(after)
	}
	obj.Members = append(obj.Members[:i], obj.Members[i+1:]...)
}
