package peers

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// played2026 is a hand-played 2026-07-28 server for what server-everything
// lacks: stateless server/discover, caching hints (ttlMs, cacheScope) on
// every cacheable result, SEP-2164's error for a resource that does not
// exist, and SEP-2322's input-required results (MRTR): tools that ask the
// client for input, carry requestState, and finish when called again with
// the answers. It answers each POST on its own, with no session.
func played2026(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "stateless server: POST only", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			URI            string                     `json:"uri"`
			Name           string                     `json:"name"`
			InputResponses map[string]json.RawMessage `json:"inputResponses"`
			RequestState   *string                    `json:"requestState"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil {
		http.Error(w, "not JSON-RPC", http.StatusBadRequest)
		return
	}
	if msg.ID == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if why := headerMismatch(req.Header, msg.Method, msg.Params.Name, msg.Params.URI); why != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID,
			"error": map[string]any{"code": -32020, "message": "Header mismatch: " + why}})
		return
	}
	cacheable := func(r map[string]any) map[string]any {
		r["resultType"], r["ttlMs"], r["cacheScope"] = "complete", 60000, "public"
		return r
	}
	var result map[string]any
	var rpcErr map[string]any
	switch msg.Method {
	case "server/discover":
		result = cacheable(map[string]any{
			"supportedVersions": []string{"2026-07-28"},
			"capabilities":      map[string]any{"tools": map[string]any{}, "prompts": map[string]any{}, "resources": map[string]any{}},
			"serverInfo":        map[string]any{"name": "played-2026", "version": "1.0.0"},
		})
	case "tools/list":
		var tools []any
		for _, name := range slices.Sorted(maps.Keys(mrtrTools)) {
			tools = append(tools, map[string]any{"name": name, "inputSchema": map[string]any{"type": "object"}})
		}
		result = cacheable(map[string]any{"tools": tools})
	case "tools/call":
		p := msg.Params
		if step, ok := mrtrTools[p.Name]; ok {
			result = step(p.InputResponses, p.RequestState)
		} else {
			rpcErr = map[string]any{"code": -32602, "message": "Unknown tool: " + p.Name}
		}
	case "prompts/list":
		result = cacheable(map[string]any{"prompts": []any{}})
	case "resources/list":
		result = cacheable(map[string]any{"resources": []any{map[string]any{"uri": "test://static", "name": "static", "mimeType": "text/plain"}}})
	case "resources/templates/list":
		result = cacheable(map[string]any{"resourceTemplates": []any{}})
	case "resources/read":
		if msg.Params.URI == "test://static" {
			result = cacheable(map[string]any{"contents": []any{map[string]any{"uri": "test://static", "mimeType": "text/plain", "text": "static"}}})
		} else {
			rpcErr = map[string]any{"code": -32602, "message": "Resource not found", "data": map[string]any{"uri": msg.Params.URI}}
		}
	case "ping":
		result = map[string]any{"resultType": "complete"}
	default:
		rpcErr = map[string]any{"code": -32601, "message": "Method not found"}
	}
	resp := map[string]any{"jsonrpc": "2.0", "id": msg.ID}
	if rpcErr != nil {
		resp["error"] = rpcErr
	} else {
		resp["result"] = result
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// headerMismatch checks SEP-2243's standard headers against the body:
// Mcp-Method must be present and name the method, and Mcp-Name must be
// present and name the tool or prompt, or the resource URI, whenever the
// body has one, exactly, apart from surrounding whitespace.
func headerMismatch(h http.Header, method, name, uri string) string {
	if v := h.Values("Mcp-Method"); len(v) != 1 || strings.TrimSpace(v[0]) != method {
		return "Mcp-Method"
	}
	want := name
	if method == "resources/read" {
		want = uri
	}
	v := h.Values("Mcp-Name")
	switch {
	case want == "" && len(v) == 0:
		return ""
	case len(v) != 1 || strings.TrimSpace(v[0]) != want:
		return "Mcp-Name"
	}
	return ""
}

// elicit is an elicitation/create input request for one string or boolean
// field.
func elicit(message, field, typ string) map[string]any {
	return map[string]any{"method": "elicitation/create", "params": map[string]any{
		"message": message,
		"requestedSchema": map[string]any{"type": "object",
			"properties": map[string]any{field: map[string]any{"type": typ}}, "required": []string{field}},
	}}
}

func inputRequired(requests map[string]any, state string) map[string]any {
	r := map[string]any{"resultType": "input_required", "inputRequests": requests}
	if state != "" {
		r["requestState"] = state
	}
	return r
}

func complete(text string) map[string]any {
	return map[string]any{"resultType": "complete", "content": []any{map[string]any{"type": "text", "text": text}}}
}

// mrtrTools are SEP-2322's test tools, by name: each takes the client's
// inputResponses and echoed requestState and returns the next result.
var mrtrTools = map[string]func(in map[string]json.RawMessage, state *string) map[string]any{
	"test_input_required_result_elicitation": func(in map[string]json.RawMessage, _ *string) map[string]any {
		if a, ok := in["user_name"]; ok {
			var r struct {
				Content struct {
					Name string `json:"name"`
				} `json:"content"`
			}
			json.Unmarshal(a, &r)
			return complete("Hello, " + r.Content.Name + "!")
		}
		return inputRequired(map[string]any{"user_name": elicit("What is your name?", "name", "string")}, "")
	},
	"test_input_required_result_sampling": func(in map[string]json.RawMessage, _ *string) map[string]any {
		if a, ok := in["capital_question"]; ok {
			var r struct {
				Content struct {
					Text string `json:"text"`
				} `json:"content"`
			}
			json.Unmarshal(a, &r)
			return complete("The model said: " + r.Content.Text)
		}
		return inputRequired(map[string]any{"capital_question": map[string]any{"method": "sampling/createMessage", "params": map[string]any{
			"messages":  []any{map[string]any{"role": "user", "content": map[string]any{"type": "text", "text": "What is the capital of France?"}}},
			"maxTokens": 100,
		}}}, "")
	},
	"test_input_required_result_list_roots": func(in map[string]json.RawMessage, _ *string) map[string]any {
		if a, ok := in["client_roots"]; ok {
			var r struct {
				Roots []struct {
					URI string `json:"uri"`
				} `json:"roots"`
			}
			json.Unmarshal(a, &r)
			var uris []string
			for _, root := range r.Roots {
				uris = append(uris, root.URI)
			}
			return complete("Roots: " + strings.Join(uris, ", "))
		}
		return inputRequired(map[string]any{"client_roots": map[string]any{"method": "roots/list", "params": map[string]any{}}}, "")
	},
	"test_input_required_result_request_state": func(in map[string]json.RawMessage, state *string) map[string]any {
		if _, ok := in["confirm"]; ok && state != nil && *state == "played-state-1" {
			return complete("state-ok: confirmed")
		}
		return inputRequired(map[string]any{"confirm": elicit("Please confirm", "ok", "boolean")}, "played-state-1")
	},
	"test_input_required_result_multi_round": func(in map[string]json.RawMessage, state *string) map[string]any {
		switch {
		case in["step2"] != nil && state != nil && *state == "played-round-2":
			return complete("Both steps answered")
		case in["step1"] != nil && state != nil && *state == "played-round-1":
			return inputRequired(map[string]any{"step2": elicit("Step 2: What is your favorite color?", "color", "string")}, "played-round-2")
		}
		return inputRequired(map[string]any{"step1": elicit("Step 1: What is your name?", "name", "string")}, "played-round-1")
	},
}

// TestConformance2026ThroughRelay runs 2026-07-28 scenarios that
// server-everything cannot pass (caching hints, resource not found, MRTR,
// SEP-2243 header validation)
// against a hand-played 2026 server, directly and through the relay: each
// must pass both ways, and through the relay every round of an
// input-required tool call is held for the person.
func TestConformance2026ThroughRelay(t *testing.T) {
	dir := peersDir(t)
	hs := httptest.NewServer(http.HandlerFunc(played2026))
	t.Cleanup(hs.Close)
	upstream := relay.Server{ID: "played", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: hs.URL + "/mcp"}), nil
	}}
	endpoint, person := startRelay(t, upstream, approveAll)
	paths := []*cfPath{{name: "direct", url: hs.URL + "/mcp"}, {name: "relay-http", url: endpoint, bearer: true}}
	suite := cfSuites[1]
	out := filepath.Join(dir, "out", "conformance-2026")
	os.RemoveAll(out)
	run := func(sc string, p *cfPath) cfResult {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := cfCommand(ctx, dir, suite, "server", "--url", p.url, "--scenario", sc, "-o", filepath.Join(out, p.name))
		if p.bearer {
			cmd.Env = append(cmd.Env, "BEARER_TOKEN="+token)
		}
		log, _ := cmd.CombinedOutput()
		r := readResults(filepath.Join(out, p.name))[sc]
		var checks []string
		for _, c := range r.checks {
			checks = append(checks, c.ID+"="+c.Status)
		}
		t.Logf("%s on %s: %s", sc, p.name, strings.Join(checks, " "))
		if !r.ran || len(r.checks) == 0 {
			r.pass = false
			r.note = "no checks ran:\n" + string(log)
		}
		return r
	}
	for _, sc := range []string{"caching", "sep-2164-resource-not-found",
		"input-required-result-basic-elicitation", "input-required-result-basic-sampling", "input-required-result-basic-list-roots",
		"input-required-result-request-state", "input-required-result-multi-round"} {
		for _, p := range paths {
			if r := run(sc, p); !r.pass {
				t.Errorf("%s on %s fails:\n  %s", sc, p.name, strings.Join(r.failed(), "\n  "))
			}
		}
	}
	// Every round of every input-required tool call went to the person:
	// a retry carrying inputResponses is a new call to approve.
	rounds := map[string]int{}
	for _, tool := range person.tools() {
		rounds[tool]++
	}
	for tool, want := range map[string]int{"test_input_required_result_elicitation": 2, "test_input_required_result_sampling": 2,
		"test_input_required_result_list_roots": 2, "test_input_required_result_request_state": 2, "test_input_required_result_multi_round": 3} {
		if rounds[tool] != want {
			t.Errorf("%s was held %d times, want %d (once per round)", tool, rounds[tool], want)
		}
	}

	// SEP-2243 header validation: the relay refuses a 2026-07-28 host
	// whose Mcp-Method or Mcp-Name is missing or disagrees with the body
	// with HTTP 400 and -32020, as the server behind it would.
	for _, p := range paths {
		if r := run("http-header-validation", p); !r.pass {
			t.Errorf("http-header-validation on %s fails:\n  %s", p.name, strings.Join(r.failed(), "\n  "))
		}
	}
}
