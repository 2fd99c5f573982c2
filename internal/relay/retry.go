package relay

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// checkEdited refuses edited arguments that are not one unambiguous JSON
// object. The guard judged them against policy before the person's
// approval counted; this keeps the relay from sending anything else.
func checkEdited(args json.RawMessage) error {
	if t := bytes.TrimSpace(args); !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return errors.New("edited arguments are not a JSON object")
	}
	return jsonrpc.CheckUnambiguous(args)
}
