package config

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The administrative templates, in the shape of Microsoft's ADMX schema
// (PolicyDefinitions, schemaVersion 1.0) as far as Countersign's templates
// use it.
const admxNS = "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"

type admx struct {
	XMLName       xml.Name `xml:"policyDefinitions"`
	Revision      string   `xml:"revision,attr"`
	SchemaVersion string   `xml:"schemaVersion,attr"`
	Target        struct {
		Prefix    string `xml:"prefix,attr"`
		Namespace string `xml:"namespace,attr"`
	} `xml:"policyNamespaces>target"`
	Resources struct {
		MinRequiredRevision string `xml:"minRequiredRevision,attr"`
	} `xml:"resources"`
	Supported []struct {
		Name        string `xml:"name,attr"`
		DisplayName string `xml:"displayName,attr"`
	} `xml:"supportedOn>definitions>definition"`
	Categories []struct {
		Name        string `xml:"name,attr"`
		DisplayName string `xml:"displayName,attr"`
		Parent      struct {
			Ref string `xml:"ref,attr"`
		} `xml:"parentCategory"`
	} `xml:"categories>category"`
	Policies []admxPolicy `xml:"policies>policy"`
}

type admxPolicy struct {
	Name         string `xml:"name,attr"`
	Class        string `xml:"class,attr"`
	DisplayName  string `xml:"displayName,attr"`
	ExplainText  string `xml:"explainText,attr"`
	Presentation string `xml:"presentation,attr"`
	Key          string `xml:"key,attr"`
	ValueName    string `xml:"valueName,attr"`
	Parent       struct {
		Ref string `xml:"ref,attr"`
	} `xml:"parentCategory"`
	SupportedOn struct {
		Ref string `xml:"ref,attr"`
	} `xml:"supportedOn"`
	Enabled  *admxDecimal `xml:"enabledValue>decimal"`
	Disabled *admxDecimal `xml:"disabledValue>decimal"`
	Elements struct {
		Any []admxElement `xml:",any"`
	} `xml:"elements"`
}

type admxDecimal struct {
	Value string `xml:"value,attr"`
}

type admxElement struct {
	XMLName       xml.Name
	ID            string  `xml:"id,attr"`
	Key           string  `xml:"key,attr"`
	ValueName     string  `xml:"valueName,attr"`
	ExplicitValue string  `xml:"explicitValue,attr"`
	ValuePrefix   *string `xml:"valuePrefix,attr"`
	MinValue      string  `xml:"minValue,attr"`
	MaxValue      string  `xml:"maxValue,attr"`
	StoreAsText   string  `xml:"storeAsText,attr"`
	Expandable    string  `xml:"expandable,attr"`
}

