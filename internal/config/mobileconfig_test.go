package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/plist"
)

// TestSampleProfileSetsEveryPolicyField: the sample .mobileconfig is a
// valid profile whose Countersign payload, installed as managed
// preferences, is a valid policy setting every field of RegistryMap (but
// audit.retentionDays, which excludes the min/max pair and which its
// comment explains instead). A new policy field fails here until the
// sample has it.
func TestSampleProfileSetsEveryPolicyField(t *testing.T) {
	path := filepath.Join("..", "..", "packaging", "macos", "Countersign.mobileconfig")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := plist.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	profile := v.(map[string]any)
	if profile["PayloadType"] != "Configuration" || profile["PayloadUUID"] == nil || profile["PayloadIdentifier"] == nil || profile["PayloadVersion"] != int64(1) {
		t.Fatalf("not a configuration profile: %v", profile)
	}
	var prefs map[string]any
	for _, p := range profile["PayloadContent"].([]any) {
		if p := p.(map[string]any); p["PayloadType"] == BundleID {
			prefs = p
		}
	}
	if prefs == nil {
		t.Fatalf("no payload of type %s", BundleID)
	}
	doc, err := policyFromPrefs(prefs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(doc)
	if err != nil {
		t.Fatalf("the sample's policy: %v", err)
	}
	if err := p.Check(Checks{}); err != nil {
		t.Fatal(err)
	}
	for _, place := range RegistryMap() {
		if place.Field == "audit.retentionDays" {
			if !strings.Contains(string(b), "<key>retentionDays</key>") {
				t.Error("the sample neither sets nor explains audit.retentionDays")
			}
			continue
		}
		fv := fieldValue(p, place.Field)
		if !fv.IsValid() || fv.IsZero() && !strings.Contains(string(doc), `"`+place.Name+`"`) {
			t.Errorf("the sample profile does not set %s: add it to %s", place.Field, path)
		}
	}
	// Each server need not set every rule, but together they must.
	st := reflect.TypeFor[ServerPolicy]()
	for i := range st.NumField() {
		set := false
		for _, sp := range p.Servers {
			set = set || !reflect.ValueOf(sp).Field(i).IsZero()
		}
		if !set {
			t.Errorf("no server in the sample profile sets %s", st.Field(i).Name)
		}
	}
}

// TestAdminDocNamesEveryPolicyField: docs/ADMIN-POLICY.md has a row for
// every field's registry place.
func TestAdminDocNamesEveryPolicyField(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "ADMIN-POLICY.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, place := range RegistryMap() {
		if place.Field == "version" {
			continue
		}
		reg := place.Name
		if place.Key != "" {
			reg = place.Key + `\` + place.Name
		}
		if !strings.Contains(string(b), "| `"+place.Field+"` | `"+reg) {
			t.Errorf("docs/ADMIN-POLICY.md has no row for %s (registry %s)", place.Field, reg)
		}
	}
}
