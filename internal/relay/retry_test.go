package relay

import (
	"encoding/json"
	"testing"
)

func TestRetryMembersAreReadByExactName(t *testing.T) {
	tests := []struct {
		params, responses, state string
		refused                  bool
	}{
		{params: `{"name":"x","inputResponses":{"q":{"action":"accept"}},"requestState":"s"}`, responses: `{"q":{"action":"accept"}}`, state: `"s"`},
		{params: `{"name":"x","InputResponses":{"q":{}}}`, refused: true},
		{params: `{"name":"x","requestſtate":"s"}`, refused: true},
		{params: `{"name":"x"}`},
	}
	for _, tt := range tests {
		p, err := readCall(json.RawMessage(tt.params))
		if (err != nil) != tt.refused {
			t.Errorf("%s: err %v, want refused %v", tt.params, err, tt.refused)
			continue
		}
		if string(p.InputResponses) != tt.responses || string(p.RequestState) != tt.state {
			t.Errorf("%s: got %s / %s, want %s / %s", tt.params, p.InputResponses, p.RequestState, tt.responses, tt.state)
		}
	}
}

func TestCheckEdited(t *testing.T) {
	for args, ok := range map[string]bool{
		`{"a":1}`:         true,
		` {"a":{"b":2}} `: true,
		`{"a":1,"A":2}`:   false,
		`{"a":1,"a":2}`:   false,
		`[1]`:             false,
		`"x"`:             false,
		`{`:               false,
		``:                false,
	} {
		if err := checkEdited(json.RawMessage(args)); (err == nil) != ok {
			t.Errorf("checkEdited(%s) = %v, want ok %v", args, err, ok)
		}
	}
}
