package peers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// played2026 is a hand-played 2026-07-28 server for what server-everything
// lacks: stateless server/discover, caching hints (ttlMs, cacheScope) on
// every cacheable result, and SEP-2164's error for a resource that does not
// exist. It answers each POST on its own, with no session.
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
			URI string `json:"uri"`
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
		result = cacheable(map[string]any{"tools": []any{}})
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

// TestConformance2026ThroughRelay runs the 2026-07-28 scenarios that
// server-everything cannot pass against a hand-played 2026 server, directly
// and through the relay: each must pass both ways.
func TestConformance2026ThroughRelay(t *testing.T) {
	dir := peersDir(t)
	hs := httptest.NewServer(http.HandlerFunc(played2026))
	t.Cleanup(hs.Close)
	upstream := relay.Server{ID: "played", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: hs.URL + "/mcp"}), nil
	}}
	endpoint, _ := startRelay(t, upstream, approveAll)
	paths := []*cfPath{{name: "direct", url: hs.URL + "/mcp"}, {name: "relay-http", url: endpoint, bearer: true}}
	suite := cfSuites[1]
	out := filepath.Join(t.TempDir(), "out")
	for _, sc := range []string{"caching", "sep-2164-resource-not-found"} {
		for _, p := range paths {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			cmd := cfCommand(ctx, dir, suite, "server", "--url", p.url, "--scenario", sc, "-o", filepath.Join(out, p.name))
			if p.bearer {
				cmd.Env = append(cmd.Env, "BEARER_TOKEN="+token)
			}
			log, _ := cmd.CombinedOutput()
			cancel()
			r := readResults(filepath.Join(out, p.name))[sc]
			var checks []string
			for _, c := range r.checks {
				checks = append(checks, c.ID+"="+c.Status)
			}
			t.Logf("%s on %s: %s", sc, p.name, strings.Join(checks, " "))
			if !r.ran || !r.pass || len(r.checks) == 0 {
				t.Errorf("%s on %s fails:\n  %s\n%s", sc, p.name, strings.Join(r.failed(), "\n  "), log)
			}
		}
	}
}
