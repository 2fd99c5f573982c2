package config

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// PolicyRegistryKey is where Group Policy and Intune put Countersign's
// policy. Only administrators can write below HKLM\Software\Policies; the
// same key under HKCU, which the person can write, is never read.
const PolicyRegistryKey = `HKLM\Software\Policies\Countersign`

// How the policy maps to the registry. It is derived from the Policy type,
// field by field, so a new policy field is mapped without a hand edit:
//
//   - text, durations ("10m"): a REG_SZ value named after the JSON field
//     ("maxApprovalTimeout");
//   - true/false: a REG_DWORD 0 or 1; whole numbers: a REG_DWORD;
//   - a list of text: a subkey named after the field holding REG_SZ values
//     named 1, 2, 3… in order (as Chrome and Edge do, and as an ADMX <list>
//     element writes them); a subkey with no values is an empty list;
//   - a map of text to text (params, headers): a subkey of REG_SZ values,
//     value name = key (an ADMX <list explicitValue="true">);
//   - a group of fields (audit): a subkey, its fields mapped the same way;
//   - anything more nested (servers, aiAppWaits): one value holding that
//     part of policy.json as JSON text, REG_SZ or REG_MULTI_SZ (its lines
//     are joined), as Chrome does for its dictionary policies.
//
// Value and subkey names are matched without regard to case, as Windows
// does. "version" may be left out (a REG_DWORD when present). A value or
// subkey that is not a policy field makes the policy invalid, as an
// unknown field in policy.json does.
type regShape int

const (
	regScalar regShape = iota // a REG_SZ or REG_DWORD value
	regList                   // a subkey of values named 1, 2, 3…
	regNamed                  // a subkey of name = text values
	regGroup                  // a subkey, its fields mapped alike
	regJSON                   // a value holding JSON text
)

// Registry value types, as Windows numbers them.
const (
	regSZ       = 1
	regExpandSZ = 2
	regBinary   = 3
	regDWORD    = 4
	regMultiSZ  = 7
	regQWORD    = 11
)

func (s regShape) String() string {
	return [...]string{"a value", "a subkey of values named 1, 2, 3…", "a subkey of named values", "a subkey", "a value holding JSON text"}[s]
}

// shapeOf says how a policy field of type t is held in the registry.
func shapeOf(t reflect.Type) regShape {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return regScalar
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int:
		return regScalar
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return regList
		}
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return regNamed
		}
	case reflect.Struct:
		return regGroup
	}
	return regJSON
}

// RegistryPlace is one registry place a policy field is set at.
type RegistryPlace struct {
	// Key is the key below PolicyRegistryKey ("" for the key itself).
	Key string
	// Name is the value's name; for a list or named values, the subkey's.
	Name string
	// Field is the field's path in policy.json ("audit.retentionDays").
	Field string
	// Type is what it holds: REG_SZ, REG_DWORD, "list" (values 1, 2, 3…),
	// "named" (name = text values) or "JSON" (REG_SZ or REG_MULTI_SZ).
	Type string
}

// RegistryMap lists where every policy field is set in the registry,
// derived from the Policy type; the documentation and the ADMX templates
// are checked against it.
func RegistryMap() []RegistryPlace {
	return registryPlaces(reflect.TypeFor[Policy](), "", "")
}

