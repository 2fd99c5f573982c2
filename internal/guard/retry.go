package guard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/redact"
)

// A 2026-07-28 server can answer a tools/call with an input_required
// result: questions for the AI app (inputRequests: elicitations, sampling,
// roots) and an opaque requestState. The AI app answers and calls again
// with inputResponses and the requestState. The retry is held for the
// person like any call; so they can judge it, the guard remembers the
// questions it saw and shows each beside its answer.

const (
	// maxAsked bounds the remembered questions.
	maxAsked = 256
	// askedTTL is how long a question is remembered: long enough for a
	// person to answer it in the AI app and review the retry.
	askedTTL = time.Hour
)

// asked is what a server asked in one input_required result.
type asked struct {
	requests map[string]json.RawMessage // by the server's key, secrets removed
	at       time.Time
}

// askedKey keys the questions of an input_required result: by server and
// requestState, or, when the server sent no state, by server, tool and
// arguments (the retry repeats the original call).
func askedKey(server string, state json.RawMessage, tool string, args json.RawMessage) string {
	var s string
	if len(state) > 0 && json.Unmarshal(state, &s) == nil && s != "" {
		return "state\x00" + server + "\x00" + s
	}
	if len(state) > 0 && string(state) != "null" {
		return "state\x00" + server + "\x00" + string(state)
	}
	var b bytes.Buffer
	if json.Compact(&b, args) != nil {
		b.Reset()
		b.Write(args)
	}
	sum := sha256.Sum256(b.Bytes())
	return "call\x00" + server + "\x00" + tool + "\x00" + hex.EncodeToString(sum[:])
}

// inputRequired reads an input_required tool result; ok is false for any
// other result.
func inputRequired(result json.RawMessage) (requests map[string]json.RawMessage, state json.RawMessage, ok bool) {
	// Exact member names only, as a client reads them: encoding/json's
	// struct fields would also match case variants.
	var r map[string]json.RawMessage
	if json.Unmarshal(result, &r) != nil || string(r["resultType"]) != `"input_required"` {
		return nil, nil, false
	}
	if json.Unmarshal(r["inputRequests"], &requests) != nil {
		requests = nil
	}
	return requests, r["requestState"], true
}

// rememberAsked records the questions of an input_required result the
// server sent for a call.
func (g *Guard) rememberAsked(server string, ci callInfo, result json.RawMessage) {
	requests, state, ok := inputRequired(result)
	if !ok || len(requests) == 0 {
		return
	}
	key := askedKey(server, state, ci.tool, ci.args)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, a := range g.asked {
		if now.Sub(a.at) > askedTTL {
			delete(g.asked, k)
		}
	}
	for len(g.asked) >= maxAsked {
		oldest, when := "", now
		for k, a := range g.asked {
			if !a.at.After(when) {
				oldest, when = k, a.at
			}
		}
		delete(g.asked, oldest)
	}
	g.asked[key] = asked{requests: requests, at: now}
}

// exchanges pairs the answers a retried call carries with the questions
// the server asked, secrets removed from both. It reports whether any
// answer's question went unseen.
func (g *Guard) exchanges(c gate.Call) (out []gate.Exchange, unseen bool) {
	if len(c.InputResponses) == 0 || string(c.InputResponses) == "null" {
		return nil, false
	}
	key := askedKey(c.Server, c.RequestState, c.Tool, c.Arguments)
	g.mu.RLock()
	a, found := g.asked[key]
	g.mu.RUnlock()
	if found && g.now().Sub(a.at) > askedTTL {
		a = asked{}
	}
	var answers map[string]json.RawMessage
	if err := json.Unmarshal(c.InputResponses, &answers); err != nil {
		// Not a map of answers: show it as it is.
		return []gate.Exchange{{Response: redactedAnswer(c.InputResponses)}}, true
	}
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	for k := range a.requests {
		if _, ok := answers[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		x := gate.Exchange{Key: redactString(k), Request: a.requests[k]}
		if ans, ok := answers[k]; ok {
			x.Response = redactedAnswer(ans)
			if x.Request == nil {
				unseen = true
			}
		}
		out = append(out, x)
	}
	return out, unseen
}

// redactedAnswer returns an answer fit to show: secrets replaced, or a
// placeholder when it cannot be checked.
func redactedAnswer(raw json.RawMessage) json.RawMessage {
	if out := redactedArgs(raw); out != nil {
		return out
	}
	return json.RawMessage(`"(Countersign could not check this answer for secrets, so it is not shown.)"`)
}

// annotateRetry fills in a retried call's questions and answers and the
// warnings about them.
func (g *Guard) annotateRetry(c *gate.Call) {
	var unseen bool
	c.Exchanges, unseen = g.exchanges(*c)
	if len(c.Exchanges) == 0 {
		return
	}
	var ws []gate.Warning
	if findings, err := redact.ScanJSON(c.InputResponses); err == nil && len(findings) > 0 {
		for i := range findings {
			findings[i].Path = "inputResponses" + pathSep(findings[i].Path) + findings[i].Path
		}
		ws = append(ws, gate.Warning{Kind: gate.WarnSecret,
			Text: secretSentence("The AI app's answers to the server's questions", findings), Detail: secretDetail(findings)})
	}
	if unseen {
		ws = append(ws, gate.Warning{Kind: gate.WarnInputUnseen,
			Text: "Countersign did not see the server's question for some of the AI app's answers below, so it cannot show what they answer."})
	}
	c.Warnings = append(ws, c.Warnings...)
}

func pathSep(p string) string {
	if p == "" || p[0] == '[' {
		return ""
	}
	return "."
}

// retryDetail is the audit's note of a retried call's answers, redacted.
func retryDetail(c gate.Call) json.RawMessage {
	if len(c.Exchanges) == 0 {
		return nil
	}
	seen := 0
	for _, x := range c.Exchanges {
		if x.Request != nil {
			seen++
		}
	}
	return mustJSON(map[string]any{
		"inputResponses": redactedAnswer(c.InputResponses),
		"questionsSeen":  fmt.Sprintf("%d of %d", seen, len(c.Exchanges)),
	})
}
