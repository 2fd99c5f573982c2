package plist

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// xmlDecoder walks an XML property list token by token.
type xmlDecoder struct {
	d *xml.Decoder
}

func decodeXML(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true // the DOCTYPE names Apple's DTD; nothing is fetched
	x := &xmlDecoder{d: d}
	start, err := x.nextStart()
	if err != nil {
		return nil, err
	}
	if start.Name.Local != "plist" {
		return nil, fmt.Errorf("line %d: want <plist>, got <%s>", x.line(), start.Name.Local)
	}
	first, err := x.nextStart()
	if err != nil {
		return nil, err
	}
	v, err := x.value(first, 0)
	if err != nil {
		return nil, err
	}
	if err := x.end("plist"); err != nil {
		return nil, err
	}
	// Only whitespace, comments and processing instructions may follow.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return v, nil
		}
		if err != nil {
			return nil, x.wrap(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("line %d: text after </plist>", x.line())
			}
		case xml.Comment, xml.ProcInst:
		default:
			return nil, fmt.Errorf("line %d: content after </plist>", x.line())
		}
	}
}

func (x *xmlDecoder) line() int {
	l, _ := x.d.InputPos()
	return l
}

func (x *xmlDecoder) wrap(err error) error {
	if err == io.EOF {
		return errors.New("the property list ends too early")
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("line %d: %s", se.Line, se.Msg)
	}
	return err
}

// nextStart skips the prolog, whitespace and comments to the next element.
func (x *xmlDecoder) nextStart() (xml.StartElement, error) {
	for {
		tok, err := x.d.Token()
		if err != nil {
			return xml.StartElement{}, x.wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("line %d: unexpected </%s>", x.line(), t.Name.Local)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, fmt.Errorf("line %d: unexpected text %q", x.line(), truncate(string(t)))
			}
		}
	}
}

// end reads to the end tag of name, allowing only whitespace and comments.
func (x *xmlDecoder) end(name string) error {
	for {
		tok, err := x.d.Token()
		if err != nil {
			return x.wrap(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != name {
				return fmt.Errorf("line %d: want </%s>, got </%s>", x.line(), name, t.Name.Local)
			}
			return nil
		case xml.StartElement:
			return fmt.Errorf("line %d: unexpected <%s> in <%s>", x.line(), t.Name.Local, name)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("line %d: unexpected text in <%s>", x.line(), name)
			}
		}
	}
}

// text reads the character data of a simple element up to its end tag.
func (x *xmlDecoder) text(name string) (string, error) {
	var b strings.Builder
	for {
		tok, err := x.d.Token()
		if err != nil {
			return "", x.wrap(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			if t.Name.Local != name {
				return "", fmt.Errorf("line %d: want </%s>, got </%s>", x.line(), name, t.Name.Local)
			}
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("line %d: unexpected <%s> in <%s>", x.line(), t.Name.Local, name)
		}
	}
}

func (x *xmlDecoder) value(start xml.StartElement, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested more than %d deep", x.line(), maxDepth)
	}
	name := start.Name.Local
	switch name {
	case "dict":
		return x.dict(depth)
	case "array":
		return x.array(depth)
	case "true", "false":
		if err := x.end(name); err != nil {
			return nil, err
		}
		return name == "true", nil
	}
	s, err := x.text(name)
	if err != nil {
		return nil, err
	}
	switch name {
	case "string":
		return s, nil
	case "integer":
		return parseInteger(strings.TrimSpace(s), x.line())
	case "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %q is not a real number", x.line(), truncate(s))
		}
		return f, nil
	case "data":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
		d, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("line %d: <data> is not base64", x.line())
		}
		return d, nil
	case "date":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is not a date", x.line(), truncate(s))
		}
		return t, nil
	}
	return nil, fmt.Errorf("line %d: <%s> is not a property list element", x.line(), name)
}

func parseInteger(s string, line int) (any, error) {
	if n, err := strconv.ParseInt(s, 0, 64); err == nil {
		return n, nil
	}
	if n, err := strconv.ParseUint(s, 0, 64); err == nil {
		return n, nil
	}
	return nil, fmt.Errorf("line %d: %q is not a whole number", line, truncate(s))
}

// child returns the next element inside the container <name>, or nil at
// its end tag; text other than white space is an error.
func (x *xmlDecoder) child(name string) (*xml.StartElement, error) {
	for {
		tok, err := x.d.Token()
		if err != nil {
			return nil, x.wrap(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != name {
				return nil, fmt.Errorf("line %d: want </%s>, got </%s>", x.line(), name, t.Name.Local)
			}
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("line %d: unexpected text in <%s>", x.line(), name)
			}
		case xml.StartElement:
			return &t, nil
		}
	}
}

func (x *xmlDecoder) dict(depth int) (map[string]any, error) {
	m := map[string]any{}
	for {
		t, err := x.child("dict")
		if err != nil {
			return nil, err
		}
		if t == nil {
			return m, nil
		}
		if t.Name.Local != "key" {
			return nil, fmt.Errorf("line %d: want <key> in <dict>, got <%s>", x.line(), t.Name.Local)
		}
		key, err := x.text("key")
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: key %q appears twice", x.line(), truncate(key))
		}
		vs, err := x.nextStart()
		if err != nil {
			return nil, err
		}
		if vs.Name.Local == "key" {
			return nil, fmt.Errorf("line %d: key %q has no value", x.line(), truncate(key))
		}
		v, err := x.value(vs, depth+1)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

func (x *xmlDecoder) array(depth int) ([]any, error) {
	a := []any{}
	for {
		t, err := x.child("array")
		if err != nil {
			return nil, err
		}
		if t == nil {
			return a, nil
		}
		v, err := x.value(*t, depth+1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
