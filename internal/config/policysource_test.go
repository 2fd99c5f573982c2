package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// policySamples sets each registry place of the policy (RegistryMap) to a
// valid value, as a policy.json fragment. A new policy field has no sample
// until one is added here, and TestEveryPolicyFieldThroughEverySource
// fails until then.
var policySamples = map[string]string{
	"version":            `1`,
	"approvedServers":    `["github", "azure-devops"]`,
	"allowCustomServers": `true`,
	"servers": `{"github": {"clientId": "Iv23liExample", "tenant": "contoso.onmicrosoft.com",
	  "params": {"toolsets": "repos,issues"}, "allowlist": {"github-repository": ["DEFRA/*", "DEFRA/ffc-*"]},
	  "lockAllowlist": true, "hiddenTools": ["merge_*"], "readOnly": true}}`,
	"hiddenTools":                 `["delete_*", "drop_*"]`,
	"maxApprovalTimeout":          `"10m"`,
	"aiAppWaits":                  `[{"match": "claude", "via": "bridge", "wait": "60s"}, {"match": "code", "wait": "none"}]`,
	"maxRetryWindow":              `"5m"`,
	"audit.retentionDays":         `400`,
	"audit.minRetentionDays":      `365`,
	"audit.maxRetentionDays":      `730`,
	"audit.exportEndpoint":        `"https://otel.example.org/v1/logs"`,
	"audit.exportHeaders":         `{"X-Org-Tenant": "contoso", "X-Source": "countersign"}`,
	"audit.exportKeychainHeaders": `{"Authorization": "siem-token", "X-Api-Key": "siem-api-key"}`,
	"audit.exportCAFile":          `"/etc/ssl/org-ca.pem"`,
	"audit.exportKinds":           `["call_decided", "policy_denied"]`,
	"audit.exportArguments":       `true`,
	"limits.callTimeoutMinutes":   `30`,
	"limits.maxRequestMB":         `16`,
	"limits.maxServerAnswerMB":    `2`,
	"limits.maxSessionsPerAIApp":  `8`,
}

// policyNeeds names, for a field that is only valid beside others, the
// fields its sample document sets with it (each to its own sample).
var policyNeeds = map[string][]string{
	"audit.exportHeaders":         {"audit.exportEndpoint"},
	"audit.exportKeychainHeaders": {"audit.exportEndpoint"},
	"audit.exportCAFile":          {"audit.exportEndpoint"},
	"audit.exportKinds":           {"audit.exportEndpoint"},
	"audit.exportArguments":       {"audit.exportEndpoint"},
}

// sampleDoc is a policy.json document with only the field at path set,
// and the fields it needs (policyNeeds).
func sampleDoc(t *testing.T, path string) map[string]any {
	t.Helper()
	return samplesDoc(t, append([]string{path}, policyNeeds[path]...))
}

