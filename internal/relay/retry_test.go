package relay

import (
	"encoding/json"
	"testing"
)

func TestRetryMembersAreReadByExactName(t *testing.T) {
	tests := []struct {
		params, responses, state string
	}{
		{`{"name":"x","inputResponses":{"q":{"action":"accept"}},"requestState":"s"}`, `{"q":{"action":"accept"}}`, `"s"`},
		{`{"name":"x","InputResponses":{"q":{}},"RequestState":"s"}`, ``, ``},
		{`{"name":"x"}`, ``, ``},
		{`[1]`, ``, ``},
	}
	for _, tt := range tests {
		r, s := retryMembers(json.RawMessage(tt.params))
		if string(r) != tt.responses || string(s) != tt.state {
			t.Errorf("%s: got %s / %s, want %s / %s", tt.params, r, s, tt.responses, tt.state)
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
