package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/gate"
)

// Everything a call carries came from an AI app or a server: text drawn from
// it goes through visible or oneLine first, so control and direction
// characters cannot hide or reorder what the person reads.

// visible returns s with invisible characters shown as ⟨U+XXXX⟩: control
// characters other than newline and tab, bidirectional overrides and
// isolates, zero-width characters, and invalid UTF-8 as ⟨?⟩.
func visible(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString("⟨?⟩")
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case hidden(r):
			fmt.Fprintf(&b, "⟨U+%04X⟩", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// hidden reports whether r would not show as itself on screen.
func hidden(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
		r == 0x061c, r == 0xfeff, r == 0x2028, r == 0x2029:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// oneLine makes s a single visible line of at most max runes, collapsing
// whitespace and ending with "…" when cut, at a word break if one is near.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(visible(s)), " ")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max < 2 {
		return "…"
	}
	all := []rune(s)
	r := all[:max-1]
	if r[len(r)-1] != ' ' && all[max-1] != ' ' {
		for i := len(r) - 1; i > len(r)*2/3; i-- {
			if r[i] == ' ' {
				r = r[:i]
				break
			}
		}
	}
	return strings.TrimSpace(string(r)) + "…"
}

// serverName is the name the person knows a call's server by.
func serverName(c gate.Call) string {
	if c.ServerName != "" {
		return oneLine(c.ServerName, 40)
	}
	return oneLine(c.Server, 40)
}

// clientName is the AI app that asked for the call.
func clientName(c gate.Call) string {
	if c.Client == "" {
		return "an unnamed AI app"
	}
	return oneLine(c.Client, 40)
}

// targetText is the repositories or projects a call touches.
func targetText(c gate.Call) string {
	switch len(c.Targets) {
	case 0:
		return "unknown"
	case 1:
		return oneLine(c.Targets[0], 60)
	}
	return fmt.Sprintf("%s and %d more", oneLine(c.Targets[0], 60), len(c.Targets)-1)
}

// Summary is a call in one plain line, built from the tool's title, its key
// argument and its target: "Create issue 'Fix login' in DEFRA/ffc-pay".
func Summary(c gate.Call) string {
	var b strings.Builder
	b.WriteString(action(c))
	if k := keyArgument(c.Arguments); k != "" {
		b.WriteString(" " + k)
	}
	if len(c.Targets) > 0 {
		b.WriteString(" in " + targetText(c))
	}
	return b.String()
}

// action is what the tool does, as a sentence-case phrase: the server's
// title for it when there is one, else its name made readable.
func action(c gate.Call) string {
	title := ""
	if c.Info != nil {
		title = c.Info.Title
	}
	if strings.TrimSpace(title) == "" {
		title = words(c.Tool)
	}
	title = oneLine(title, 60)
	if title == "" {
		return "Run an unnamed tool"
	}
	fs := strings.Fields(title)
	for i, w := range fs {
		if i > 0 && isCapitalised(w) {
			fs[i] = strings.ToLower(w)
		}
	}
	first, n := utf8.DecodeRuneInString(fs[0])
	fs[0] = string(unicode.ToUpper(first)) + fs[0][n:]
	return strings.Join(fs, " ")
}

// words splits a tool name such as create_issue, createIssue or
// get-file.contents into space-separated lower-case words.
func words(name string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range name {
		switch {
		case r == '_' || r == '-' || r == '.' || r == '/' || unicode.IsSpace(r):
			b.WriteRune(' ')
			prevLower = false
		case unicode.IsUpper(r):
			if prevLower {
				b.WriteRune(' ')
			}
			b.WriteRune(unicode.ToLower(r))
			prevLower = false
		default:
			b.WriteRune(r)
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// isCapitalised reports whether w is a capital followed only by lower-case
// letters ("Issue"), as opposed to an acronym or a name ("PR", "GitHub").
func isCapitalised(w string) bool {
	r, n := utf8.DecodeRuneInString(w)
	if !unicode.IsUpper(r) || n == len(w) {
		return false
	}
	for _, r := range w[n:] {
		if !unicode.IsLower(r) {
			return false
		}
	}
	return true
}

// Argument names that usually say what a call is about, best first.
var (
	textKeys = []string{"title", "name", "summary", "subject", "message", "query", "q", "path",
		"file_path", "filename", "branch", "ref", "key", "issue_key", "text", "body", "content",
		"description", "url", "command", "prompt"}
	numberKeys = []string{"issue_number", "pull_number", "pr_number", "number", "issue_id", "id"}
)

// keyArgument picks the argument that best says what a call is about:
// "'Fix login'" for a title, "#42" for an issue number; "" if none.
func keyArgument(args json.RawMessage) string {
	top := topLevel(args)
	if top == nil {
		return ""
	}
	for _, k := range textKeys {
		if v, ok := top[k]; ok {
			var s string
			if json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) != "" {
				line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
				return "'" + oneLine(line, 40) + "'"
			}
		}
	}
	for _, k := range numberKeys {
		if v, ok := top[k]; ok {
			var n json.Number
			d := json.NewDecoder(bytes.NewReader(v))
			d.UseNumber()
			if d.Decode(&n) == nil {
				if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
					return "#" + n.String()
				}
			}
		}
	}
	return ""
}

// topLevel returns the members of a JSON object, or nil if args is not one.
func topLevel(args json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil {
		return nil
	}
	return m
}

// field is one scalar argument: its path, such as "labels[0]" or
// "issue.title", and its value as text.
type field struct {
	Path, Value string
}

// Limits on how much of a call's arguments is laid out as fields; the
// pretty JSON always shows all of it.
const (
	maxFields     = 200
	maxFieldValue = 2000
	maxDepth      = 64
)

// fields flattens a call's arguments, in the order the AI app sent them,
// into at most maxFields fields, and says how many more there were. It
// returns ok false if args is not valid JSON.
func fields(args json.RawMessage) (out []field, more int, ok bool) {
	if len(bytes.TrimSpace(args)) == 0 {
		return nil, 0, true
	}
	if !json.Valid(args) {
		return nil, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	var walk func(path string, depth int) error
	add := func(path, value string) {
		if len(out) >= maxFields {
			more++
			return
		}
		if path == "" {
			path = "(value)"
		}
		out = append(out, field{Path: oneLine(path, 80), Value: clip(visible(value), maxFieldValue)})
	}
	walk = func(path string, depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			if depth >= maxDepth {
				// Too deep to lay out: skip the rest of this value.
				add(path, "(nested too deeply: see the JSON)")
				for open := 1; open > 0; {
					tok, err := dec.Token()
					if err != nil {
						return err
					}
					if d, ok := tok.(json.Delim); ok {
						if d == '{' || d == '[' {
							open++
						} else {
							open--
						}
					}
				}
				return nil
			}
			n := 0
			for dec.More() {
				child := ""
				if t == '{' {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key := kt.(string)
					child = key
					if path != "" {
						child = path + "." + key
					}
				} else {
					child = path + "[" + strconv.Itoa(n) + "]"
				}
				if err := walk(child, depth+1); err != nil {
					return err
				}
				n++
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return err
			}
			if n == 0 {
				if t == '{' {
					add(path, "{}")
				} else {
					add(path, "[]")
				}
			}
		case string:
			add(path, t)
		case json.Number:
			add(path, t.String())
		case bool:
			add(path, strconv.FormatBool(t))
		case nil:
			add(path, "null")
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return nil, 0, false
	}
	return out, more, true
}

func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// prettyJSON indents args for reading, keeping the bytes of every value
// (key order, number spelling) as the AI app sent them, with invisible
// characters made visible.
func prettyJSON(args json.RawMessage) string {
	if len(bytes.TrimSpace(args)) == 0 {
		return "(no arguments)"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, args, "", "  "); err != nil {
		return visible(string(args))
	}
	return visible(b.String())
}

// age is how long ago t was, briefly: "12s", "4m", "2h 5m".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return strconv.Itoa(h) + "h"
	}
	return fmt.Sprintf("%dh %dm", h, m)
}

// countdown is time left as a clock: "4:05", "1:02:03", "0:00".
func countdown(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int((d + time.Second - 1) / time.Second) // round up: never show 0:00 early
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// toolChangeSummary says in one sentence what a changed tool's definition
// diff (pins.Diff of its indented JSON: "- " removed, "+ " added and "  "
// unchanged lines) changed, so the diff itself can sit behind a toggle.
// Each changed line counts for the top-level field it is in, named in
// words.
func toolChangeSummary(diff string) string {
	names := map[string]string{
		"description": "its description", "title": "its title", "name": "its name",
		"inputSchema": "what it accepts", "outputSchema": "what it returns",
		"annotations": "its hints about what it does",
	}
	type line struct {
		op    byte
		key   string
		depth int
	}
	var lines []line
	top := -1 // the indent of the top-level fields: the least seen
	for _, l := range strings.Split(diff, "\n") {
		if len(l) < 2 || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") {
			continue
		}
		body := l[2:]
		trimmed := strings.TrimLeft(body, " \t")
		ln := line{op: l[0], depth: len(body) - len(trimmed)}
		if strings.HasPrefix(trimmed, `"`) {
			if end := strings.Index(trimmed[1:], `"`); end >= 0 && strings.HasPrefix(strings.TrimSpace(trimmed[end+2:]), ":") {
				ln.key = trimmed[1 : end+1]
			}
		}
		if ln.key != "" && (top < 0 || ln.depth < top) {
			top = ln.depth
		}
		lines = append(lines, ln)
	}
	var parts []string
	parent := ""
	for _, ln := range lines {
		if ln.key != "" && ln.depth == top {
			parent = ln.key
		}
		if ln.op != '-' && ln.op != '+' {
			continue
		}
		words, known := names[parent]
		switch {
		case parent == "":
			words = "its definition"
		case !known:
			words = "its " + parent
		}
		if !slices.Contains(parts, words) {
			parts = append(parts, words)
		}
	}
	switch len(parts) {
	case 0:
		return "The tool's definition changed."
	case 1:
		return "The tool changed " + parts[0] + "."
	}
	return "The tool changed " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1] + "."
}
