package ui

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/gate"
)

func TestExchangeText(t *testing.T) {
	tests := []struct {
		name            string
		x               gate.Exchange
		asked, answered string
		seen            bool
	}{
		{"a form the person accepted",
			gate.Exchange{Request: []byte(`{"method":"elicitation/create","params":{"message":"Delete 412 issues?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean"}}}}}`),
				Response: []byte(`{"action":"accept","content":{"confirm":true}}`)},
			"“Delete 412 issues?” It asks for: confirm (yes or no).", "Accepted: confirm = yes.", true},
		{"a link to open, declined",
			gate.Exchange{Request: []byte(`{"method":"elicitation/create","params":{"mode":"url","message":"Sign in","url":"https://example.com/auth"}}`),
				Response: []byte(`{"action":"decline"}`)},
			"“Sign in” It asks the person to open https://example.com/auth.", "Declined.", true},
		{"sampling, several messages and instructions",
			gate.Exchange{Request: []byte(`{"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"a"}},{"role":"user","content":[{"type":"text","text":"Which?"},{"type":"image","data":"…"}]}],"systemPrompt":"Be brief","maxTokens":5}}`),
				Response: []byte(`{"role":"assistant","content":{"type":"text","text":"That one."},"model":"m"}`)},
			"For the AI app's model to write a reply to: “Which? [image]” (the last of 2 messages), with the instructions “Be brief”", "The model (m) replied: “That one.”", true},
		{"roots",
			gate.Exchange{Request: []byte(`{"method":"roots/list"}`), Response: []byte(`{"roots":[{"uri":"file:///home/a/src"}]}`)},
			"Which folders the AI app shares with it.", "Shares file:///home/a/src.", true},
		{"unseen, dismissed", gate.Exchange{Response: []byte(`{"action":"cancel"}`)}, "", "Dismissed the question without answering.", false},
		{"unseen, unknown shape", gate.Exchange{Response: []byte(`{"x": 1}`)}, "", `{"x":1}`, false},
		{"asked, not answered", gate.Exchange{Request: []byte(`{"method":"roots/list"}`)}, "Which folders the AI app shares with it.", "Nothing: the AI app sent no answer to this question.", true},
		{"hidden characters are shown", gate.Exchange{Request: []byte(`{"method":"elicitation/create","params":{"message":"ok\u202eevil"}}`), Response: []byte(`{"action":"accept"}`)},
			"“ok⟨U+202E⟩evil”", "Accepted.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked, answered, seen := exchangeText(tt.x)
			if asked != tt.asked || answered != tt.answered || seen != tt.seen {
				t.Errorf("got %q / %q / %v\nwant %q / %q / %v", asked, answered, seen, tt.asked, tt.answered, tt.seen)
			}
		})
	}
}

// FuzzExchangeText feeds untrusted questions and answers through what
// the review window shows of them.
func FuzzExchangeText(f *testing.F) {
	f.Add([]byte(`{"method":"elicitation/create","params":{"message":"Sure?","requestedSchema":{"properties":{"a":{"type":"boolean"}}}}}`), []byte(`{"action":"accept","content":{"a":true}}`))
	f.Add([]byte(`{"method":"sampling/createMessage","params":{"messages":[{"content":[{"type":"text","text":"x"}]}]}}`), []byte(`{"role":"assistant","content":{"type":"text","text":"y"}}`))
	f.Add([]byte(`{"method":"roots/list"}`), []byte(`{"roots":[{"uri":"file:///\u202e"}]}`))
	f.Add([]byte(``), []byte(`"\xff"`))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		x := gate.Exchange{Key: "k", Response: resp}
		if len(req) > 0 {
			x.Request = req
		}
		asked, answered, _ := exchangeText(x)
		for _, s := range []string{asked, answered} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\u202e\u2066") {
				t.Fatalf("%q is not one clean line", s)
			}
		}
	})
}
