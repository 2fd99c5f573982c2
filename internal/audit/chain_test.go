package audit

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// TestCanonicalEncodingAsDocumented spells out the package doc's encoding
// byte by byte for one row, so the code cannot drift from the description
// that `countersign audit verify` users and third-party checkers rely on.
func TestCanonicalEncodingAsDocumented(t *testing.T) {
	r := row{
		id: 2, timeMS: 0x0102030405, kind: "call_decided", server: "gh", tool: "t",
		outcome: "denied", actor: "person", reason: "no", arguments: `{"a":1}`,
		resultSize: 7, isError: true, redactions: `{"jwt":1}`, format: 1,
		prevHash: Hash{0: 0xaa, 31: 0xbb},
	}
	str := func(s string) []byte { return append([]byte{0, 0, 0, byte(len(s))}, s...) }
	var want []byte
	want = append(want, str("countersign-audit")...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 1)    // format
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 2)    // id
	want = append(want, 0, 0, 0, 0x01, 2, 3, 4, 5) // time_ms
	want = append(want, str("call_decided")...)    // kind
	want = append(want, str("gh")...)              // server
	want = append(want, str("t")...)               // tool
	want = append(want, str("")...)                // client
	want = append(want, str("")...)                // call_id
	want = append(want, str("")...)                // target
	want = append(want, str("denied")...)          // outcome
	want = append(want, str("person")...)          // actor
	want = append(want, str("no")...)              // reason
	want = append(want, str(`{"a":1}`)...)         // arguments
	want = append(want, str("")...)                // edited_arguments
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 7)    // result_size
	want = append(want, 1)                         // is_error
	want = append(want, str(`{"jwt":1}`)...)       // redactions
	want = append(want, str("")...)                // detail
	if got := r.canonical(nil); !bytes.Equal(got, want) {
		t.Fatalf("canonical encoding\n got %x\nwant %x", got, want)
	}
	wantHash := sha256.Sum256(append(r.prevHash[:], want...))
	if got, _ := r.computeHash(nil); got != wantHash {
		t.Errorf("hash %x, want SHA-256(prev_hash || canonical) = %x", got, wantHash)
	}
}

// TestCanonicalEncodingIsUnambiguous checks that moving bytes between
// neighbouring fields changes the hash.
func TestCanonicalEncodingIsUnambiguous(t *testing.T) {
	base := row{id: 1, timeMS: 1, kind: "call_submitted", format: 1}
	variants := map[string]func(r *row){
		"tool ab, target c": func(r *row) { r.tool, r.target = "ab", "c" },
		"tool a, target bc": func(r *row) { r.tool, r.target = "a", "bc" },
		"server x":          func(r *row) { r.server = "x" },
		"client x":          func(r *row) { r.client = "x" },
		"arguments {}":      func(r *row) { r.arguments = "{}" },
		"edited {}":         func(r *row) { r.editedArguments = "{}" },
		"detail {}":         func(r *row) { r.detail = "{}" },
		"redactions {}":     func(r *row) { r.redactions = "{}" },
		"is_error":          func(r *row) { r.isError = true },
		"result_size 1":     func(r *row) { r.resultSize = 1 },
		"id 2":              func(r *row) { r.id = 2 },
		"time 2":            func(r *row) { r.timeMS = 2 },
		"format 2":          func(r *row) { r.format = 2 },
		"prev_hash":         func(r *row) { r.prevHash[0] = 1 },
		"unchanged":         func(r *row) {},
	}
	seen := map[Hash]string{}
	for name, change := range variants {
		r := base
		change(&r)
		h, _ := r.computeHash(nil)
		if other, ok := seen[h]; ok {
			t.Errorf("%q and %q hash alike", name, other)
		}
		seen[h] = name
	}
}