type adml struct {
	XMLName       xml.Name `xml:"policyDefinitionResources"`
	Revision      string   `xml:"revision,attr"`
	SchemaVersion string   `xml:"schemaVersion,attr"`
	DisplayName   string   `xml:"displayName"`
	Strings       []struct {
		ID   string `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"resources>stringTable>string"`
	Presentations []struct {
		ID       string `xml:"id,attr"`
		Controls []struct {
			XMLName xml.Name
			RefID   string `xml:"refId,attr"`
		} `xml:",any"`
	} `xml:"resources>presentationTable>presentation"`
}

// readXML decodes a template strictly: well-formed, in the PolicyDefinitions
// namespace.
func readXML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s is not well-formed XML of the expected shape: %v", path, err)
	}
	// Every element must be in the PolicyDefinitions namespace.
	d = xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space != admxNS {
			t.Errorf("%s: <%s> is in namespace %q, want %s", path, se.Name.Local, se.Name.Space, admxNS)
		}
	}
	if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="utf-8"?>`)) {
		t.Errorf("%s does not start with the XML declaration Group Policy's templates use", path)
	}
}

// admxRef strips $(string.X) / $(presentation.X) to X, or fails.
func admxRef(t *testing.T, kind, s string) string {
	t.Helper()
	id, ok := strings.CutPrefix(s, "$("+kind+".")
	if !ok || !strings.HasSuffix(id, ")") {
		t.Errorf("%q is not a $(%s.…) reference", s, kind)
		return ""
	}
	return strings.TrimSuffix(id, ")")
}

const policyRegPath = `Software\Policies\Countersign`

// admxWrites is what one element of a policy writes when enabled, as a
// registry place.
func admxWrites(t *testing.T, p admxPolicy) []RegistryPlace {
	t.Helper()
	keyOf := func(k string) string {
		if k == "" {
			k = p.Key
		}
		if k != policyRegPath && !strings.HasPrefix(k, policyRegPath+`\`) {
			t.Errorf("policy %s writes to %s, outside HKLM\\%s", p.Name, k, policyRegPath)
		}
		return strings.TrimPrefix(strings.TrimPrefix(k, policyRegPath), `\`)
	}
	var out []RegistryPlace
	if p.ValueName != "" {
		if p.Enabled == nil || p.Disabled == nil || p.Enabled.Value != "1" || p.Disabled.Value != "0" {
			t.Errorf("policy %s sets %s directly: want enabledValue 1 and disabledValue 0 (a REG_DWORD switch)", p.Name, p.ValueName)
		}
		out = append(out, RegistryPlace{Key: keyOf(""), Name: p.ValueName, Type: "REG_DWORD"})
	}
	for _, e := range p.Elements.Any {
		var place RegistryPlace
		switch e.XMLName.Local {
		case "text":
			if e.Expandable == "true" {
				t.Errorf("%s: expandable text writes REG_EXPAND_SZ, which Countersign refuses", e.ID)
			}
			place = RegistryPlace{Key: keyOf(e.Key), Name: e.ValueName, Type: "REG_SZ"}
		case "decimal":
			if e.StoreAsText == "true" {
				t.Errorf("%s: storeAsText writes REG_SZ; Countersign reads numbers as REG_DWORD", e.ID)
			}
			place = RegistryPlace{Key: keyOf(e.Key), Name: e.ValueName, Type: "REG_DWORD"}
		case "multiText":
			place = RegistryPlace{Key: keyOf(e.Key), Name: e.ValueName, Type: "JSON"}
		case "list":
			// A list writes into its own key: Name is that key's last part.
			k := keyOf(e.Key)
			dir, name := "", k
			if i := strings.LastIndex(k, `\`); i >= 0 {
				dir, name = k[:i], k[i+1:]
			}
			typ := "list"
			if e.ExplicitValue == "true" {
				typ = "named"
			} else if e.ValuePrefix == nil || *e.ValuePrefix != "" {
				// Without valuePrefix="" Group Policy names each value
				// after its data, not 1, 2, 3…
				t.Errorf("list %s: want valuePrefix=\"\" so its values are named 1, 2, 3…", e.ID)
			}
			place = RegistryPlace{Key: dir, Name: name, Type: typ}
		default:
			t.Errorf("policy %s: element <%s> is not one Countersign's mapping reads", p.Name, e.XMLName.Local)
			continue
		}
		out = append(out, place)
	}
	return out
}

// TestAdministrativeTemplatesCoverEveryPolicyField: the ADMX and ADML are
// well-formed and consistent, every policy is a machine policy under
// HKLM\Software\Policies\Countersign, and together they set every place of
// RegistryMap (a new policy field fails here until the templates have it).
// Enabling each policy with a sample value writes what Countersign then
// reads as that field.
func TestAdministrativeTemplatesCoverEveryPolicyField(t *testing.T) {
	dir := filepath.Join("..", "..", "packaging", "windows", "policy")
	var x admx
	readXML(t, filepath.Join(dir, "Countersign.admx"), &x)
	var l adml
	readXML(t, filepath.Join(dir, "en-US", "Countersign.adml"), &l)

	if x.Revision == "" || x.SchemaVersion != "1.0" || l.SchemaVersion != "1.0" || l.Revision == "" {
		t.Errorf("revision/schemaVersion: admx %q/%q, adml %q/%q", x.Revision, x.SchemaVersion, l.Revision, l.SchemaVersion)
	}
	if x.Target.Prefix == "" || x.Target.Namespace == "" || x.Resources.MinRequiredRevision == "" {
		t.Errorf("policyNamespaces target %+v, resources %+v", x.Target, x.Resources)
	}
	strs := map[string]string{}
	for _, s := range l.Strings {
		if _, dup := strs[s.ID]; dup {
			t.Errorf("ADML string %s is defined twice", s.ID)
		}
		strs[s.ID] = s.Text
	}
	str := func(ref string) {
		t.Helper()
		if id := admxRef(t, "string", ref); id != "" && strings.TrimSpace(strs[id]) == "" {
			t.Errorf("ADML has no string %s", id)
		}
	}
	presentations := map[string]map[string]string{} // id → refId → control
	for _, p := range l.Presentations {
		m := map[string]string{}
		for _, c := range p.Controls {
			if c.RefID != "" {
				m[c.RefID] = c.XMLName.Local
			}
		}
		presentations[p.ID] = m
	}
	categories := map[string]bool{}
	for _, c := range x.Categories {
		categories[c.Name] = true
		str(c.DisplayName)
	}
	for _, c := range x.Categories {
		if c.Parent.Ref != "" && !categories[c.Parent.Ref] {
			t.Errorf("category %s: parent %s is not defined", c.Name, c.Parent.Ref)
		}
	}
	supported := map[string]bool{}
	for _, s := range x.Supported {
		supported[s.Name] = true
		str(s.DisplayName)
	}
	controlFor := map[string]string{"text": "textBox", "decimal": "decimalTextBox", "multiText": "multiTextBox", "list": "listBox"}

	written := map[RegistryPlace]string{} // place → policy
	decimals := map[RegistryPlace]admxElement{}
	names := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range x.Policies {
		if names[p.Name] {
			t.Errorf("policy %s is defined twice", p.Name)
		}
		names[p.Name] = true
		if p.Class != "Machine" {
			t.Errorf("policy %s has class %q: only Machine policies (HKLM) are read", p.Name, p.Class)
		}
		if !categories[p.Parent.Ref] || !supported[p.SupportedOn.Ref] {
			t.Errorf("policy %s: category %q / supportedOn %q not defined", p.Name, p.Parent.Ref, p.SupportedOn.Ref)
		}
		str(p.DisplayName)
		str(p.ExplainText)
		if len(p.Elements.Any) > 0 {
			pres := presentations[admxRef(t, "presentation", p.Presentation)]
			for _, e := range p.Elements.Any {
				if ids[e.ID] {
					t.Errorf("element id %s is used twice", e.ID)
				}
				ids[e.ID] = true
				if got := pres[e.ID]; got != controlFor[e.XMLName.Local] {
					t.Errorf("policy %s element %s (<%s>): presentation control %q, want <%s refId=%q>", p.Name, e.ID, e.XMLName.Local, got, controlFor[e.XMLName.Local], e.ID)
				}
				if e.XMLName.Local == "decimal" {
					k := e.Key
					if k == "" {
						k = p.Key
					}
					k = strings.TrimPrefix(strings.TrimPrefix(k, policyRegPath), `\`)
					decimals[RegistryPlace{Key: k, Name: e.ValueName, Type: "REG_DWORD"}] = e
				}
			}
		}
		for _, w := range admxWrites(t, p) {
			if other, dup := written[w]; dup {
				t.Errorf("%s\\%s is written by both %s and %s", w.Key, w.Name, other, p.Name)
			}
			written[w] = p.Name
		}
	}

	// Every place Countersign reads is set by a policy, and no policy
	// writes a place Countersign does not read. "version" is implied.
	for _, place := range RegistryMap() {
		if place.Field == "version" {
			continue
		}
		key := RegistryPlace{Key: place.Key, Name: place.Name, Type: place.Type}
		policyName, ok := written[key]
		if !ok {
			t.Errorf("no ADMX policy sets %s (registry %s\\%s, %s): add one to packaging/windows/policy", place.Field, place.Key, place.Name, place.Type)
			continue
		}
		delete(written, key)
		// A number box allows what the policy's parser allows.
		if e, ok := decimals[key]; ok {
			r, ok := PolicyIntRange[place.Field]
			if !ok {
				t.Errorf("%s is a number without a range in PolicyIntRange", place.Field)
			} else if e.MinValue != strconv.Itoa(r.Min) || e.MaxValue != strconv.Itoa(r.Max) {
				t.Errorf("%s: minValue %q maxValue %q, want %d and %d as the policy allows", e.ID, e.MinValue, e.MaxValue, r.Min, r.Max)
			}
		}
		t.Run(place.Field, func(t *testing.T) { enableWithSample(t, x, policyName, place) })
	}
	for w, p := range written {
		t.Errorf("policy %s writes %s\\%s (%s), which Countersign does not read", p, w.Key, w.Name, w.Type)
	}
}

// enableWithSample enables one policy as the Group Policy client would
// write it, with the field's sample value, and reads it back.
func enableWithSample(t *testing.T, x admx, policyName string, place RegistryPlace) {
	doc := sampleDoc(t, place.Field)
	var sample any = doc
	for _, part := range strings.Split(place.Field, ".") {
		sample = sample.(map[string]any)[part]
	}
	// The fields this one needs, as their own policies write them.
	needs := samplesDoc(t, policyNeeds[place.Field])
	delete(needs, "version")
	root := regFromDoc(t, needs, reflect.TypeFor[Policy]())
	key := root
	if place.Key != "" {
		for _, part := range strings.Split(place.Key, `\`) {
			sub, ok := key.subs[part]
			if !ok {
				sub = &regKey{subs: map[string]*regKey{}}
				key.subs[part] = sub
			}
			key = sub
		}
	}
	switch place.Type {
	case "REG_SZ":
		key.values = append(key.values, regValue{name: place.Name, typ: regSZ, str: sample.(string)})
	case "REG_DWORD":
		var n uint64
		switch v := sample.(type) {
		case bool:
			if v {
				n = 1
			}
		case json.Number:
			n, _ = strconv.ParseUint(string(v), 10, 32)
		}
		key.values = append(key.values, regValue{name: place.Name, typ: regDWORD, num: n})
	case "JSON":
		b, _ := json.MarshalIndent(sample, "", "  ")
		key.values = append(key.values, regValue{name: place.Name, typ: regMultiSZ, strs: strings.Split(string(b), "\n")})
	case "list":
		sub := &regKey{}
		for i, s := range sample.([]any) {
			sub.values = append(sub.values, regValue{name: strconv.Itoa(i + 1), typ: regSZ, str: s.(string)})
		}
		key.subs[place.Name] = sub
	case "named":
		sub := &regKey{}
		for k, v := range sample.(map[string]any) {
			sub.values = append(sub.values, regValue{name: k, typ: regSZ, str: v.(string)})
		}
		key.subs[place.Name] = sub
	default:
		t.Fatalf("no way to write %s", place.Type)
	}
	got, err := LoadAdminPolicy([]PolicySource{{Where: PolicyRegistryKey, read: func() ([]byte, error) { return policyFromRegistry(root) }}})
	if err != nil {
		t.Fatalf("policy %s enabled with %v: %v", policyName, sample, err)
	}
	b, _ := json.Marshal(doc)
	want, err := ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
		t.Errorf("policy %s (-want +got):\n%s", policyName, diff)
	}
}
