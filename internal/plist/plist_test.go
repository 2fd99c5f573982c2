package plist

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// allWant is what testdata/make.py wrote into all.*.plist.
var allWant = map[string]any{
	"text": "héllo <&> wörld ✓", "ascii": "plain", "empty": "",
	"int": int64(42), "neg": int64(-7), "big": int64(1 << 40), "max": int64(1<<63 - 1),
	"real": 2.5, "yes": true, "no": false,
	"data":    []byte("\x00\x01binary\xff"),
	"date":    time.Date(2026, 12, 4, 12, 30, 0, 0, time.UTC),
	"list":    []any{"a", int64(1), []any{true}, map[string]any{}},
	"nested":  map[string]any{"k": map[string]any{"deeper": []any{"x"}}},
	"shared1": "same", "shared2": "same",
}

func TestDecodeFixturesFromAnIndependentWriter(t *testing.T) {
	for _, name := range []string{"all.xml.plist", "all.binary.plist"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(allWant, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	b, err := os.ReadFile(filepath.Join("testdata", "big.binary.plist"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if len(m) != 300 || m["key0299"] != strings.Repeat("v", 299) || m["key0000"] != "" {
		t.Fatalf("big: %d keys, key0299 = %.20q", len(m), m["key0299"])
	}
}

func TestDecodeRefusesMalformedInput(t *testing.T) {
	good, _ := os.ReadFile(filepath.Join("testdata", "all.binary.plist"))
	trailer := func(mutate func(tr []byte)) []byte {
		b := append([]byte(nil), good...)
		mutate(b[len(b)-32:])
		return b
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"not a plist", "hello", "not a property list"},
		{"empty", "", "not a property list"},
		{"wrong root", "<foo/>", "want <plist>"},
		{"unclosed", "<plist><dict><key>a</key><string>b</string>", "unexpected EOF"},
		{"key without value", "<plist><dict><key>a</key></dict></plist>", "unexpected </dict>"},
		{"two keys in a row", "<plist><dict><key>a</key><key>b</key><string/></dict></plist>", `key "a" has no value`},
		{"duplicate key", "<plist><dict><key>a</key><true/><key>a</key><false/></dict></plist>", "appears twice"},
		{"unknown element", "<plist><thing/></plist>", "not a property list element"},
		{"bad integer", "<plist><integer>12x</integer></plist>", "not a whole number"},
		{"bad data", "<plist><data>!!!</data></plist>", "not base64"},
		{"text in dict", "<plist><dict>oops</dict></plist>", "unexpected text"},
		{"two roots", "<plist><true/><false/></plist>", "unexpected <false>"},
		{"after plist", "<plist><true/></plist><x/>", "after </plist>"},
		{"mismatched end", "<plist><array></dict></plist>", "line 1"},
		{"deep", "<plist>" + strings.Repeat("<array>", 100) + strings.Repeat("</array>", 100) + "</plist>", "nested more than"},
		{"binary too short", "bplist00", "too short"},
		{"binary top out of range", string(trailer(func(tr []byte) { binary.BigEndian.PutUint64(tr[16:], 1<<40) })), "no top object"},
		{"binary table out of range", string(trailer(func(tr []byte) { binary.BigEndian.PutUint64(tr[24:], 1<<40) })), "offset table out of range"},
		{"binary bad ref size", string(trailer(func(tr []byte) { tr[7] = 0 })), "bad integer sizes"},
		{"binary too many objects", string(trailer(func(tr []byte) { binary.BigEndian.PutUint64(tr[8:], 1<<60) })), "offset table out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode = %v, %v; want an error with %q", v, err, tt.want)
			}
		})
	}
}

// TestBinaryCycleIsRefused: an array that contains itself.
func TestBinaryCycleIsRefused(t *testing.T) {
	// Object 0: an array of one reference, to object 0.
	objs := []byte{0xA1, 0x00}
	b := append([]byte("bplist00"), objs...)
	table := len(b)
	b = append(b, 8) // object 0 at offset 8
	tr := make([]byte, 32)
	tr[6], tr[7] = 1, 1
	binary.BigEndian.PutUint64(tr[8:], 1)
	binary.BigEndian.PutUint64(tr[16:], 0)
	binary.BigEndian.PutUint64(tr[24:], uint64(table))
	b = append(b, tr...)
	if v, err := Decode(b); err == nil || !strings.Contains(err.Error(), "contains itself") {
		t.Fatalf("Decode = %v, %v", v, err)
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	b := []byte("<plist><string>" + strings.Repeat("x", MaxSize) + "</string></plist>")
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), fmt.Sprint(MaxSize)) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"all.xml.plist", "all.binary.plist"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<plist><dict><key>a</key><array><integer>1</integer></array></dict></plist>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil && v != nil {
			t.Fatalf("an error with a value: %v", v)
		}
	})
}
