package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// replaceMember returns a copy of the JSON object raw with the value of its
// top-level member key replaced by val. Every other byte is kept. It fails
// when raw is not one JSON object naming key exactly once, or val is not
// JSON, so that a splice can never break a message's framing.
func replaceMember(raw []byte, key string, val []byte) ([]byte, error) {
	if !json.Valid(val) {
		return nil, fmt.Errorf("relay: replacing %q: the new value is not JSON", key)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("relay: replacing %q: %w", key, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("relay: replacing %q: %w", key, errNotObject)
	}
	start, end := -1, -1
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("relay: replacing %q: %w", key, err)
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("relay: replacing %q: member %q: %w", key, name, err)
		}
		if name != key {
			continue
		}
		if start >= 0 {
			return nil, fmt.Errorf("relay: replacing %q: the object names it twice", key)
		}
		end = int(dec.InputOffset())
		start = end - len(v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("relay: replacing %q: %w", key, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("relay: replacing %q: data after the object", key)
	}
	if start < 0 {
		return nil, fmt.Errorf("relay: replacing %q: the object has no such member", key)
	}
	out := make([]byte, 0, len(raw)-(end-start)+len(val))
	out = append(out, raw[:start]...)
	out = append(out, val...)
	return append(out, raw[end:]...), nil
}

var errNotObject = errors.New("not a JSON object")

// filterError passes an error answer the relay built from what a server or
// its connection said (an HTTP error body, a dial failure) through the
// filter, as the server's own errors are, so that it carries no secret.
func (r *Relay) filterError(server, method string, msg []byte) []byte {
	f := r.o.Filter
	if f == nil {
		return msg
	}
	m, err := jsonrpc.Parse(msg)
	if err != nil || m.Error == nil {
		return msg
	}
	e := f.ServerMessage(server, ServerMessage{Kind: jsonrpc.KindResponse, Method: method, Payload: m.Error, Error: true})
	if e == nil {
		return msg
	}
	out, err := replaceMember(msg, "error", e)
	if err != nil {
		return jsonrpc.ErrorResponse(m.ID, jsonrpc.CodeConnectionClosed, "Countersign could not reach the server.")
	}
	return out
}