// samplesDoc is a policy.json document with the fields at paths set to
// their samples.
func samplesDoc(t *testing.T, paths []string) map[string]any {
	t.Helper()
	doc := map[string]any{"version": json.Number("1")}
	for _, path := range paths {
		frag, ok := policySamples[path]
		if !ok {
			t.Fatalf("policy field %s has no sample in policySamples: add one (and its place in the ADMX template and the sample .mobileconfig)", path)
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(frag))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("sample %s: %v", path, err)
		}
		parts := strings.Split(path, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	return doc
}

// unsetFields lists the fields of structs inside v (through pointers, maps
// and slices) that are left at their zero value, so a sample that misses a
// nested field is caught.
func unsetFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return unsetFields(v.Elem(), path)
	case reflect.Map:
		var out []string
		for _, k := range v.MapKeys() {
			out = append(out, unsetFields(v.MapIndex(k), path+"."+k.String())...)
		}
		return out
	case reflect.Slice:
		var out []string
		if v.Len() == 0 {
			return []string{path}
		}
		out = append(out, unsetFields(v.Index(0), path+"[0]")...)
		return out
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if v.Field(i).IsZero() {
				out = append(out, path+"."+f.Name)
				continue
			}
			out = append(out, unsetFields(v.Field(i), path+"."+f.Name)...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// fieldValue finds the Go value of the policy field at a policy.json path.
func fieldValue(p *Policy, path string) reflect.Value {
	v := reflect.ValueOf(p).Elem()
	for _, name := range strings.Split(path, ".") {
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			if tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}

// regFromDoc writes a policy.json document into a registry key the way
// the documentation says an administrator (or Group Policy) does.
func regFromDoc(t *testing.T, doc map[string]any, typ reflect.Type) *regKey {
	t.Helper()
	k := &regKey{subs: map[string]*regKey{}}
	fields := map[string]reflect.Type{}
	for _, f := range structFields(typ) {
		fields[f.name] = f.typ
	}
	for _, name := range sortedKeys(doc) {
		ft, ok := fields[name]
		if !ok {
			t.Fatalf("sample field %s is not in %v", name, typ)
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		v := doc[name]
		switch shapeOf(ft) {
		case regScalar:
			switch x := v.(type) {
			case bool:
				n := uint64(0)
				if x {
					n = 1
				}
				k.values = append(k.values, regValue{name: name, typ: regDWORD, num: n})
			case json.Number:
				n, err := strconv.ParseUint(string(x), 10, 32)
				if err != nil {
					t.Fatal(err)
				}
				k.values = append(k.values, regValue{name: name, typ: regDWORD, num: n})
			case string:
				k.values = append(k.values, regValue{name: name, typ: regSZ, str: x})
			}
		case regList:
			sub := &regKey{}
			// Written out of order: the names give the order.
			items := v.([]any)
			for i := len(items) - 1; i >= 0; i-- {
				sub.values = append(sub.values, regValue{name: strconv.Itoa(i + 1), typ: regSZ, str: items[i].(string)})
			}
			k.subs[name] = sub
		case regNamed:
			sub := &regKey{}
			for kk, vv := range v.(map[string]any) {
				sub.values = append(sub.values, regValue{name: kk, typ: regSZ, str: vv.(string)})
			}
			k.subs[name] = sub
		case regGroup:
			k.subs[name] = regFromDoc(t, v.(map[string]any), ft)
		case regJSON:
			// As an ADMX multiText writes it: REG_MULTI_SZ, one line each.
			b, _ := json.MarshalIndent(v, "", "  ")
			k.values = append(k.values, regValue{name: name, typ: regMultiSZ, strs: strings.Split(string(b), "\n")})
		}
	}
	return k
}

// plistFromDoc writes a policy.json document as an XML property list.
func plistFromDoc(doc map[string]any) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`)
	var write func(v any)
	write = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			b.WriteString("<dict>\n")
			for _, k := range sortedKeys(x) {
				fmt.Fprintf(&b, "<key>%s</key>\n", html.EscapeString(k))
				write(x[k])
			}
			b.WriteString("</dict>\n")
		case []any:
			b.WriteString("<array>\n")
			for _, e := range x {
				write(e)
			}
			b.WriteString("</array>\n")
		case string:
			fmt.Fprintf(&b, "<string>%s</string>\n", html.EscapeString(x))
		case json.Number:
			fmt.Fprintf(&b, "<integer>%s</integer>\n", x)
		case bool:
			if x {
				b.WriteString("<true/>\n")
			} else {
				b.WriteString("<false/>\n")
			}
		}
	}
	write(doc)
	b.WriteString("</plist>\n")
	return b.Bytes()
}

// managedDir makes a managed preferences folder as macOS has it: owned by
// root (the tests run as root in CI; elsewhere the check that needs it is
// skipped), writable by no one else.
func managedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Managed Preferences")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("managed preferences must belong to root; run as root (CI does)")
	}
}

// TestEveryPolicyFieldThroughEverySource: each policy field, set alone,
// reads the same from policy.json, from the registry as documented, and
// from a managed preferences plist. The table comes from the Policy type
// (RegistryMap), so a new field without a sample or a mapping fails here.
func TestEveryPolicyFieldThroughEverySource(t *testing.T) {
	needRoot(t)
	places := RegistryMap()
	if len(places) < len(policySamples) {
		t.Fatalf("RegistryMap has %d places, fewer than the %d samples", len(places), len(policySamples))
	}
	for _, place := range places {
		t.Run(place.Field, func(t *testing.T) {
			doc := sampleDoc(t, place.Field)
			jsonDoc, _ := json.Marshal(doc)
			want, err := ParsePolicy(jsonDoc)
			if err != nil {
				t.Fatalf("sample does not parse: %v", err)
			}
			fv := fieldValue(want, place.Field)
			if !fv.IsValid() || fv.IsZero() {
				t.Fatalf("the sample leaves %s unset", place.Field)
			}
			if unset := unsetFields(fv, place.Field); len(unset) > 0 {
				t.Fatalf("the sample leaves nested fields unset: %v", unset)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "policy.json")
			if err := os.WriteFile(file, jsonDoc, 0o644); err != nil {
				t.Fatal(err)
			}
			md := managedDir(t)
			pl := filepath.Join(md, BundleID+".plist")
			if err := os.WriteFile(pl, plistFromDoc(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			reg := regFromDoc(t, doc, reflect.TypeFor[Policy]())
			sources := map[string]PolicySource{
				"policy.json": FilePolicySource(file),
				"registry":    {Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(reg) }},
				"plist":       PlistPolicySource(pl),
			}
			for _, name := range sortedKeys(sources) {
				got, err := LoadAdminPolicy([]PolicySource{sources[name]})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
				if got.Path() != sources[name].Where {
					t.Errorf("%s: Path() = %q", name, got.Path())
				}
			}
		})
	}
}

// TestRegistryMapIsDerivedFromThePolicy pins the mapping's rules on the
// fields there are today.
func TestRegistryMapIsDerivedFromThePolicy(t *testing.T) {
	got := map[string]RegistryPlace{}
	for _, p := range RegistryMap() {
		got[p.Field] = p
	}
	want := map[string]RegistryPlace{
		"maxApprovalTimeout":   {Key: "", Name: "maxApprovalTimeout", Field: "maxApprovalTimeout", Type: "REG_SZ"},
		"allowCustomServers":   {Key: "", Name: "allowCustomServers", Field: "allowCustomServers", Type: "REG_DWORD"},
		"approvedServers":      {Key: "", Name: "approvedServers", Field: "approvedServers", Type: "list"},
		"servers":              {Key: "", Name: "servers", Field: "servers", Type: "JSON"},
		"aiAppWaits":           {Key: "", Name: "aiAppWaits", Field: "aiAppWaits", Type: "JSON"},
		"audit.retentionDays":  {Key: "audit", Name: "retentionDays", Field: "audit.retentionDays", Type: "REG_DWORD"},
		"audit.exportEndpoint": {Key: "audit", Name: "exportEndpoint", Field: "audit.exportEndpoint", Type: "REG_SZ"},
	}
	for f, w := range want {
		if diff := cmp.Diff(w, got[f]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", f, diff)
		}
	}
}

func TestRegistryPolicyProblemsFailClosedWithTheReason(t *testing.T) {
	sz := func(name, s string) regValue { return regValue{name: name, typ: regSZ, str: s} }
	dw := func(name string, n uint64) regValue { return regValue{name: name, typ: regDWORD, num: n} }
	key := func(vs ...regValue) *regKey { return &regKey{values: vs, subs: map[string]*regKey{}} }
	with := func(k *regKey, name string, sub *regKey) *regKey { k.subs[name] = sub; return k }
	tests := []struct {
		name string
		key  *regKey
		want string
	}{
		{"an unknown value", key(sz("maxApprovalTimout", "5m")), `maxApprovalTimout: registry value maxApprovalTimout is not a Countersign policy`},
		{"an unknown key", with(key(), "servrs", key()), `servrs: registry key servrs is not a Countersign policy`},
		{"a duration as a number", key(dw("maxApprovalTimeout", 600)), `maxApprovalTimeout: registry value maxApprovalTimeout is REG_DWORD; want REG_SZ`},
		{"a bad duration", key(sz("maxApprovalTimeout", "ten minutes")), `maxApprovalTimeout: want a duration such as "5m"`},
		{"a switch of 2", key(dw("allowCustomServers", 2)), `allowCustomServers: registry value allowCustomServers must be a REG_DWORD 0 or 1`},
		{"a switch as text", key(sz("allowCustomServers", "1")), `must be a REG_DWORD 0 or 1`},
		{"a list as a value", key(sz("hiddenTools", "delete_*")), `hiddenTools: registry value hiddenTools should be a subkey of values named 1, 2, 3…, not a value`},
		{"a list item not numbered", with(key(), "hiddenTools", key(sz("first", "x"))), `hiddenTools: registry value hiddenTools\first: want values named 1, 2, 3…`},
		{"a list item as a number", with(key(), "hiddenTools", key(dw("1", 3))), `registry value hiddenTools\1 is REG_DWORD; want REG_SZ`},
		{"bad JSON", key(sz("servers", `{"github": `)), `servers: registry value servers is not valid JSON`},
		{"JSON as a number", key(dw("servers", 1)), `want JSON text in REG_SZ or REG_MULTI_SZ`},
		{"a group as a value", key(sz("audit", "x")), `audit: registry value audit should be a subkey, not a value`},
		{"an unknown field in a group", with(key(), "audit", key(dw("retention", 3))), `audit.retention: registry value audit\retention is not a Countersign policy`},
		{"a number out of range", with(key(), "audit", key(dw("retentionDays", 0))), `audit.retentionDays: 0 is outside 1 to`},
		{"a newer policy version", key(dw("version", 2)), `policy version 2 is not one this Countersign reads`},
		{"a value and a key for one field", with(key(sz("hiddenTools", "x")), "hiddenTools", key()), `should be a subkey`},
		{"an unknown field in JSON", key(sz("servers", `{"github": {"readonly": true}}`)), `servers.github.readonly: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := PolicySource{Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(tt.key) }}
			p, err := LoadAdminPolicy([]PolicySource{src})
			var pe *PolicyError
			if p != nil || !errors.As(err, &pe) || pe.Unreadable {
				t.Fatalf("got %v, %v; want an invalid-policy error", p, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), `the organisation policy at HKLM\Software\Policies\Countersign is invalid: `) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "line ") {
				t.Errorf("a registry policy has no lines, but the error names one: %v", err)
			}
		})
	}
}

