package relay

import (
	"encoding/json"
	"testing"
)

// FuzzWithSubscriptionID: whatever a server puts in a message, mapping its
// subscription id yields JSON naming exactly the new id, or an error.
func FuzzWithSubscriptionID(f *testing.F) {
	f.Add([]byte(`{"_meta":{"io.modelcontextprotocol/subscriptionId":1},"notifications":{}}`))
	f.Add([]byte(`{"_meta":{"x":{"io.modelcontextprotocol/subscriptionId":2},"io.modelcontextprotocol/subscriptionId" : 1 }}`))
	f.Add([]byte(`{"_meta":{"io.modelcontextprotocol/subscriptionId":1,"io.modelcontextprotocol/subscriptionId":2}}`))
	f.Add([]byte(`{"_meta":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if subscriptionID(payload) == nil {
			return
		}
		out, err := withSubscriptionID(payload, json.RawMessage(`"host-id"`))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("withSubscriptionID(%q) = %q: not JSON", payload, out)
		}
		if got := string(subscriptionID(out)); got != `"host-id"` {
			t.Fatalf("withSubscriptionID(%q) = %q names %s", payload, out, got)
		}
	})
}
