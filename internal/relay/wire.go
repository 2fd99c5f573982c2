package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// clientNotifications are the notifications an MCP client may send a
// server, as the schema's ClientNotification lists them in every revision
// from 2024-11-05 to 2026-07-28. The relay forwards no other message
// without an id from the AI app: a request method sent as a notification
// (a tools/call, a resources/read) would otherwise skip every check.
var clientNotifications = map[string]bool{
	"notifications/initialized":        true, // 2024-11-05 to 2025-11-25
	"notifications/cancelled":          true, // every revision
	"notifications/progress":           true, // 2024-11-05 to 2025-11-25
	"notifications/roots/list_changed": true, // 2024-11-05 to 2025-11-25
	"notifications/tasks/status":       true, // 2025-11-25
}

// DropAuditor may be implemented by a Filter to be told of each message
// from the AI app that the relay dropped because the protocol gives it no
// place: a request method sent without an id, or an answer to no open
// request of the server. method is the message's method, or "response".
// reason is a sentence a person can read.
type DropAuditor interface {
	Dropped(server, method, reason string)
}

// drop records that a message from the AI app was not forwarded.
func (s *session) drop(m jsonrpc.Message, reason string) {
	method := m.Method
	if m.Kind == jsonrpc.KindResponse {
		method = "response"
	}
	if len(method) > 100 {
		method = method[:100]
	}
	s.r.log.Warn("dropping a message from the AI app", "server", s.srv.ID, "method", method, "why", reason)
	if a, ok := s.r.o.Filter.(DropAuditor); ok {
		a.Dropped(s.srv.ID, method, reason)
	}
}

// Reasons a host message is dropped, for the audit.
const (
	reasonNotification = "The AI app sent a message without an id that is not a notification AI apps may send (a tool call sent that way would get no answer and could not be reviewed); Countersign did not pass it on."
	reasonNoRequest    = "The AI app sent an answer to a request the server has not made, or has already had answered; Countersign did not pass it on."
)

// maxServerRequests bounds the server requests kept waiting for the AI
// app's answer in one session.
const maxServerRequests = 1000

// openServerRequestLocked notes a request of the server delivered to the
// AI app, so that its answer may go back once. s.mu must be held.
func (s *session) openServerRequestLocked(id json.RawMessage) {
	key := idKey(id)
	if s.serverReqs == nil {
		s.serverReqs = make(map[string]bool)
	}
	if s.serverReqs[key] {
		return
	}
	if len(s.serverOrder) >= maxServerRequests {
		delete(s.serverReqs, s.serverOrder[0])
		s.serverOrder = s.serverOrder[1:]
	}
	s.serverReqs[key] = true
	s.serverOrder = append(s.serverOrder, key)
}

// takeServerRequest reports whether id names an open request of the server
// and closes it: each request is answered once.
func (s *session) takeServerRequest(id json.RawMessage) bool {
	key := idKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.serverReqs[key] {
		return false
	}
	delete(s.serverReqs, key)
	for i, k := range s.serverOrder {
		if k == key {
			s.serverOrder = append(s.serverOrder[:i], s.serverOrder[i+1:]...)
			break
		}
	}
	return true
}

// idKey is a JSON-RPC id as a map key: equal ids written differently
// ("\u0061" and "a", 1e2 and 100, as a host that decodes and re-encodes
// the id would write it back) get one key, a string and a number never
// share one, and null matches nothing the server can send.
func idKey(id json.RawMessage) string {
	raw := strings.TrimSpace(string(id))
	switch {
	case raw == "" || raw == "null":
		return "z"
	case raw[0] == '"':
		var str string
		if json.Unmarshal(id, &str) == nil {
			return "s" + str
		}
	default:
		if f, err := strconv.ParseFloat(raw, 64); err == nil {
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return "n" + strconv.FormatInt(int64(f), 10)
			}
			if strings.Trim(raw, "-0123456789") != "" {
				return "n" + strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	}
	return "r" + raw
}

// callParams are the members of a tools/call's params the relay reads.
type callParams struct {
	Name      string
	Arguments json.RawMessage // as given; nil when absent
	Meta      struct {
		ProgressToken json.RawMessage // nil when absent
	}
	// InputResponses and RequestState are a 2026-07-28 client's retry
	// after an input_required result, exactly as sent; nil when absent.
	InputResponses json.RawMessage
	RequestState   json.RawMessage
}

// errCallParams explains a tools/call whose params cannot be read.
var errCallParams = errors.New("relay: tools/call params")

// readCall reads a tools/call's params by exact member name, as the
// TypeScript, Python and Java SDKs do. It refuses params in which another
// member would be taken for name, arguments, _meta, progressToken,
// inputResponses or requestState by a
// reader that matches names loosely, as Go's encoding/json does: what the
// person reviews must be what any server runs.
func readCall(params json.RawMessage) (callParams, error) {
	var p callParams
	if jsonrpc.IsNull(params) {
		return p, fmt.Errorf("%w: none given", errCallParams)
	}
	top, err := jsonrpc.Members(params, "name", "arguments", "_meta", "inputResponses", "requestState")
	if err != nil {
		return p, fmt.Errorf("%w: %w", errCallParams, err)
	}
	if err := json.Unmarshal(top["name"], &p.Name); err != nil || p.Name == "" {
		return p, fmt.Errorf("%w: no tool name", errCallParams)
	}
	p.Arguments = top["arguments"]
	p.InputResponses, p.RequestState = top["inputResponses"], top["requestState"]
	if meta := top["_meta"]; !jsonrpc.IsNull(meta) {
		mm, err := jsonrpc.Members(meta, "progressToken")
		if err != nil {
			return p, fmt.Errorf("%w: _meta: %w", errCallParams, err)
		}
		p.Meta.ProgressToken = mm["progressToken"]
	}
	return p, nil
}

// callRefusal is the message the AI app gets for a tools/call whose params
// readCall refused.
func callRefusal(err error) string {
	if errors.Is(err, jsonrpc.ErrFoldedName) {
		return "Countersign refused this call: its parameters use a name that differs from name, arguments, _meta, inputResponses or requestState only in case, which servers read differently"
	}
	if errors.Is(err, jsonrpc.ErrDuplicateKey) {
		return "Countersign refused this call: its parameters repeat a name"
	}
	return "tools/call needs params with a tool name"
}

// memberString reads one string member of an object by exact name; ok is
// false when the object cannot be read that way or the member is not a
// string.
func memberString(obj json.RawMessage, name string) (string, bool) {
	if jsonrpc.IsNull(obj) {
		return "", false
	}
	mm, err := jsonrpc.Members(obj, name)
	if err != nil {
		return "", false
	}
	var v string
	if json.Unmarshal(mm[name], &v) != nil {
		return "", false
	}
	return v, true
}