func TestRegistryNamesIgnoreCaseAndEmptyKeyIsNoPolicy(t *testing.T) {
	k := &regKey{values: []regValue{{name: "MaxApprovalTimeout", typ: regSZ, str: "7m"}, {name: "VERSION", typ: regDWORD, num: 1}},
		subs: map[string]*regKey{"Audit": {values: []regValue{{name: "RetentionDays", typ: regDWORD, num: 30}}}, "ApprovedServers": {}}}
	p, err := LoadAdminPolicy([]PolicySource{{Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(k) }}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(*p.MaxApprovalTimeout) != 7*time.Minute || *p.Audit.RetentionDays != 30 {
		t.Fatalf("policy = %+v", p)
	}
	// An empty list subkey is an empty list: no catalog server approved.
	if p.ApprovedServers == nil || len(*p.ApprovedServers) != 0 || p.Approves("github") {
		t.Fatalf("approvedServers = %v, want an empty list", p.ApprovedServers)
	}
	// Group Policy with every policy "Not configured" leaves an empty key.
	for _, empty := range []*regKey{nil, {}} {
		p, err := LoadAdminPolicy([]PolicySource{{Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(empty) }}, FilePolicySource(filepath.Join(t.TempDir(), "none.json"))})
		if p != nil || err != nil {
			t.Fatalf("empty key: %v, %v; want no policy", p, err)
		}
	}
}

