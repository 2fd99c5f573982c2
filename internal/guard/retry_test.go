package guard

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
)

func TestAskedQuestionsAreBoundedAndExpire(t *testing.T) {
	g := New(Options{})
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	result := func(state string) json.RawMessage {
		return json.RawMessage(`{"resultType":"input_required","inputRequests":{"q":{"method":"roots/list"}},"requestState":"` + state + `"}`)
	}
	for i := range maxAsked + 10 {
		g.rememberAsked("s", callInfo{tool: "t"}, result("state-"+strings.Repeat("x", i)))
		now = now.Add(time.Second)
	}
	if len(g.asked) != maxAsked {
		t.Fatalf("%d questions kept, want at most %d", len(g.asked), maxAsked)
	}
	retry := gate.Call{Server: "s", Tool: "t", InputResponses: json.RawMessage(`{"q":{"roots":[]}}`)}
	retry.RequestState = json.RawMessage(`"state-` + strings.Repeat("x", maxAsked+9) + `"`)
	if xs, unseen := g.exchanges(retry); unseen || len(xs) != 1 || xs[0].Request == nil {
		t.Fatalf("the newest question was not kept: %+v", xs)
	}
	retry.RequestState = json.RawMessage(`"state-"`)
	if _, unseen := g.exchanges(retry); !unseen {
		t.Fatal("the oldest question was kept past the bound")
	}
	now = now.Add(askedTTL + time.Minute)
	retry.RequestState = json.RawMessage(`"state-` + strings.Repeat("x", maxAsked+9) + `"`)
	if _, unseen := g.exchanges(retry); !unseen {
		t.Fatal("a question was kept past its time")
	}
}

func TestRetryWithoutStateMatchesTheCall(t *testing.T) {
	g := New(Options{})
	args := json.RawMessage(`{"repo": "ffc-pay"}`)
	g.rememberAsked("s", callInfo{tool: "t", args: args},
		json.RawMessage(`{"resultType":"input_required","inputRequests":{"q":{"method":"roots/list"}}}`))
	retry := gate.Call{Server: "s", Tool: "t", Arguments: json.RawMessage(`{"repo":"ffc-pay"}`), InputResponses: json.RawMessage(`{"q":{"roots":[]}}`)}
	if xs, unseen := g.exchanges(retry); unseen || len(xs) != 1 {
		t.Fatalf("exchanges %+v, unseen %v", xs, unseen)
	}
	retry.Tool = "other"
	if _, unseen := g.exchanges(retry); !unseen {
		t.Fatal("another tool's retry was paired with the question")
	}
	// Case variants of the members a client reads are not questions.
	g.rememberAsked("s", callInfo{tool: "t"}, json.RawMessage(`{"resultType":"input_required","InputRequests":{"q":{"method":"roots/list"}},"requestState":"v"}`))
	retry = gate.Call{Server: "s", Tool: "t", RequestState: json.RawMessage(`"v"`), InputResponses: json.RawMessage(`{"q":{"roots":[]}}`)}
	if _, unseen := g.exchanges(retry); !unseen {
		t.Fatal("a case variant of inputRequests was read as questions")
	}
}

// FuzzRetry feeds untrusted input_required results and retries through
// the guard: no panic, and no secret in what the person is shown.
func FuzzRetry(f *testing.F) {
	f.Add([]byte(`{"resultType":"input_required","inputRequests":{"q":{"method":"elicitation/create","params":{"message":"`+ghToken+`"}}},"requestState":"s"}`),
		[]byte(`{"q":{"action":"accept","content":{"token":"`+ghToken+`"}}}`), []byte(`"s"`))
	f.Add([]byte(`{"resultType":"input_required","requestState":"s"}`), []byte(`[1,2]`), []byte(`"s"`))
	f.Add([]byte(`{"resultType":"input_required","inputRequests":{"q":1}}`), []byte(`{"q":null}`), []byte(`null`))
	f.Add([]byte(`{"resultType":"complete"}`), []byte(`"\xff"`), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, result, responses, state []byte) {
		g := New(Options{})
		shown := redactedArgs(result)
		if shown == nil {
			return // the guard withholds results it cannot check
		}
		g.rememberAsked("s", callInfo{tool: "t"}, shown)
		c := gate.Call{Server: "s", Tool: "t", InputResponses: responses, RequestState: state}
		g.annotateRetry(&c)
		for _, x := range c.Exchanges {
			for _, b := range [][]byte{x.Request, x.Response} {
				if strings.Contains(string(b), ghToken) {
					t.Fatalf("a secret is shown: %s", b)
				}
				if b != nil && !json.Valid(b) {
					t.Fatalf("not JSON: %q", b)
				}
			}
		}
	})
}
