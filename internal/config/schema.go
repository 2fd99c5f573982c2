package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// FieldError is a problem with one field of a settings or policy file. Path
// names the field as the person would find it ("servers[2].allowlist[0]");
// Line is its line in the file, or 0 when the error was not found in a file.
type FieldError struct {
	Line int
	Path string
	Msg  string
}

// Error reads "line 3: servers[0].url: …", leaving out what is unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// maxFileSize bounds what is read from a settings or policy file.
const maxFileSize = 1 << 20

// durationType is checked before the kind switch: Duration is an int64 in Go
// and a string such as "5m" in the file.
var durationType = reflect.TypeFor[Duration]()

// schema checks a JSON document against the shape of a Go type before it is
// decoded, so that every problem can name its field path and line: syntax
// errors, unknown or misspelt fields (encoding/json would match keys case-
// insensitively), duplicate keys (encoding/json would keep the last one
// silently), null values and wrong types. It records the line of every field
// it saw so that later semantic errors can name their line too.
type schema struct {
	b     []byte
	dec   *json.Decoder
	lines map[string]int
	// hint, when set, explains an unknown field (such as a newer field in an
	// older file version).
	hint func(path, key string) string
}

func newSchema(b []byte) *schema {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return &schema{b: b, dec: dec, lines: map[string]int{}}
}

// check walks the whole document as a value of type t.
func (s *schema) check(t reflect.Type, what string) error {
	if len(bytes.TrimSpace(s.b)) == 0 {
		return &FieldError{Line: 1, Msg: fmt.Sprintf("the %s file is empty", what)}
	}
	if err := s.value(t, ""); err != nil {
		return err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return &FieldError{Line: s.line(), Msg: fmt.Sprintf("data after the %s object", what)}
	}
	return nil
}

func (s *schema) line() int { return lineOf(s.b, s.dec.InputOffset()) }

// locate fills in the line of a semantic error from the field lines seen,
// falling back to the nearest enclosing field that appeared in the file.
func (s *schema) locate(err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 0 {
		return err
	}
	for p := fe.Path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			fe.Line = l
			break
		}
	}
	return err
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (s *schema) token() (json.Token, error) {
	tok, err := s.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, &FieldError{Line: lineOf(s.b, se.Offset), Msg: se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &FieldError{Line: lineOf(s.b, int64(len(s.b))), Msg: "the file ends too early (is it complete?)"}
	}
	return nil, &FieldError{Line: s.line(), Msg: err.Error()}
}

func (s *schema) value(t reflect.Type, path string) error {
	tok, err := s.token()
	if err != nil {
		return err
	}
	if path != "" {
		if _, ok := s.lines[path]; !ok {
			s.lines[path] = s.line()
		}
	}
	return s.valueFrom(tok, t, path)
}

func (s *schema) mismatch(path, want string, tok json.Token) error {
	return &FieldError{Line: s.line(), Path: path, Msg: fmt.Sprintf("want %s, got %s", want, describeToken(tok))}
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "true/false"
	case json.Number:
		return "a number"
	case string:
		return "text"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "a list"
	}
	return fmt.Sprintf("%v", tok)
}

func (s *schema) valueFrom(tok json.Token, t reflect.Type, path string) error {
	if t == durationType {
		str, ok := tok.(string)
		if !ok {
			return s.mismatch(path, `a duration such as "5m"`, tok)
		}
		if _, err := time.ParseDuration(str); err != nil {
			return &FieldError{Line: s.line(), Path: path, Msg: fmt.Sprintf(`want a duration such as "5m", got %q`, str)}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return s.valueFrom(tok, t.Elem(), path)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return s.mismatch(path, "text", tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return s.mismatch(path, "true or false", tok)
		}
	case reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			return s.mismatch(path, "a whole number", tok)
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return &FieldError{Line: s.line(), Path: path, Msg: fmt.Sprintf("want a whole number, got %s", n)}
		}
	case reflect.Slice:
		if tok != json.Delim('[') {
			return s.mismatch(path, "a list", tok)
		}
		for i := 0; s.dec.More(); i++ {
			if err := s.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := s.token()
		return err
	case reflect.Map:
		if tok != json.Delim('{') {
			return s.mismatch(path, "an object", tok)
		}
		return s.object(path, func(key string) (reflect.Type, bool) { return t.Elem(), true }, mapKeyPath)
	case reflect.Struct:
		if tok != json.Delim('{') {
			return s.mismatch(path, "an object", tok)
		}
		fields := jsonFields(t)
		return s.object(path, func(key string) (reflect.Type, bool) {
			ft, ok := fields[key]
			return ft, ok
		}, fieldPath)
	default:
		return fmt.Errorf("internal error: no schema rule for %v", t)
	}
	return nil
}

// object walks the members of an object whose '{' has been read.
func (s *schema) object(path string, field func(key string) (reflect.Type, bool), join func(path, key string) string) error {
	seen := map[string]bool{}
	for s.dec.More() {
		tok, err := s.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return &FieldError{Line: s.line(), Path: path, Msg: "want a field name"}
		}
		p := join(path, key)
		if seen[key] {
			return &FieldError{Line: s.line(), Path: p, Msg: "appears twice"}
		}
		seen[key] = true
		ft, ok := field(key)
		if !ok {
			msg := "unknown field"
			if s.hint != nil {
				if h := s.hint(path, key); h != "" {
					msg += " (" + h + ")"
				}
			}
			return &FieldError{Line: s.line(), Path: p, Msg: msg}
		}
		if err := s.value(ft, p); err != nil {
			return err
		}
	}
	_, err := s.token()
	return err
}

func fieldPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapKeyPath names a map member; keys that are not plain words are quoted.
func mapKeyPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return fieldPath(path, key)
	}
	return fmt.Sprintf("%s[%q]", path, key)
}

// jsonField is one field of a struct, by its exact JSON name.
type jsonField struct {
	name string
	typ  reflect.Type
}

// structFields lists the fields of struct type t that encoding/json reads,
// in declaration order. The schema check and the registry's policy map
// both walk the settings and policy types with it.
func structFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name, f.Type})
	}
	return out
}

// jsonFields maps the exact JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := structFields(t)
	m := make(map[string]reflect.Type, len(fields))
	for _, f := range fields {
		m[f.name] = f.typ
	}
	return m
}

func lineOf(b []byte, offset int64) int {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	if offset < 0 {
		offset = 0
	}
	return bytes.Count(b[:offset], []byte("\n")) + 1
}

// utf8BOM is what Windows tools such as Notepad and PowerShell 5 put at the
// start of a UTF-8 file; JSON does not allow it, so it is skipped.
var utf8BOM = []byte("\xef\xbb\xbf")

func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, utf8BOM) }

// decodeStrict checks b against the shape of *v, decodes it, and returns the
// schema so semantic errors can be given lines.
func decodeStrict(b []byte, v any, what string, hint func(path, key string) string) (*schema, error) {
	s := newSchema(b)
	s.hint = hint
	if err := s.check(reflect.TypeOf(v).Elem(), what); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		// The schema walk accepted it, so this is not expected; still name it.
		return nil, fmt.Errorf("decoding the %s file: %w", what, err)
	}
	return s, nil
}
