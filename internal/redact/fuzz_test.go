package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// seedTexts returns the detector corpus and the near misses as fuzz seeds.
func seedTexts(t testing.TB) []string {
	var out []string
	for _, tc := range detectorCases(t) {
		out = append(out, tc.text)
	}
	for _, text := range nearMisses(t) {
		if len(text) < 4096 {
			out = append(out, text)
		}
	}
	return out
}

func FuzzScan(f *testing.F) {
	for _, s := range seedTexts(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs := Scan(s)
		for i, fd := range fs {
			if fd.Start < 0 || fd.End > len(s) || fd.Start >= fd.End {
				t.Fatalf("finding %+v out of bounds of %d bytes", fd, len(s))
			}
			if i > 0 && fd.Start < fs[i-1].End {
				t.Fatalf("findings overlap: %+v then %+v", fs[i-1], fd)
			}
			if v := s[fd.Start:fd.End]; len(v) > 3 && strings.Contains(fd.Preview, v) {
				t.Fatalf("preview %q holds the value %q", fd.Preview, v)
			}
		}
		out, counts := Redact(s)
		if len(fs) == 0 {
			if out != s || counts != nil {
				t.Fatalf("Redact changed text without findings: %q → %q", s, out)
			}
			return
		}
		if left := Scan(out); len(left) != 0 {
			t.Fatalf("Redact(%q) = %q still has findings %+v", s, out, left)
		}
		if again, c := Redact(out); again != out || c != nil {
			t.Fatalf("Redact not idempotent: %q → %q", out, again)
		}
	})
}

func FuzzRedactJSON(f *testing.F) {
	for _, s := range seedTexts(f) {
		doc, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}})
		f.Add(doc)
		doc, _ = json.Marshal(map[string]string{"password": s, "token": s, "connectionString": s})
		f.Add(doc)
	}
	f.Add([]byte(`{"a":"\u0067hp_0123456789abcdefghijABCDEFGHIJ0123456z","b":[1e400,-0.0,9007199254740993]}`))
	f.Add([]byte(`"\ud800\udc00\ud800 password=\u0041bc123"`))
	f.Add([]byte(`[{"x":"postgres:\/\/u:p\u0040ss@h"}]`))
	f.Add([]byte(`{"card":4539578763621486,"n":[-371449635398431, 4111111111111112,1e400]}`))
	f.Add([]byte(`{"blob":"UEFTU1dPUkQ9aHVudGVyMjJ4eQ==","data":"data:text/plain;base64,dG9rZW46IGFiY2RlZjAxMjM0NTY3ODk="}`))
	f.Add([]byte(`{"b":"UEFTU1dPUkQ9aHVudGVy
MjJ4eQ==","c":"UEFTU1dPUkQ9aHVudGVy\/MjJ4eQ"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := bytes.Clone(raw)
		out, counts, err := RedactJSON(raw)
		if !bytes.Equal(in, raw) {
			t.Fatal("RedactJSON modified its input")
		}
		if !json.Valid(raw) {
			if !errors.Is(err, ErrInvalidJSON) || out != nil {
				t.Fatalf("invalid input gave %q, %v", out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid input gave error %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q from %q", out, raw)
		}
		fs, err := ScanJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			if counts != nil || !bytes.Equal(out, raw) {
				t.Fatalf("changed a document without findings: %q → %q", raw, out)
			}
			return
		}
		if counts == nil {
			t.Fatalf("ScanJSON found %+v but RedactJSON counted nothing", fs)
		}
		if left, _ := ScanJSON(out); len(left) != 0 {
			t.Fatalf("output %q still has findings %+v", out, left)
		}
		again, c, err := RedactJSON(out)
		if err != nil || c != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q", out, again)
		}
		sameShape(t, raw, out)
	})
}

// sameShape checks that two documents have the same token stream except for
// the contents of strings: redaction never changes structure or literals,
// and changes a number only into a card number's marker.
func sameShape(t *testing.T, a, b []byte) {
	t.Helper()
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea == io.EOF && eb == io.EOF {
			return
		}
		if ea != nil || eb != nil {
			t.Fatalf("token errors: %v, %v", ea, eb)
		}
		if _, ok := ta.(string); ok {
			if _, ok := tb.(string); !ok {
				t.Fatalf("string %v became %v", ta, tb)
			}
			continue
		}
		if _, ok := ta.(json.Number); ok && tb == Marker(KindCardNumber) {
			continue
		}
		if ta != tb {
			t.Fatalf("token %v became %v", ta, tb)
		}
	}
}

// FuzzDecodeBase64 checks the blob decoder against encoding/base64: what
// any encoding of data (either alphabet, padded or not, broken into lines)
// decodes to is data, and no input makes it panic or accept a byte outside
// the alphabets.
func FuzzDecodeBase64(f *testing.F) {
	f.Add([]byte("password=hunter22"), false, true, false)
	f.Add([]byte{0xfb, 0xff, 0x00, 0x3e}, true, false, true)
	f.Add([]byte(""), false, false, false)
	f.Fuzz(func(t *testing.T, data []byte, url, pad, breaks bool) {
		enc := base64.RawStdEncoding
		switch {
		case url && pad:
			enc = base64.URLEncoding
		case url:
			enc = base64.RawURLEncoding
		case pad:
			enc = base64.StdEncoding
		}
		v := enc.EncodeToString(data)
		if breaks {
			var b strings.Builder
			for i := 0; i < len(v); i += 8 {
				b.WriteString(v[i:min(len(v), i+8)])
				b.WriteString("\r\n")
			}
			v = b.String()
		}
		got, ok := decodeBase64(v)
		if !ok || got != string(data) {
			t.Fatalf("decodeBase64(%q) = %q, %v; want %q", v, got, ok, data)
		}
		// Arbitrary bytes: never a panic, and never accepted with a byte
		// outside the alphabets.
		if _, ok := decodeBase64(string(data)); ok {
			for _, c := range data {
				if !isAlnum(c) && !strings.ContainsRune("+/-_=\r\n", rune(c)) {
					t.Fatalf("decodeBase64 accepted %q", data)
				}
			}
		}
	})
}