// TestDisabledExportPoliciesWithoutAnEndpoint: Group Policy can leave an
// empty subkey behind for a list or named-values policy set to Disabled.
// Without an export endpoint that must not make the whole policy invalid
// (fail closed): an empty export setting is the default, not a setting.
func TestDisabledExportPoliciesWithoutAnEndpoint(t *testing.T) {
	audit := &regKey{subs: map[string]*regKey{"exportKinds": {}, "exportHeaders": {}, "exportKeychainHeaders": {}},
		values: []regValue{{name: "exportArguments", typ: regDWORD, num: 0}, {name: "minRetentionDays", typ: regDWORD, num: 30}}}
	k := &regKey{subs: map[string]*regKey{"audit": audit}}
	p, err := LoadAdminPolicy([]PolicySource{{Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(k) }}})
	if err != nil {
		t.Fatalf("disabled export policies without an endpoint: %v", err)
	}
	if *p.Audit.MinRetentionDays != 30 || p.Audit.ExportEndpoint != "" || len(p.Audit.ExportKinds) != 0 || p.Audit.ExportArguments {
		t.Fatalf("audit policy = %+v", p.Audit)
	}
}

func TestTheFirstSourceWithAPolicyWins(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.json")
	os.WriteFile(file, []byte(`{"version": 1, "maxApprovalTimeout": "20m"}`), 0o644)
	md := managedDir(t)
	os.MkdirAll(filepath.Join(md, "alice"), 0o755)
	machine := filepath.Join(md, BundleID+".plist")
	user := filepath.Join(md, "alice", BundleID+".plist")
	sources := append(managedPreferencesSources(md, BundleID, "alice"), FilePolicySource(file))
	if got := []string{sources[0].Where, sources[1].Where, sources[2].Where}; !slices.Equal(got, []string{user, machine, file}) {
		t.Fatalf("sources = %v", got)
	}
	timeout := func() (string, string) {
		t.Helper()
		p, err := LoadAdminPolicy(sources)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(*p.MaxApprovalTimeout).String(), p.Path()
	}
	if d, from := timeout(); d != "20m0s" || from != file {
		t.Fatalf("only policy.json: %s from %s", d, from)
	}
	os.WriteFile(machine, plistFromDoc(map[string]any{"maxApprovalTimeout": "10m"}), 0o644)
	if d, from := timeout(); d != "10m0s" || from != machine {
		t.Fatalf("with the machine's managed preferences: %s from %s", d, from)
	}
	os.WriteFile(user, plistFromDoc(map[string]any{"maxApprovalTimeout": "5m"}), 0o644)
	if d, from := timeout(); d != "5m0s" || from != user {
		t.Fatalf("with the user's managed preferences: %s from %s", d, from)
	}
	// A broken higher source fails closed: it does not give way to a lower one.
	os.WriteFile(user, []byte("<plist><dict><key>maxApprovalTimeout</key></dict></plist>"), 0o644)
	if p, err := LoadAdminPolicy(sources); p != nil || err == nil || !strings.Contains(err.Error(), user) {
		t.Fatalf("broken user file: %v, %v; want its error", p, err)
	}
	// Profile bookkeeping keys alone are no policy.
	os.WriteFile(user, plistFromDoc(map[string]any{"PayloadUUID": "x", "PayloadType": BundleID}), 0o644)
	if _, from := timeout(); from != machine {
		t.Fatalf("a file with only Payload keys: policy from %s, want the machine's", from)
	}
}

