package relay

import (
	"encoding/json"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
)

// A subscriptions/listen stream (2026-07-28) names its subscription by the
// JSON-RPC id of the listen request, in _meta under
// io.modelcontextprotocol/subscriptionId, on every message: the
// acknowledgement, each change notification and the closing answer. The
// server knows the request by the relay's upstream id, the host by its own,
// so the relay maps that id as it maps the request's: a host that waits
// for its own id in the acknowledgement would otherwise wait forever.

// subscriptionID returns the subscription id in a payload's _meta, nil
// when there is none. Members are read by their exact names.
func subscriptionID(payload json.RawMessage) json.RawMessage {
	var members, meta map[string]json.RawMessage
	if json.Unmarshal(payload, &members) != nil || json.Unmarshal(members["_meta"], &meta) != nil {
		return nil
	}
	return meta[mcp.MetaKeySubscriptionID]
}

// withSubscriptionID returns payload with the subscription id in its _meta
// replaced by id. Every other byte is kept.
func withSubscriptionID(payload, id json.RawMessage) (json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil {
		return nil, err
	}
	meta, err := replaceMember(members["_meta"], mcp.MetaKeySubscriptionID, id)
	if err != nil {
		return nil, err
	}
	return replaceMember(payload, "_meta", meta)
}

// listenNotification maps the subscription id of a server notification
// that belongs to a forwarded subscriptions/listen request to the host's
// id, and returns the message with the upstream id of the request it
// belongs to, for routing. A notification on another request's HTTP
// stream, or naming no open listen request, is returned as it came.
func (s *session) listenNotification(m jsonrpc.Message, related json.RawMessage) (jsonrpc.Message, json.RawMessage) {
	if m.Kind != jsonrpc.KindNotification || m.Params == nil {
		return m, related
	}
	sub := subscriptionID(m.Params)
	if sub == nil {
		return m, related
	}
	s.mu.Lock()
	req := s.inflight[string(sub)]
	s.mu.Unlock()
	if req == nil || req.method != "subscriptions/listen" || (related != nil && string(related) != req.upID) {
		return m, related
	}
	params, err := withSubscriptionID(m.Params, req.hostID)
	if err != nil {
		s.r.log.Warn("passing a subscription notification on as it came: its _meta could not be read", "server", s.srv.ID, "err", err)
		return m, related
	}
	mapped, err := jsonrpc.Parse(m.WithParams(params))
	if err != nil {
		return m, related
	}
	return mapped, json.RawMessage(req.upID)
}

// listenAnswer maps the subscription id in the closing answer to a
// subscriptions/listen request to the host's id.
func (s *session) listenAnswer(req *request, m jsonrpc.Message) jsonrpc.Message {
	if req.method != "subscriptions/listen" || m.Result == nil || string(subscriptionID(m.Result)) != req.upID {
		return m
	}
	result, err := withSubscriptionID(m.Result, req.hostID)
	if err != nil {
		return m
	}
	mapped, err := jsonrpc.Parse(m.WithIDResult(nil, result))
	if err != nil {
		return m
	}
	return mapped
}
