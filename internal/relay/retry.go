package relay

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// retryMembers returns params.inputResponses and params.requestState of a
// tools/call exactly as sent, nil when absent: a 2026-07-28 client's retry
// after an input_required result. They are read by exact member name, as
// servers read them (params were checked unambiguous before).
func retryMembers(params json.RawMessage) (inputResponses, requestState json.RawMessage) {
	var members map[string]json.RawMessage
	if json.Unmarshal(params, &members) != nil {
		return nil, nil
	}
	return members["inputResponses"], members["requestState"]
}

// checkEdited refuses edited arguments that are not one unambiguous JSON
// object. The guard judged them against policy before the person's
// approval counted; this keeps the relay from sending anything else.
func checkEdited(args json.RawMessage) error {
	if t := bytes.TrimSpace(args); !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return errors.New("edited arguments are not a JSON object")
	}
	return jsonrpc.CheckUnambiguous(args)
}
