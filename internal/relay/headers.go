package relay

import (
	"bytes"
	"encoding/json"
	"errors"
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
	raw, ok := rawArgumentAt(args, path)
	if !ok {
		return nil, false
	}
	return headerPrimitive(raw)
}

// rawArgumentAt returns the value at path in a call's arguments, reading
// every level by exact name; ok is false when there is none or it is null.
func rawArgumentAt(args json.RawMessage, path []string) (json.RawMessage, bool) {
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
	return cur, true
}

// headerPrimitive decodes a JSON value a header may carry: a string, a
// bool or an integer within JavaScript's safe range (as int64).
func headerPrimitive(cur json.RawMessage) (any, bool) {
	cur = json.RawMessage(strings.TrimSpace(string(cur)))
	if len(cur) == 0 {
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
//
// A result byte-identical to the last one learned from is skipped: servers
// list the same tools again and again, and it would teach the same.
func (s *session) learnParamHeaders(result json.RawMessage) {
	s.mu.Lock()
	same := bytes.Equal(s.learnedFrom, result)
	s.mu.Unlock()
	if same {
		return
	}
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
	s.learnedFrom = nil
	if len(result) <= 1<<20 {
		s.learnedFrom = bytes.Clone(result)
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

// checkHostHeaders checks the request metadata headers the AI app sent
// with m against m's body, as a 2026-07-28 server must (SEP-2243):
// Mcp-Method is present once and names the method, and for tools/call,
// prompts/get and resources/read Mcp-Name is present once and, decoded,
// names the tool, prompt or resource URI exactly. Values are compared
// case-sensitively after the optional whitespace around a field value
// (RFC 9110 section 5.5). Requests of older revisions, notifications and
// answers are not checked: the relay never forwards those headers, it
// derives its own (upstreamHeaders).
func checkHostHeaders(h http.Header, m jsonrpc.Message) error {
	if m.Kind != jsonrpc.KindRequest || !mcp.IsModernProtocol(protocolVersion(h, m)) {
		return nil
	}
	method, err := oneHeader(h, mcp.HeaderMethod)
	if err != nil {
		return err
	}
	if method != m.Method {
		return mcp.HeaderMismatchError{Header: mcp.HeaderMethod, Reason: "does not name the method in the message"}
	}
	member := nameMember(m.Method)
	if member == "" {
		return nil
	}
	raw, err := oneHeader(h, mcp.HeaderName)
	if err != nil {
		return err
	}
	name, ok := mcp.DecodeHeaderValue(raw)
	if !ok {
		return mcp.HeaderMismatchError{Header: mcp.HeaderName, Reason: "invalid Base64 encoding"}
	}
	body, ok := memberString(m.Params, member)
	if !ok || name != body {
		return mcp.HeaderMismatchError{Header: mcp.HeaderName, Reason: "does not match params." + member + " in the message"}
	}
	return nil
}

// checkParamHeaders checks, for a 2026-07-28 tools/call, the Mcp-Param-*
// headers of every x-mcp-header annotation the server declared for the
// tool against the arguments in the body, as mcp-go's server does: an
// argument that is present and not null needs its header, once, whose
// decoded value equals the argument's header form (a number by value); an
// absent or null argument allows no header with a value. A tool whose
// annotations the relay has not seen is not checked here: the relay sends
// the server headers derived from the body in any case.
func (s *session) checkParamHeaders(h http.Header, m jsonrpc.Message) error {
	if m.Kind != jsonrpc.KindRequest || m.Method != "tools/call" || !mcp.IsModernProtocol(protocolVersion(h, m)) {
		return nil
	}
	tool, ok := memberString(m.Params, "name")
	if !ok {
		return nil // checkHostHeaders already refused it
	}
	s.mu.Lock()
	bindings := s.paramHeaders[tool]
	s.mu.Unlock()
	if len(bindings) == 0 {
		return nil
	}
	var args json.RawMessage
	if top, err := jsonrpc.Members(m.Params, "arguments"); err == nil {
		args = top["arguments"]
	} else {
		return mcp.HeaderMismatchError{Reason: "the call's arguments cannot be read"}
	}
	for _, b := range bindings {
		name := mcp.HeaderParamPrefix + b.header
		vs := h.Values(name)
		raw, present := rawArgumentAt(args, b.path)
		if !present {
			if len(vs) > 0 && trimOWS(vs[0]) != "" {
				return mcp.HeaderMismatchError{Header: name, Reason: "sent for an argument the call does not have"}
			}
			continue
		}
		got, err := oneHeader(h, name)
		if err != nil {
			return err
		}
		decoded, ok := mcp.DecodeHeaderValue(got)
		if !ok {
			return mcp.HeaderMismatchError{Header: name, Reason: "invalid Base64 encoding"}
		}
		want, ok := headerPrimitive(raw)
		if !ok || !headerEqual(decoded, want) {
			return mcp.HeaderMismatchError{Header: name, Reason: "does not match the argument in the message"}
		}
	}
	return nil
}

// nameMember is the params member Mcp-Name mirrors for method, or "".
func nameMember(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read":
		return "uri"
	}
	return ""
}

// oneHeader returns the value of a header sent exactly once, without the
// optional whitespace around it.
func oneHeader(h http.Header, name string) (string, error) {
	switch vs := h.Values(name); len(vs) {
	case 0:
		return "", mcp.HeaderMismatchError{Header: name, Reason: "missing required header"}
	case 1:
		return trimOWS(vs[0]), nil
	default:
		return "", mcp.HeaderMismatchError{Header: name, Reason: "sent more than once"}
	}
}

// trimOWS removes the optional whitespace (spaces and tabs) around a field
// value.
func trimOWS(v string) string { return strings.Trim(v, " \t") }

// headerEqual reports whether a decoded header value stands for the body
// value want (a string, bool or int64 from headerPrimitive): a number
// compares by value, anything else by its exact header form.
func headerEqual(decoded string, want any) bool {
	switch w := want.(type) {
	case int64:
		f, err := strconv.ParseFloat(decoded, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
			return false
		}
		return int64(f) == w
	case bool:
		return decoded == strconv.FormatBool(w)
	case string:
		return decoded == w
	}
	return false
}

// refuseHeaders answers HTTP 400 with a -32020 (header mismatch) error, as
// a 2026-07-28 server does, when check finds the headers of the AI app's
// POST disagree with one of its messages, and reports whether it did.
// Nothing of such a POST reaches the person or the server.
func (r *Relay) refuseHeaders(w http.ResponseWriter, req *http.Request, srv *Server, msgs []jsonrpc.Message, check func(http.Header, jsonrpc.Message) error) bool {
	for _, m := range msgs {
		err := check(req.Header, m)
		if err == nil {
			continue
		}
		var mismatch mcp.HeaderMismatchError
		header := ""
		if errors.As(err, &mismatch) {
			header = mismatch.Header
		}
		r.log.Warn("refusing a request whose headers disagree with its message", "server", srv.ID, "header", header)
		writeJSON(w, http.StatusBadRequest, jsonrpc.ErrorResponse(m.ID, mcp.HEADER_MISMATCH, capitalize(err.Error())))
		return true
	}
	return false
}

// capitalize upper-cases the first letter of an error for the AI app.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
