package relay

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
)

// forwardHeaders picks the headers of the AI app's POST that go upstream:
// only MCP-Protocol-Version. Mcp-Method, Mcp-Name and Mcp-Param-* describe
// the message, and the relay derives them from the message it forwards
// (upstreamHeaders), never from what the AI app wrote in its headers, which
// need not match what the person approved.
func forwardHeaders(h http.Header) http.Header {
	out := http.Header{}
	if vs := h.Values(mcp.HeaderProtocolVersion); len(vs) > 0 {
		out[mcp.HeaderProtocolVersion] = append([]string(nil), vs...)
	}
	return out
}

// upstreamHeaders returns base plus the request metadata headers of the
// 2026-07-28 Streamable HTTP transport for m, derived from m's own bytes:
// Mcp-Method, Mcp-Name (params.name or params.uri, read by exact name) and,
// for tools/call, an Mcp-Param-{Name} for each argument the tool's
// x-mcp-header annotations name. Older revisions get base unchanged.
func (s *session) upstreamHeaders(base http.Header, m jsonrpc.Message) http.Header {
	out := base.Clone()
	if out == nil {
		out = http.Header{}
	}
	if m.Method == "" || !mcp.IsModernProtocol(protocolVersion(base, m)) {
		return out
	}
	out.Set(mcp.HeaderMethod, m.Method)
	var nameMember string
	switch m.Method {
	case "tools/call", "prompts/get":
		nameMember = "name"
	case "resources/read":
		nameMember = "uri"
	}
	if nameMember == "" {
		return out
	}
	name, ok := memberString(m.Params, nameMember)
	if !ok {
		return out
	}
	if enc, ok := mcp.EncodeHeaderValue(name); ok {
		out.Set(mcp.HeaderName, enc)
	}
	if m.Method != "tools/call" {
		return out
	}
	s.mu.Lock()
	bindings := s.paramHeaders[name]
	s.mu.Unlock()
	if len(bindings) == 0 {
		return out
	}
	top, err := jsonrpc.Members(m.Params, "arguments")
	if err != nil {
		return out
	}
	for _, b := range bindings {
		if v, ok := argumentAt(top["arguments"], b.path); ok {
			if enc, ok := mcp.EncodeHeaderValue(v); ok {
				out.Set(mcp.HeaderParamPrefix+b.header, enc)
			}
		}
	}
	return out
}

// protocolVersion is the revision a message speaks: its MCP-Protocol-Version
// header, else the one in its params' _meta.
func protocolVersion(h http.Header, m jsonrpc.Message) string {
	if v := h.Get(mcp.HeaderProtocolVersion); v != "" {
		return v
	}
	if jsonrpc.IsNull(m.Params) {
		return ""
	}
	mm, err := jsonrpc.Members(m.Params, "_meta")
	if err != nil {
		return ""
	}
	v, _ := memberString(mm["_meta"], mcp.MetaKeyProtocolVersion)
	return v
}

// argumentAt returns the value at path in a call's arguments as a header
// primitive (string, bool or int64), reading every level by exact name.
// ok is false when there is no such value, it is null, or it is of a type
// no header carries.
func argumentAt(args json.RawMessage, path []string) (any, bool) {
	cur := args
	for _, key := range path {
		if jsonrpc.IsNull(cur) {
			return nil, false
		}
		mm, err := jsonrpc.Members(cur, key)
		if err != nil {
			return nil, false
		}
		v, ok := mm[key]
		if !ok {
			return nil, false
		}
		cur = v
	}
	if jsonrpc.IsNull(cur) {
		return nil, false
	}
	switch cur[0] {
	case '"':
		var v string
		if json.Unmarshal(cur, &v) != nil {
			return nil, false
		}
		return v, true
	case 't', 'f':
		var v bool
		if json.Unmarshal(cur, &v) != nil {
			return nil, false
		}
		return v, true
	}
	f, err := strconv.ParseFloat(string(cur), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
		return nil, false
	}
	return int64(f), true
}

// paramHeader is one x-mcp-header annotation: the argument at path travels
// in Mcp-Param-{header}.
type paramHeader struct {
	path   []string
	header string
}

// learnParamHeaders records the x-mcp-header annotations of every tool in
// a tools/list result from the server. A tool whose annotations break the
// rules of the 2026-07-28 transport gets none: hosts must not call it, and
// a server that checks its headers refuses the call.
func (s *session) learnParamHeaders(result json.RawMessage) {
	top, err := jsonrpc.Members(result, "tools")
	if err != nil {
		return
	}
	var tools []json.RawMessage
	if json.Unmarshal(top["tools"], &tools) != nil {
		return
	}
	learned := make(map[string][]paramHeader, len(tools))
	for _, raw := range tools {
		t, err := jsonrpc.Members(raw, "name", "inputSchema")
		if err != nil {
			continue
		}
		var name string
		if json.Unmarshal(t["name"], &name) != nil || name == "" {
			continue
		}
		var bindings []paramHeader
		if !collectParamHeaders(t["inputSchema"], nil, map[string]bool{}, &bindings, 0) {
			bindings = nil
		}
		learned[name] = bindings
	}
	s.mu.Lock()
	if s.paramHeaders == nil {
		s.paramHeaders = make(map[string][]paramHeader)
	}
	for name, b := range learned {
		s.paramHeaders[name] = b
	}
	s.mu.Unlock()
}

// maxSchemaDepth bounds how deep collectParamHeaders follows properties.
const maxSchemaDepth = 32

// collectParamHeaders adds the annotations under one schema's properties
// to out. It reports false when an annotation is not valid.
func collectParamHeaders(schema json.RawMessage, prefix []string, seen map[string]bool, out *[]paramHeader, depth int) bool {
	if jsonrpc.IsNull(schema) || depth > maxSchemaDepth {
		return true
	}
	sm, err := jsonrpc.Members(schema, "properties")
	if err != nil {
		return true // not an object schema: nothing is reachable
	}
	var props map[string]json.RawMessage
	if jsonrpc.IsNull(sm["properties"]) || json.Unmarshal(sm["properties"], &props) != nil {
		return true
	}
	for key, prop := range props {
		path := append(append([]string(nil), prefix...), key)
		pm, err := jsonrpc.Members(prop, "x-mcp-header", "type")
		if err != nil {
			continue
		}
		if raw, ok := pm["x-mcp-header"]; ok {
			var header string
			if json.Unmarshal(raw, &header) != nil || !validHeaderToken(header) ||
				seen[strings.ToLower(header)] || !primitiveType(pm["type"]) {
				return false
			}
			seen[strings.ToLower(header)] = true
			*out = append(*out, paramHeader{path: path, header: header})
		}
		if !collectParamHeaders(prop, path, seen, out, depth+1) {
			return false
		}
	}
	return true
}

// primitiveType reports whether a schema's type is one a header may carry:
// string, integer or boolean (a list of them too).
func primitiveType(raw json.RawMessage) bool {
	var names []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		names = []string{one}
	} else if json.Unmarshal(raw, &names) != nil || len(names) == 0 {
		return false
	}
	for _, n := range names {
		if n != "string" && n != "integer" && n != "boolean" {
			return false
		}
	}
	return true
}

// validHeaderToken reports whether s is an HTTP field-name token (1*tchar).
func validHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
