package ui

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/countersign/countersign/internal/gate"
)

func TestHideSecrets(t *testing.T) {
	const other = "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
	tests := []struct {
		name, args, text string
	}{
		{"inside a string", `{"message":"Use this to push: ` + token + `"}`,
			"{\n  \"message\": \"Use this to push: [hidden github token #1]\"\n}"},
		{"two in one string, one in another", `{"a":"` + token + ` and ` + other + ` ok","b":{"c":"` + token + `"}}`,
			"{\n  \"a\": \"[hidden github token #1] and [hidden github token #2] ok\",\n  \"b\": {\n    \"c\": \"[hidden github token #3]\"\n  }\n}"},
		{"a whole value under a secret-looking key", `{"password":"correct horse battery staple 7731"}`,
			"{\n  \"password\": \"[hidden password #1]\"\n}"},
		{"a card number written as a number", `{"n":4111111111111111,"m":"x"}`,
			"{\n  \"n\": \"[hidden card number #1]\",\n  \"m\": \"x\"\n}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := hideSecrets([]byte(tt.args))
			if !ok {
				t.Fatal("nothing hidden")
			}
			if h.text != tt.text {
				t.Errorf("text\n%s\nwant\n%s", h.text, tt.text)
			}
			var want bytes.Buffer
			json.Compact(&want, []byte(tt.args))
			var got bytes.Buffer
			if err := json.Compact(&got, []byte(h.restore(h.text))); err != nil || got.String() != want.String() {
				t.Errorf("restored %s (%v), want %s", got.String(), err, want.String())
			}
		})
	}
	t.Run("nothing to hide", func(t *testing.T) {
		if _, ok := hideSecrets([]byte(`{"a":1}`)); ok {
			t.Error("hid something in arguments without a secret")
		}
	})
	t.Run("arguments that already look like a mark are not hidden", func(t *testing.T) {
		// A mark of the caller's own would be taken for a secret's and
		// replaced by it when approved.
		if _, ok := hideSecrets([]byte(`{"a":"` + token + `","b":"[hidden github token #1]"}`)); ok {
			t.Error("hid secrets beside a look-alike mark")
		}
	})
	t.Run("a message quoting the secret shows its mark", func(t *testing.T) {
		h, _ := hideSecrets([]byte(`{"k":"line\n` + token + `"}`))
		if got := h.hide("'line\\n" + token + "' does not match"); strings.Contains(got, "ghp_") {
			t.Errorf("hide left the secret in %q", got)
		}
	})
}

// FuzzHideSecrets: whatever the arguments, hidden text restores to the
// arguments exactly, and shows none of the secrets it hides.
func FuzzHideSecrets(f *testing.F) {
	f.Add(`{"message":"Use this to push: ` + token + `"}`)
	f.Add(`{"a":"` + token + `x` + token + `","password":"hunter2hunter2hunter2"}`)
	f.Add(`{"n":4111111111111111}`)
	f.Add(`{"` + token + `":"k"}`)
	f.Add(`{"pass":"&00"}`) // json.Marshal would give the secret back as \u002600
	f.Add(`{"pass":"<a\u0026b>hunter2hunter2"}`)
	f.Fuzz(func(t *testing.T, args string) {
		if !json.Valid([]byte(args)) {
			return
		}
		h, ok := hideSecrets([]byte(args))
		if !ok {
			return
		}
		for _, s := range h.secrets {
			if s.value != "" && strings.Contains(h.text, s.value) {
				t.Fatalf("the hidden text shows secret %q: %s", s.value, h.text)
			}
		}
		var want, got bytes.Buffer
		json.Compact(&want, []byte(args))
		if err := json.Compact(&got, []byte(h.restore(h.text))); err != nil {
			t.Fatalf("restored %s (%v), want %s", got.String(), err, want.String())
		}
		if got.String() == want.String() {
			return
		}
		// Byte for byte wherever the arguments escape nothing JSON does
		// not require (as JSON.stringify writes them); where they write a
		// character as an escape (\u0026) or hold bytes that are not
		// UTF-8, the secret goes back as the same value, written plainly.
		var wantV, gotV any
		if strings.Contains(args, `\`) || !utf8.ValidString(args) {
			json.Unmarshal(want.Bytes(), &wantV)
			json.Unmarshal(got.Bytes(), &gotV)
			if reflect.DeepEqual(wantV, gotV) {
				return
			}
		}
		t.Fatalf("restored %s, want %s", got.String(), want.String())
	})
}

// editSecretCall shows the person a call whose message holds a GitHub
// token, under rules that allow any edit, and presses Ctrl+E on it.
func editSecretCall(t *testing.T) (*realQueue, *review) {
	t.Helper()
	q := newRealQueue(t, 0)
	h := newHarness(t, q)
	c := echoSecret("", T0)
	c.Check = func(json.RawMessage) error { return nil } // rules that allow any edit
	q.submit(c)
	h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
	r := h.d.review
	h.ready()
	press(r.window(), fyne.KeyE)
	return q, r
}

// The editor keeps a hidden secret hidden: the person edits around its
// mark, approves, and the server still gets the secret, with the edit.
func TestEditorKeepsTheSecretHidden(t *testing.T) {
	q, r := editSecretCall(t)
	e := r.editor
	if e == nil {
		t.Fatal("Ctrl+E opened no editor")
	}
	capturePNG(t, r.window(), "edit_secret_hidden.png")
	if strings.Contains(e.entry.Text, "ghp_") || strings.Contains(texts(r.window()), "ghp_") {
		t.Fatalf("the editor shows the secret:\n%s", e.entry.Text)
	}
	want := "{\n  \"message\": \"Use this to push: [hidden github token #1]\"\n}"
	if e.entry.Text != want {
		t.Fatalf("editor text\n%s\nwant\n%s", e.entry.Text, want)
	}
	e.entry.SetText(strings.Replace(e.entry.Text, "Use this to push", "Push with", 1))
	test.Tap(e.approve)
	v := q.verdict(t)
	if v.Outcome != gate.OutcomeApproved || string(v.Arguments) != `{"message":"Push with: `+token+`"}` {
		t.Fatalf("verdict %+v, arguments %s", v, v.Arguments)
	}
}

func TestEditorShowsTheSecretOnRequest(t *testing.T) {
	q, r := editSecretCall(t)
	e := r.editor
	e.entry.SetText(strings.Replace(e.entry.Text, "Use this to push", "Push with", 1))
	test.Tap(findButton(t, e.content, "Show the secret"))
	if want := "{\n  \"message\": \"Push with: " + token + "\"\n}"; e.entry.Text != want {
		t.Fatalf("after Show the secret the text is\n%s\nwant\n%s", e.entry.Text, want)
	}
	if e.reveal.Visible() {
		t.Error("the hidden-secret note stays after the secret is shown")
	}
	test.Tap(e.approve)
	if v := q.verdict(t); string(v.Arguments) != `{"message":"Push with: `+token+`"}` {
		t.Fatalf("arguments %s", v.Arguments)
	}
}
