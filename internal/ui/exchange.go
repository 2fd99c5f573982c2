package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/gate"
)

// A 2026-07-28 retry carries the AI app's answers to questions the server
// asked (elicitations, sampling, roots). The review window says both in
// plain words. Everything here came from a server or an AI app, with
// secrets already removed by the guard: it goes through oneLine or visible.

// maxExchangeText bounds each question or answer shown.
const maxExchangeText = 600

// exchangeText returns what the server asked and what the AI app answered,
// as two sentences; seen is false when Countersign did not see the question.
func exchangeText(x gate.Exchange) (asked, answered string, seen bool) {
	method := ""
	if x.Request != nil {
		var r struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		json.Unmarshal(x.Request, &r)
		method = r.Method
		asked = question(r.Method, r.Params)
		seen = true
	}
	switch {
	case x.Response == nil:
		answered = "Nothing: the AI app sent no answer to this question."
	default:
		answered = answer(method, x.Response)
	}
	return asked, answered, seen
}

// question says in plain words what an input request asks.
func question(method string, params json.RawMessage) string {
	switch method {
	case "elicitation/create":
		var p struct {
			Mode            string `json:"mode"`
			Message         string `json:"message"`
			URL             string `json:"url"`
			RequestedSchema struct {
				Properties map[string]struct {
					Type  string `json:"type"`
					Title string `json:"title"`
				} `json:"properties"`
			} `json:"requestedSchema"`
		}
		json.Unmarshal(params, &p)
		s := "“" + oneLine(p.Message, maxExchangeText) + "”"
		if p.Mode == "url" {
			return s + " It asks the person to open " + oneLine(p.URL, 200) + "."
		}
		if len(p.RequestedSchema.Properties) > 0 {
			names := make([]string, 0, len(p.RequestedSchema.Properties))
			for name, prop := range p.RequestedSchema.Properties {
				label := name
				if prop.Title != "" && prop.Title != name {
					label = prop.Title + " (" + name + ")"
				}
				names = append(names, oneLine(label, 80)+kindWord(prop.Type))
			}
			sort.Strings(names)
			s += " It asks for: " + strings.Join(names, ", ") + "."
		}
		return s
	case "sampling/createMessage":
		var p struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
			SystemPrompt string `json:"systemPrompt"`
		}
		json.Unmarshal(params, &p)
		s := "For the AI app's model to write a reply"
		if n := len(p.Messages); n > 0 {
			s += " to: “" + oneLine(contentText(p.Messages[n-1].Content), maxExchangeText) + "”"
			if n > 1 {
				s += fmt.Sprintf(" (the last of %d messages)", n)
			}
		}
		if p.SystemPrompt != "" {
			s += ", with the instructions “" + oneLine(p.SystemPrompt, 200) + "”"
		}
		if strings.HasSuffix(s, "”") {
			return s
		}
		return s + "."
	case "roots/list":
		return "Which folders the AI app shares with it."
	}
	return "A request Countersign does not know (" + oneLine(method, 60) + "); its answer is below as sent."
}

// kindWord names a requested field's type for the person.
func kindWord(t string) string {
	switch t {
	case "boolean":
		return " (yes or no)"
	case "number", "integer":
		return " (a number)"
	case "string":
		return " (text)"
	case "array":
		return " (a list)"
	}
	return ""
}

// answer says in plain words what the AI app answered. Without the
// question, the answer's shape says what kind it is.
func answer(method string, resp json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(resp, &m) != nil {
		return oneLine(string(resp), maxExchangeText)
	}
	switch {
	case method == "elicitation/create" || method == "" && m["action"] != nil:
		var r struct {
			Action  string          `json:"action"`
			Content json.RawMessage `json:"content"`
		}
		json.Unmarshal(resp, &r)
		switch r.Action {
		case "accept":
			fs, more, ok := fields(r.Content)
			if !ok || len(fs) == 0 {
				return "Accepted."
			}
			parts := make([]string, 0, len(fs))
			for _, f := range fs {
				parts = append(parts, f.Path+" = "+answerValue(f.Value))
			}
			s := "Accepted: " + strings.Join(parts, "; ")
			if more > 0 {
				s += fmt.Sprintf("; and %d more", more)
			}
			return oneLine(s, maxExchangeText) + "."
		case "decline":
			return "Declined."
		case "cancel":
			return "Dismissed the question without answering."
		}
		return "An answer Countersign does not know: " + oneLine(string(resp), maxExchangeText)
	case method == "sampling/createMessage" || method == "" && m["role"] != nil && m["content"] != nil:
		var r struct {
			Model   string          `json:"model"`
			Content json.RawMessage `json:"content"`
		}
		json.Unmarshal(resp, &r)
		who := "The model"
		if r.Model != "" {
			who += " (" + oneLine(r.Model, 60) + ")"
		}
		return who + " replied: “" + oneLine(contentText(r.Content), maxExchangeText) + "”"
	case method == "roots/list" || method == "" && m["roots"] != nil:
		var r struct {
			Roots []struct {
				URI  string `json:"uri"`
				Name string `json:"name"`
			} `json:"roots"`
		}
		json.Unmarshal(resp, &r)
		if len(r.Roots) == 0 {
			return "Shares no folders."
		}
		uris := make([]string, len(r.Roots))
		for i, root := range r.Roots {
			uris[i] = root.URI
		}
		return "Shares " + oneLine(strings.Join(uris, ", "), maxExchangeText) + "."
	}
	var b bytes.Buffer
	json.Compact(&b, resp)
	return oneLine(b.String(), maxExchangeText)
}

// answerValue spells a form value for the person.
func answerValue(v string) string {
	switch v {
	case "true":
		return "yes"
	case "false":
		return "no"
	}
	return v
}

// contentText is the text of a sampling message's content: one block or a
// list of them; other kinds of content are named, not shown.
func contentText(raw json.RawMessage) string {
	type block struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	var blocks []block
	var one block
	if json.Unmarshal(raw, &blocks) != nil {
		if json.Unmarshal(raw, &one) != nil {
			return ""
		}
		blocks = []block{one}
	}
	parts := make([]string, 0, len(blocks))
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		} else {
			parts = append(parts, "["+oneLine(b.Type, 20)+"]")
		}
	}
	return strings.Join(parts, " ")
}

// exchangeKey names a question for the person when there are several.
func exchangeKey(i int, x gate.Exchange) string {
	if x.Key == "" {
		return "Answer " + strconv.Itoa(i+1)
	}
	return oneLine(x.Key, 60)
}