func registryPlaces(t reflect.Type, key, field string) []RegistryPlace {
	var out []RegistryPlace
	for _, f := range structFields(t) {
		ft := f.typ
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		p := RegistryPlace{Key: key, Name: f.name, Field: fieldPath(field, f.name)}
		switch shapeOf(ft) {
		case regScalar:
			p.Type = "REG_SZ"
			if ft.Kind() == reflect.Bool || ft.Kind() == reflect.Int {
				p.Type = "REG_DWORD"
			}
		case regList:
			p.Type = "list"
		case regNamed:
			p.Type = "named"
		case regJSON:
			p.Type = "JSON"
		case regGroup:
			sub := f.name
			if key != "" {
				sub = key + `\` + f.name
			}
			out = append(out, registryPlaces(ft, sub, p.Field)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// regKey is a registry key as read: its values and subkeys.
type regKey struct {
	values []regValue
	subs   map[string]*regKey // by the name as stored
}

// regValue is one registry value.
type regValue struct {
	name string
	typ  uint32
	str  string   // REG_SZ, REG_EXPAND_SZ
	strs []string // REG_MULTI_SZ
	num  uint64   // REG_DWORD, REG_QWORD
}

func (k *regKey) empty() bool { return len(k.values) == 0 && len(k.subs) == 0 }

// regTypeName names a registry value type as regedit does.
func regTypeName(t uint32) string {
	switch t {
	case regSZ:
		return "REG_SZ"
	case regExpandSZ:
		return "REG_EXPAND_SZ"
	case regBinary:
		return "REG_BINARY"
	case regDWORD:
		return "REG_DWORD"
	case regMultiSZ:
		return "REG_MULTI_SZ"
	case regQWORD:
		return "REG_QWORD"
	}
	return fmt.Sprintf("type %d", t)
}

// policyFromRegistry turns the policy key into a policy.json document. A
// key with nothing in it is no policy: that is what Group Policy leaves
// when every Countersign policy is "Not configured".
func policyFromRegistry(k *regKey) ([]byte, error) {
	if k == nil || k.empty() {
		return nil, fs.ErrNotExist
	}
	doc, err := regGroupDoc(k, reflect.TypeFor[Policy](), "", "")
	if err != nil {
		return nil, err
	}
	return withVersion(doc)
}

// regGroupDoc maps a key to the fields of struct type t. key is the key's
// path below the policy key, field the fields' path in policy.json.
func regGroupDoc(k *regKey, t reflect.Type, key, field string) (map[string]any, error) {
	fields := map[string]jsonField{}
	for _, f := range structFields(t) {
		fields[strings.ToLower(f.name)] = f
	}
	at := func(name string) string {
		if key == "" {
			return name
		}
		return key + `\` + name
	}
	doc := map[string]any{}
	for _, v := range k.values {
		f, ok := fields[strings.ToLower(v.name)]
		if !ok {
			return nil, fieldErr(fieldPath(field, v.name), `registry value %s is not a Countersign policy`, at(v.name))
		}
		path := fieldPath(field, f.name)
		shape := shapeOf(f.typ)
		if shape != regScalar && shape != regJSON {
			return nil, fieldErr(path, "registry value %s should be %s, not a value", at(v.name), shape)
		}
		x, err := regValueDoc(v, f.typ, shape, at(v.name), path)
		if err != nil {
			return nil, err
		}
		doc[f.name] = x
	}
	for _, name := range sortedKeys(k.subs) {
		sub := k.subs[name]
		f, ok := fields[strings.ToLower(name)]
		if !ok {
			return nil, fieldErr(fieldPath(field, name), `registry key %s is not a Countersign policy`, at(name))
		}
		path := fieldPath(field, f.name)
		if _, dup := doc[f.name]; dup {
			return nil, fieldErr(path, "is set twice: as a value and as key %s", at(name))
		}
		var x any
		var err error
		switch shape := shapeOf(f.typ); shape {
		case regList:
			x, err = regListDoc(sub, at(name), path)
		case regNamed:
			x, err = regNamedDoc(sub, at(name), path)
		case regGroup:
			t := f.typ
			if t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			x, err = regGroupDoc(sub, t, at(name), path)
		default:
			err = fieldErr(path, "should be %s, not registry key %s", shape, at(name))
		}
		if err != nil {
			return nil, err
		}
		doc[f.name] = x
	}
	return doc, nil
}

func regValueDoc(v regValue, t reflect.Type, shape regShape, at, path string) (any, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if shape == regJSON {
		var text string
		switch v.typ {
		case regSZ:
			text = v.str
		case regMultiSZ:
			text = strings.Join(v.strs, "\n")
		default:
			return nil, fieldErr(path, "registry value %s is %s; want JSON text in REG_SZ or REG_MULTI_SZ", at, regTypeName(v.typ))
		}
		if !json.Valid([]byte(text)) {
			return nil, fieldErr(path, "registry value %s is not valid JSON", at)
		}
		return json.RawMessage(text), nil
	}
	switch {
	case t.Kind() == reflect.Bool:
		if v.typ != regDWORD || v.num > 1 {
			return nil, fieldErr(path, "registry value %s must be a REG_DWORD 0 or 1", at)
		}
		return v.num == 1, nil
	case t.Kind() == reflect.Int:
		if v.typ != regDWORD {
			return nil, fieldErr(path, "registry value %s is %s; want REG_DWORD", at, regTypeName(v.typ))
		}
		return v.num, nil
	default:
		if v.typ != regSZ {
			return nil, fieldErr(path, "registry value %s is %s; want REG_SZ", at, regTypeName(v.typ))
		}
		return v.str, nil
	}
}

// regListDoc reads a list: values named 1, 2, 3…, in numeric order.
func regListDoc(k *regKey, at, path string) ([]string, error) {
	if len(k.subs) > 0 {
		return nil, fieldErr(path, "registry key %s holds a key %s; want only values named 1, 2, 3…", at, sortedKeys(k.subs)[0])
	}
	type item struct {
		n int
		s string
	}
	items := make([]item, 0, len(k.values))
	for _, v := range k.values {
		n, err := strconv.Atoi(v.name)
		if err != nil || n < 1 {
			return nil, fieldErr(path, "registry value %s\\%s: want values named 1, 2, 3…", at, v.name)
		}
		if v.typ != regSZ {
			return nil, fieldErr(path, "registry value %s\\%s is %s; want REG_SZ", at, v.name, regTypeName(v.typ))
		}
		items = append(items, item{n, v.str})
	}
	slices.SortFunc(items, func(a, b item) int { return a.n - b.n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.s
	}
	return out, nil
}

// regNamedDoc reads name = text values.
func regNamedDoc(k *regKey, at, path string) (map[string]string, error) {
	if len(k.subs) > 0 {
		return nil, fieldErr(path, "registry key %s holds a key %s; want only REG_SZ values", at, sortedKeys(k.subs)[0])
	}
	out := make(map[string]string, len(k.values))
	for _, v := range k.values {
		if v.typ != regSZ {
			return nil, fieldErr(mapKeyPath(path, v.name), "registry value %s\\%s is %s; want REG_SZ", at, v.name, regTypeName(v.typ))
		}
		if v.name == "" {
			return nil, fieldErr(path, "registry key %s has a default (unnamed) value; want named values", at)
		}
		out[v.name] = v.str
	}
	return out, nil
}
