package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// hiddenSecrets lets the editor show a call's arguments with each secret
// replaced by a numbered mark ("[hidden github token #1]") and put the
// secrets back when the person approves, so editing other values never
// puts a secret on screen. A mark the person deletes takes its secret
// with it; a mark they move moves it.
type hiddenSecrets struct {
	text    string   // the arguments, indented, with numbered marks
	secrets []secret // by mark number, from 1
}

// secret is one hidden value: the decoded text it stands for, and whether
// it was a JSON number (a card number) rather than part of a string.
type secret struct {
	mark   string // "[hidden github token #1]"
	value  string
	number bool
}

// markPattern finds the marks maskSecrets leaves, "[hidden <kind>]".
var markPattern = regexp.MustCompile(`\[hidden [a-z0-9 .\-]+\]`)

// hideSecrets returns the arguments with their secrets replaced by numbered
// marks, or ok false when there is nothing to hide, or when the arguments
// cannot be hidden safely: they already hold text that looks like a mark,
// or the marks cannot be matched to the secrets one by one.
func hideSecrets(args json.RawMessage) (h hiddenSecrets, ok bool) {
	masked, found := maskSecrets(args)
	if !found || bytes.Contains(args, []byte(hiddenMark)) {
		return h, false
	}
	orig, err := tokens(args)
	if err != nil {
		return h, false
	}
	hid, err := tokens(masked)
	if err != nil || len(orig) != len(hid) {
		return h, false
	}
	for i := range orig {
		o, m := orig[i], hid[i]
		if o == m {
			continue
		}
		ms, isString := m.(string)
		if !isString {
			return h, false
		}
		switch o := o.(type) {
		case json.Number: // a card number written as a number
			if !markPattern.MatchString(ms) || markPattern.FindString(ms) != ms {
				return h, false
			}
			h.secrets = append(h.secrets, secret{value: o.String(), number: true})
		case string:
			values, fits := alignMarks(o, ms)
			if !fits {
				return h, false
			}
			for _, v := range values {
				h.secrets = append(h.secrets, secret{value: v})
			}
		default:
			return h, false
		}
	}
	// Number the marks in the indented text in document order, the order
	// the token walk found their secrets in.
	var p bytes.Buffer
	if json.Indent(&p, masked, "", "  ") != nil {
		return h, false
	}
	n := 0
	text := markPattern.ReplaceAllStringFunc(p.String(), func(m string) string {
		n++
		if n > len(h.secrets) {
			return m
		}
		numbered := fmt.Sprintf("%s #%d]", strings.TrimSuffix(m, "]"), n)
		h.secrets[n-1].mark = numbered
		return numbered
	})
	if n != len(h.secrets) {
		return hiddenSecrets{}, false
	}
	// A secret that also stands elsewhere in the arguments, where nothing
	// found it, would show there: marks would promise what they cannot keep.
	for _, s := range h.secrets {
		if strings.Contains(text, s.value) || strings.Contains(text, jsonEscape(s.value)) {
			return hiddenSecrets{}, false
		}
	}
	h.text = text
	return h, true
}

// tokens lists a JSON document's tokens in order, numbers kept as written.
func tokens(raw []byte) ([]json.Token, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var out []json.Token
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

// alignMarks finds, in the original string, the text each mark in masked
// stands for: masked is original with some spans replaced by marks, so the
// text between marks is found in order. It reports false when the pieces
// do not fit together again.
func alignMarks(original, masked string) ([]string, bool) {
	locs := markPattern.FindAllStringIndex(masked, -1)
	if len(locs) == 0 {
		return nil, false
	}
	var values []string
	lit := masked[:locs[0][0]]
	if !strings.HasPrefix(original, lit) {
		return nil, false
	}
	at := len(lit)
	for i, loc := range locs {
		var next string
		if i+1 < len(locs) {
			next = masked[loc[1]:locs[i+1][0]]
		} else {
			next = masked[loc[1]:]
		}
		var end int
		switch {
		case i+1 == len(locs):
			// The last mark runs to the text that ends the string.
			if !strings.HasSuffix(original[at:], next) {
				return nil, false
			}
			end = len(original) - len(next)
		case next == "":
			return nil, false // two marks side by side: no telling where one ends
		default:
			j := strings.Index(original[at:], next)
			if j < 0 {
				return nil, false
			}
			end = at + j
		}
		if end <= at {
			return nil, false
		}
		values = append(values, original[at:end])
		at = end + len(next)
	}
	// Put the string back together from its pieces: it must be the original.
	rebuilt := masked
	for i := len(locs) - 1; i >= 0; i-- {
		rebuilt = rebuilt[:locs[i][0]] + values[i] + rebuilt[locs[i][1]:]
	}
	if rebuilt != original {
		return nil, false
	}
	return values, true
}

// restore puts the secrets back into edited text in place of their marks.
// A mark that is a whole JSON string and stood for a number becomes that
// number again; every other mark becomes its secret, escaped for JSON.
func (h hiddenSecrets) restore(text string) string {
	for _, s := range h.secrets {
		if s.number {
			text = strings.ReplaceAll(text, `"`+s.mark+`"`, s.value)
		}
		text = strings.ReplaceAll(text, s.mark, jsonEscape(s.value))
	}
	return text
}

// jsonEscape is s as it stands inside a JSON string, escaped only where
// JSON requires it and the way JavaScript's JSON.stringify writes it (not
// with json.Marshal's HTML escapes), so a secret goes back as the AI app
// sent it.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// hide replaces each secret in a message (a schema problem may quote the
// value it judged) with its mark, so the status line never shows one.
func (h hiddenSecrets) hide(msg string) string {
	for _, s := range h.secrets {
		msg = strings.ReplaceAll(msg, s.value, s.mark)
		if q := jsonEscape(s.value); q != s.value {
			msg = strings.ReplaceAll(msg, q, s.mark)
		}
		quoted, _ := json.Marshal(s.value) // as Go code would quote it
		if q := string(quoted[1 : len(quoted)-1]); q != s.value {
			msg = strings.ReplaceAll(msg, q, s.mark)
		}
	}
	return msg
}
