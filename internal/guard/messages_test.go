package guard

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/google/go-cmp/cmp"
)

// Fake secrets, built at run time so the source trips no scanner.
var (
	awsKey = "AK" + "IA" + "Q3EGRHX5MZ4TB7LW"
	pemKey = func() string {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			panic(err)
		}
		return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	}()
)

// jsonText is s as it appears inside a JSON string literal.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// secretMessages are server messages of every kind the relay hands
// ServerMessage, each carrying one planted secret.
func secretMessages() []struct {
	name, secret, kind string
	m                  relay.ServerMessage
} {
	type sm = relay.ServerMessage
	req, note, resp := jsonrpc.KindRequest, jsonrpc.KindNotification, jsonrpc.KindResponse
	return []struct {
		name, secret, kind string
		m                  relay.ServerMessage
	}{
		{"sampling request", ghToken, "github token", sm{Kind: req, Method: "sampling/createMessage", CallID: "c1",
			Payload: json.RawMessage(`{"messages":[{"role":"user","content":{"type":"text","text":"Resource context: deploy with ` + ghToken + `"}}],"systemPrompt":"You are a helpful test server.","maxTokens":100,"temperature":0.7}`)}},
		{"form elicitation", awsKey, "aws access key", sm{Kind: req, Method: "elicitation/create",
			Payload: json.RawMessage(`{"message":"Confirm key ` + awsKey + `?","requestedSchema":{"type":"object","properties":{"ok":{"type":"boolean"}}}}`)}},
		{"url elicitation", ghToken, "github token", sm{Kind: req, Method: "elicitation/create",
			Payload: json.RawMessage(`{"mode":"url","elicitationId":"9b1f","url":"https://example.com/connect?t=` + ghToken + `","message":"Open the link"}`)}},
		{"log message", jsonText(pemKey), "private key", sm{Kind: note, Method: "notifications/message",
			Payload: json.RawMessage(`{"level":"error","logger":"vendor","data":{"msg":"loaded key","key":"` + jsonText(pemKey) + `","n":12345678901234567890}}`)}},
		{"progress message", ghToken, "github token", sm{Kind: note, Method: "notifications/progress", CallID: "c1",
			Payload: json.RawMessage(`{"progressToken":"pt-1","progress":2,"total":3,"message":"pushing with ` + ghToken + `"}`)}},
		{"prompts/get answer", ghToken, "github token", sm{Kind: resp, Method: "prompts/get",
			Payload: json.RawMessage(`{"messages":[{"role":"user","content":{"type":"text","text":"What's weather in ` + ghToken + `?"}}]}`)}},
		{"prompt with an embedded resource", awsKey, "aws access key", sm{Kind: resp, Method: "prompts/get",
			Payload: json.RawMessage(`{"messages":[{"role":"user","content":{"type":"resource","resource":{"uri":"file:///env","mimeType":"text/plain","text":"AWS_ACCESS_KEY_ID=` + awsKey + `"}}}]}`)}},
		{"prompts/list description", ghToken, "github token", sm{Kind: resp, Method: "prompts/list",
			Payload: json.RawMessage(`{"prompts":[{"name":"deploy","description":"Deploys using ` + ghToken + `","arguments":[{"name":"env","required":true}]}],"nextCursor":"eyJwIjoyfQ"}`)}},
		{"resource template", awsKey, "aws access key", sm{Kind: resp, Method: "resources/templates/list",
			Payload: json.RawMessage(`{"resourceTemplates":[{"uriTemplate":"s3://bucket/{key}?id=` + awsKey + `","name":"object"}]}`)}},
		{"completion values", ghToken, "github token", sm{Kind: resp, Method: "completion/complete",
			Payload: json.RawMessage(`{"completion":{"values":["Engineering","` + ghToken + `"],"total":2,"hasMore":false}}`)}},
		{"initialize instructions", ghToken, "github token", sm{Kind: resp, Method: "initialize",
			Payload: json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x","version":"1"},"instructions":"Use ` + ghToken + ` for pushes."}`)}},
		{"error answer", ghToken, "github token", sm{Kind: resp, Method: "prompts/get", Error: true,
			Payload: json.RawMessage(`{"code":-32602,"message":"bad argument ` + ghToken + `","data":{"arg":"city"}}`)}},
	}
}

// TestServerMessageRedactsEveryKind checks a planted secret is replaced by
// its marker in every kind of server message, and every other byte stays.
func TestServerMessageRedactsEveryKind(t *testing.T) {
	f := newFixture(t)
	for _, tt := range secretMessages() {
		t.Run(tt.name, func(t *testing.T) {
			out := f.g.ServerMessage("everything", tt.m)
			want := strings.Replace(string(tt.m.Payload), tt.secret, "[redacted: "+tt.kind+"]", 1)
			if string(out) != want {
				t.Errorf("ServerMessage\n got %s\nwant %s", out, want)
			}
		})
	}
}

// TestServerMessagePassesNearMissesUnchanged checks clean messages that
// look a little like secrets get nil: the relay passes them byte for byte.
func TestServerMessagePassesNearMissesUnchanged(t *testing.T) {
	f := newFixture(t)
	for name, payload := range map[string]string{
		"git sha and uuid":        `{"level":"info","data":"commit 3f786850e387550fdab836ed7e6dc881de23001b request 123e4567-e89b-12d3-a456-426614174000"}`,
		"aws example key":         `{"messages":[{"role":"user","content":{"type":"text","text":"like AKIAIOSFODNN7EXAMPLE"}}]}`,
		"short github prefix":     `{"progressToken":"ghp_1","progress":1,"message":"ghp_ tokens start so; ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
		"public pem":              `{"messages":[{"role":"user","content":{"type":"text","text":"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"}}]}`,
		"pem header in prose":     `{"message":"Paste the key that starts with -----BEGIN PRIVATE KEY----- here.","requestedSchema":{"type":"object","properties":{"private_key":{"type":"string"}}}}`,
		"cursor and random token": `{"prompts":[],"nextCursor":"CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA3bTJrZ2w2EgkI0sHiwAYQ0","_meta":{"progressToken":"a8f3c2d1-7b6e-4f5a-9c8d-1e2f3a4b5c6d"}}`,
		"large numbers":           `{"completion":{"values":["4111111111111112"],"total":9007199254740993}}`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, kind := range []jsonrpc.Kind{jsonrpc.KindRequest, jsonrpc.KindNotification, jsonrpc.KindResponse} {
				if out := f.g.ServerMessage("everything", relay.ServerMessage{Kind: kind, Method: "x", Payload: json.RawMessage(payload)}); out != nil {
					t.Errorf("%v: clean payload changed to %s", kind, out)
				}
			}
		})
	}
	if recs := f.events(audit.Filter{}); len(recs) != 0 {
		t.Errorf("clean messages were audited: %+v", recs)
	}
}

// TestServerMessageRedactionsAreRecorded checks requests and answers are
// audited with their counts and the call they happened during, and
// notifications only logged at debug, never with the secret.
func TestServerMessageRedactionsAreRecorded(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.g.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// An approved call, so the audit can name its client and target.
	done := f.submit(gate.Call{Server: "everything", ServerName: "Everything", Tool: "trigger-sampling-request", Client: "Claude",
		Arguments: json.RawMessage(`{"prompt":"hi"}`)})
	c := f.waitCall()
	f.q.Decide(c.ID, gate.Decision{Approve: true})
	if v := <-done; !v.Approved() {
		t.Fatalf("verdict %+v", v)
	}

	msgs := secretMessages()
	for i := range msgs {
		if msgs[i].m.CallID == "c1" {
			msgs[i].m.CallID = c.ID
		}
		f.g.ServerMessage("everything", msgs[i].m)
	}
	recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindMessageRedacted}})
	type row struct {
		Tool, Client, Reason string
		IsError              bool
		Redactions           map[string]int
	}
	var got []row
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		got = append(got, row{r.Tool, r.Client, r.Reason, r.IsError, r.Redactions})
		b, _ := json.Marshal(r)
		for _, secret := range []string{ghToken, awsKey, jsonText(pemKey)} {
			if strings.Contains(string(b), secret) {
				t.Errorf("audit row %d holds a secret", r.ID)
			}
		}
	}
	gh, aws := map[string]int{"github token": 1}, map[string]int{"aws access key": 1}
	want := []row{
		{"sampling/createMessage", "Claude", "secrets removed from the server's sampling/createMessage request during call " + c.ID, false, gh},
		{"elicitation/create", "", "secrets removed from the server's elicitation/create request", false, aws},
		{"elicitation/create", "", "secrets removed from the server's elicitation/create request", false, gh},
		{"prompts/get", "", "secrets removed from the answer to prompts/get", false, gh},
		{"prompts/get", "", "secrets removed from the answer to prompts/get", false, aws},
		{"prompts/list", "", "secrets removed from the answer to prompts/list", false, gh},
		{"resources/templates/list", "", "secrets removed from the answer to resources/templates/list", false, aws},
		{"completion/complete", "", "secrets removed from the answer to completion/complete", false, gh},
		{"initialize", "", "secrets removed from the answer to initialize", false, gh},
		{"prompts/get", "", "secrets removed from the error answer to prompts/get", true, gh},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit rows (-want +got):\n%s", diff)
	}

	text := logs.String()
	for _, line := range []string{
		`level=DEBUG msg="secrets removed from the server's notifications/message notification" server=everything method=notifications/message call="" redactions="private key=1"`,
		`level=DEBUG msg="secrets removed from the server's notifications/progress notification" server=everything method=notifications/progress call=` + c.ID + ` redactions="github token=1"`,
	} {
		if !strings.Contains(text, line) {
			t.Errorf("log lacks %s\n%s", line, text)
		}
	}
	for _, secret := range []string{ghToken, awsKey, jsonText(pemKey), "-----BEGIN PRIVATE KEY-----\n"} {
		if strings.Contains(text, secret) {
			t.Errorf("the log holds a secret:\n%s", text)
		}
	}
	if rep, err := f.log.Verify(context.Background()); err != nil || !rep.OK() {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

// TestErrorAnswerToACallIsRedactedAndCounted checks a tool call's error
// answer loses its secret and the call's result row counts it.
func TestErrorAnswerToACallIsRedactedAndCounted(t *testing.T) {
	f := newFixture(t)
	done := f.submit(gate.Call{Server: "everything", ServerName: "Everything", Tool: "trigger-url-elicitation", Arguments: json.RawMessage(`{}`)})
	c := f.waitCall()
	f.q.Decide(c.ID, gate.Decision{Approve: true})
	<-done
	rpcError := `{"code":-32042,"message":"URL elicitation required","data":{"elicitations":[{"mode":"url","url":"https://x.example/?t=` + ghToken + `"}]}}`
	out := f.g.Result("everything", "tools/call", c.ID, nil, json.RawMessage(rpcError))
	f.g.Delivered("everything", c.ID, true)
	if want := strings.Replace(rpcError, ghToken, "[redacted: github token]", 1); string(out) != want {
		t.Errorf("error to the host\n got %s\nwant %s", out, want)
	}
	recs := f.events(audit.Filter{CallID: c.ID, Kinds: []audit.Kind{audit.KindCallResult}})
	if len(recs) != 1 || !recs[0].IsError || recs[0].Redactions["github token"] != 1 {
		t.Errorf("result rows %+v", recs)
	}
	// A clean error passes unchanged.
	if out := f.g.Result("everything", "resources/read", "", nil, json.RawMessage(`{"code":-32002,"message":"Resource not found"}`)); out != nil {
		t.Errorf("clean error changed to %s", out)
	}
}

// TestToolsListedRedactsBeforePinning checks a secret in a tool definition
// never reaches the AI app or the pin file, and the listing is audited.
func TestToolsListedRedactsBeforePinning(t *testing.T) {
	f := newFixture(t)
	list := `{"tools":[{"name":"deploy","description":"Deploys with ` + ghToken + `","inputSchema":{"type":"object","properties":{"token":{"type":"string","default":"` + awsKey + `"}}}}],"nextCursor":"n"}`
	out := f.g.ToolsListed("everything", json.RawMessage(list))
	want := strings.NewReplacer(ghToken, "[redacted: github token]", awsKey, "[redacted: aws access key]").Replace(list)
	if string(out) != want {
		t.Errorf("tools/list to the host\n got %s\nwant %s", out, want)
	}
	st := f.pins.Status("everything", "deploy")
	if st.Current == nil || strings.Contains(string(st.Current), ghToken) || strings.Contains(string(st.Current), awsKey) {
		t.Errorf("pinned definition %s", st.Current)
	}
	recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindMessageRedacted}})
	if len(recs) != 1 || recs[0].Tool != "tools/list" || len(recs[0].Redactions) != 2 {
		t.Errorf("audit %+v", recs)
	}
}

// TestTheSameListingAgain checks a tools/list result byte-identical to the
// last one is redacted, audited and filtered as it was, follows a policy
// change, and is never changed through the copy the relay gets.
func TestTheSameListingAgain(t *testing.T) {
	f := newFixture(t)
	list := `{"tools":[{"name":"deploy","description":"Deploys with ` + ghToken + `"},{"name":"get_me"}]}`
	want := strings.Replace(list, ghToken, "[redacted: github token]", 1)
	for i := range 3 {
		out := f.g.ToolsListed("everything", json.RawMessage(list))
		if string(out) != want {
			t.Fatalf("listing %d to the host\n got %s\nwant %s", i+1, out, want)
		}
		copy(out, "XXXXXXXX") // the relay's copy is its own
	}
	if recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindMessageRedacted}}); len(recs) != 3 {
		t.Errorf("%d redaction records for three listings, want 3", len(recs))
	}
	hiding, err := policy.New(policy.Config{Name: "Everything", Hidden: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	f.g.SetPolicies(map[string]*policy.Policy{"everything": hiding})
	if out := f.g.ToolsListed("everything", json.RawMessage(list)); string(out) != `{"tools":[{"name":"get_me"}]}` {
		t.Errorf("the same listing under a policy hiding deploy: %s", out)
	}
}