// TestAPlaceAPersonCanWriteIsNeverRead: managed preferences that anyone but
// root could have written are refused (fail closed), the person's own
// preferences are not among the sources, and on Windows only HKLM is.
func TestAPlaceAPersonCanWriteIsNeverRead(t *testing.T) {
	needRoot(t)
	if !strings.HasPrefix(PolicyRegistryKey, `HKLM\Software\Policies\`) {
		t.Fatalf("PolicyRegistryKey = %s, want one under HKLM\\Software\\Policies", PolicyRegistryKey)
	}
	for _, s := range managedPreferencesSources(ManagedPreferencesDir, BundleID, "alice") {
		if !strings.HasPrefix(s.Where, ManagedPreferencesDir+"/") {
			t.Errorf("source %s is outside %s", s.Where, ManagedPreferencesDir)
		}
	}
	for _, u := range []string{"../alice", "a/b", "..", "."} {
		if got := managedPreferencesSources("/M", BundleID, u); len(got) != 1 {
			t.Errorf("user %q gave sources %v; want only the machine's", u, got)
		}
	}
	body := plistFromDoc(map[string]any{"maxApprovalTimeout": "5m"})
	tests := []struct {
		name  string
		setup func(dir, file string)
		want  string
	}{
		{"world-writable file", func(dir, file string) { os.Chmod(file, 0o666) }, "other users can change it (mode 0666)"},
		{"group-writable file", func(dir, file string) { os.Chmod(file, 0o664) }, "other users can change it (mode 0664)"},
		{"a file a person owns", func(dir, file string) { os.Chown(file, 1000, 1000) }, "does not belong to root"},
		{"a folder a person owns", func(dir, file string) { os.Chown(dir, 1000, 1000) }, "can be changed by users other than root"},
		{"a world-writable folder", func(dir, file string) { os.Chmod(dir, 0o777) }, "can be changed by users other than root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := managedDir(t)
			file := filepath.Join(dir, BundleID+".plist")
			os.WriteFile(file, body, 0o644)
			if p, err := LoadAdminPolicy([]PolicySource{PlistPolicySource(file)}); err != nil || p == nil {
				t.Fatalf("before: %v, %v", p, err)
			}
			tt.setup(dir, file)
			p, err := LoadAdminPolicy([]PolicySource{PlistPolicySource(file)})
			var pe *PolicyError
			if p != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want the policy refused: %s", p, err, tt.want)
			}
		})
	}
}

// TestManagedPreferencesFixtures reads plists as macOS writes them: binary
// (cfprefsd's format) and XML, made with Python's plistlib
// (testdata/managed/make.py).
func TestManagedPreferencesFixtures(t *testing.T) {
	needRoot(t)
	want, err := ParsePolicy([]byte(`{"version": 1, "approvedServers": ["github"], "allowCustomServers": false,
  "servers": {"github": {"readOnly": true, "allowlist": {"github-repository": ["DEFRA/*"]}, "params": {"toolsets": "repos"}}},
  "hiddenTools": ["delete_*"], "maxApprovalTimeout": "10m", "aiAppWaits": [{"match": "claude", "wait": "60s"}],
  "audit": {"minRetentionDays": 365, "exportEndpoint": "https://otel.example.org/v1/logs"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"binary.plist", "xml.plist"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "managed", name))
			if err != nil {
				t.Fatal(err)
			}
			dir := managedDir(t)
			file := filepath.Join(dir, BundleID+".plist")
			os.WriteFile(file, b, 0o644)
			got, err := LoadAdminPolicy([]PolicySource{PlistPolicySource(file)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWatcherFollowsTheRegistryAndManagedPreferences(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	settings := filepath.Join(dir, "settings.json")
	os.WriteFile(settings, []byte(`{"version": 2, "approvalTimeout": "30m"}`), 0o600)
	md := managedDir(t)
	pl := filepath.Join(md, BundleID+".plist")
	w := NewWatcher(WatcherOptions{SettingsPath: settings, PolicySources: []PolicySource{PlistPolicySource(pl), FilePolicySource(filepath.Join(dir, "none.json"))}, Interval: time.Millisecond})
	if e := w.Current(); e.Policy != nil || e.ApprovalTimeout != 30*time.Minute {
		t.Fatalf("no policy yet: %+v", e)
	}
	os.WriteFile(pl, plistFromDoc(map[string]any{"maxApprovalTimeout": "10m"}), 0o644)
	w.Reload()
	e := w.Current()
	if e.Policy == nil || e.Policy.Path() != pl || e.ApprovalTimeout != 10*time.Minute || e.ApprovalTimeoutWhy == "" {
		t.Fatalf("with managed preferences: policy %v, timeout %v (%q)", e.Policy, e.ApprovalTimeout, e.ApprovalTimeoutWhy)
	}
	os.WriteFile(pl, plistFromDoc(map[string]any{"maxApprovalTimeout": "1s"}), 0o644)
	w.Reload()
	if e := w.Current(); e.Err == nil || !strings.Contains(e.Err.Error(), pl) || !strings.Contains(e.Err.Error(), "maxApprovalTimeout") {
		t.Fatalf("an invalid managed policy must fail closed naming it: %v", e.Err)
	}
}

// FuzzPolicyFromPlist: whatever a managed preferences file holds, reading
// it gives a policy.json document the strict parser then judges, no policy,
// or a field error; never a panic.
func FuzzPolicyFromPlist(f *testing.F) {
	for _, name := range []string{"binary.plist", "xml.plist"} {
		b, err := os.ReadFile(filepath.Join("testdata", "managed", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(plistFromDoc(map[string]any{"maxApprovalTimeout": "10m", "PayloadUUID": "x"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := policyFromPlist(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("error %v is neither a field error nor no policy", err)
			}
			return
		}
		if !json.Valid(doc) {
			t.Fatalf("not JSON: %s", doc)
		}
		if p, err := ParsePolicy(doc); err == nil && p.Version != PolicyVersion {
			t.Fatalf("version %d", p.Version)
		}
	})
}
