package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// view is the comparable part of a Message.
type view struct {
	Kind                            Kind
	ID, Method, Params, Result, Err string
}

func viewOf(m Message) view {
	return view{m.Kind, string(m.ID), m.Method, string(m.Params), string(m.Result), string(m.Error)}
}

// errAny marks a case that must fail without a sentinel of its own, such
// as malformed JSON.
var errAny = errors.New("any error")

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    view
		wantErr error
	}{
		{
			name: "request with a number id",
			raw:  `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			want: view{Kind: KindRequest, ID: `1`, Method: "tools/list"},
		},
		{
			name: "request with a string id",
			raw:  `{"jsonrpc":"2.0","id":"abc-1","method":"ping"}`,
			want: view{Kind: KindRequest, ID: `"abc-1"`, Method: "ping"},
		},
		{
			name: "request id too big for a float64 keeps every digit",
			raw:  `{"jsonrpc":"2.0","id":12345678901234567890,"method":"ping"}`,
			want: view{Kind: KindRequest, ID: `12345678901234567890`, Method: "ping"},
		},
		{
			name: "negative and exponent ids are numbers",
			raw:  `{"jsonrpc":"2.0","id":-1e3,"method":"ping"}`,
			want: view{Kind: KindRequest, ID: `-1e3`, Method: "ping"},
		},
		{
			name: "params are the exact bytes, whitespace and big integers included",
			raw:  `{"jsonrpc":"2.0","id":7,"method":"tools/call","params": { "name" : "echo", "_meta":{"n":12345678901234567890}} }`,
			want: view{Kind: KindRequest, ID: `7`, Method: "tools/call", Params: `{ "name" : "echo", "_meta":{"n":12345678901234567890}}`},
		},
		{
			name: "members in any order with whitespace around them",
			raw:  " \n{ \"method\" : \"ping\" ,\t\"id\" : \"x\" , \"jsonrpc\" : \"2.0\" }\r\n",
			want: view{Kind: KindRequest, ID: `"x"`, Method: "ping"},
		},
		{
			name: "escaped member names are read as their values",
			raw:  `{"jsonrpc":"2.0","\u0069d":3,"method":"ping"}`,
			want: view{Kind: KindRequest, ID: `3`, Method: "ping"},
		},
		{
			name: "notification has no id",
			raw:  `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			want: view{Kind: KindNotification, Method: "notifications/initialized"},
		},
		{
			name: "notification with params",
			raw:  `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`,
			want: view{Kind: KindNotification, Method: "notifications/progress", Params: `{"progress":1}`},
		},
		{
			name: "unknown members are allowed",
			raw:  `{"jsonrpc":"2.0","method":"ping","id":1,"x-extra":[1,2]}`,
			want: view{Kind: KindRequest, ID: `1`, Method: "ping"},
		},
		{
			name: "success response",
			raw:  `{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`,
			want: view{Kind: KindResponse, ID: `1`, Result: `{"tools":[]}`},
		},
		{
			name: "null result is a result",
			raw:  `{"jsonrpc":"2.0","id":1,"result":null}`,
			want: view{Kind: KindResponse, ID: `1`, Result: `null`},
		},
		{
			name: "error response",
			raw:  `{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"no"}}`,
			want: view{Kind: KindResponse, ID: `"a"`, Err: `{"code":-32601,"message":"no"}`},
		},
		{
			name: "error response with a null id answers an unreadable request",
			raw:  `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
			want: view{Kind: KindResponse, ID: `null`, Err: `{"code":-32700,"message":"parse error"}`},
		},
		{name: "request with a null id", raw: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, wantErr: ErrBadID},
		{name: "object id", raw: `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, wantErr: ErrBadID},
		{name: "boolean id", raw: `{"jsonrpc":"2.0","id":true,"result":{}}`, wantErr: ErrBadID},
		{name: "array id", raw: `{"jsonrpc":"2.0","id":[1],"result":{}}`, wantErr: ErrBadID},
		{name: "duplicate id", raw: `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, wantErr: ErrDuplicateKey},
		{name: "duplicate method", raw: `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, wantErr: ErrDuplicateKey},
		{name: "duplicate params", raw: `{"jsonrpc":"2.0","id":1,"method":"m","params":{},"params":{"a":1}}`, wantErr: ErrDuplicateKey},
		{name: "duplicate jsonrpc", raw: `{"jsonrpc":"2.0","jsonrpc":"2.0","method":"m"}`, wantErr: ErrDuplicateKey},
		{name: "duplicate unknown member", raw: `{"jsonrpc":"2.0","method":"m","x":1,"x":2}`, wantErr: ErrDuplicateKey},
		{name: "duplicate spelled with an escape", raw: `{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"m"}`, wantErr: ErrDuplicateKey},
		{name: "upper-case ID beside id", raw: `{"jsonrpc":"2.0","id":1,"ID":2,"method":"m"}`, wantErr: ErrMemberCase},
		{name: "upper-case ID alone", raw: `{"jsonrpc":"2.0","method":"tools/call","ID":1}`, wantErr: ErrMemberCase},
		{name: "Method beside method", raw: `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, wantErr: ErrMemberCase},
		{name: "Params", raw: `{"jsonrpc":"2.0","id":1,"method":"m","PARAMS":{}}`, wantErr: ErrMemberCase},
		{name: "Result", raw: `{"jsonrpc":"2.0","id":1,"Result":{}}`, wantErr: ErrMemberCase},
		{name: "Error", raw: `{"jsonrpc":"2.0","id":1,"result":{},"eRRor":{}}`, wantErr: ErrMemberCase},
		{name: "JSONRPC", raw: `{"JSONRPC":"1.0","jsonrpc":"2.0","method":"m"}`, wantErr: ErrMemberCase},
		{name: "long s folds to s", raw: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"param\u017f\":{}}", wantErr: ErrMemberCase},
		{name: "version 1.0", raw: `{"jsonrpc":"1.0","id":1,"method":"m"}`, wantErr: ErrVersion},
		{name: "version as a number", raw: `{"jsonrpc":2.0,"id":1,"method":"m"}`, wantErr: ErrVersion},
		{name: "no version", raw: `{"id":1,"method":"m"}`, wantErr: ErrVersion},
		{name: "array", raw: `[{"jsonrpc":"2.0","method":"m"}]`, wantErr: ErrNotObject},
		{name: "string", raw: `"hello"`, wantErr: ErrNotObject},
		{name: "number", raw: `42`, wantErr: ErrNotObject},
		{name: "null", raw: `null`, wantErr: ErrNotObject},
		{name: "empty input", raw: ``, wantErr: errAny},
		{name: "only whitespace", raw: " \n ", wantErr: errAny},
		{name: "truncated object", raw: `{"jsonrpc":"2.0","method":"m"`, wantErr: errAny},
		{name: "trailing comma", raw: `{"jsonrpc":"2.0","method":"m",}`, wantErr: errAny},
		{name: "missing colon", raw: `{"jsonrpc" "2.0"}`, wantErr: errAny},
		{name: "invalid value", raw: `{"jsonrpc":"2.0","method":"m","params":{x}}`, wantErr: errAny},
		{name: "second message after the first", raw: `{"jsonrpc":"2.0","method":"m"}{"jsonrpc":"2.0","method":"m"}`, wantErr: ErrTrailingBytes},
		{name: "garbage after the message", raw: `{"jsonrpc":"2.0","method":"m"} x`, wantErr: ErrTrailingBytes},
		{name: "result and error both present", raw: `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, wantErr: ErrShape},
		{name: "response with neither result nor error", raw: `{"jsonrpc":"2.0","id":1}`, wantErr: ErrShape},
		{name: "result without an id", raw: `{"jsonrpc":"2.0","result":{}}`, wantErr: ErrShape},
		{name: "request carrying a result", raw: `{"jsonrpc":"2.0","id":1,"method":"m","result":{}}`, wantErr: ErrShape},
		{name: "empty method", raw: `{"jsonrpc":"2.0","id":1,"method":""}`, wantErr: ErrShape},
		{name: "null method", raw: `{"jsonrpc":"2.0","id":1,"method":null}`, wantErr: ErrShape},
		{name: "method that is not a string", raw: `{"jsonrpc":"2.0","id":1,"method":5}`, wantErr: ErrShape},
		{name: "nothing but a version", raw: `{"jsonrpc":"2.0"}`, wantErr: ErrShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.raw))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse(%s) = %+v, want an error", tt.raw, viewOf(m))
				}
				if tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse(%s) error = %v, want %v", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.raw, err)
			}
			if got := viewOf(m); got != tt.want {
				t.Errorf("Parse(%s)\n got %+v\nwant %+v", tt.raw, got, tt.want)
			}
			if string(m.Raw) != tt.raw {
				t.Errorf("Raw = %q, want the input %q", m.Raw, tt.raw)
			}
		})
	}
}

// TestParseRejectsWhatEncodingJSONWouldReadDifferently shows why case
// variants of member names are refused: mcp-go decodes messages with
// encoding/json, which matches member names case-insensitively and lets the
// last one win, so it would run a method other than the one Parse reports.
func TestParseRejectsWhatEncodingJSONWouldReadDifferently(t *testing.T) {
	tests := []struct {
		name, raw  string
		wantMethod string // as encoding/json reads it
		wantID     any    // as encoding/json reads it
	}{
		{
			name:       "a second method in another case",
			raw:        `{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}`,
			wantMethod: "tools/call",
			wantID:     float64(1),
		},
		{
			name:       "an id in another case turns a notification into a request",
			raw:        `{"jsonrpc":"2.0","method":"tools/call","Id":9}`,
			wantMethod: "tools/call",
			wantID:     float64(9),
		},
		{
			name:       "a duplicate method, where the last one wins",
			raw:        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"method\":\"x\"}",
			wantMethod: "x",
			wantID:     float64(1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var std struct {
				Method string `json:"method"`
				ID     any    `json:"id"`
			}
			if err := json.Unmarshal([]byte(tt.raw), &std); err != nil {
				t.Fatal(err)
			}
			if std.Method != tt.wantMethod || std.ID != tt.wantID {
				t.Fatalf("encoding/json read method %q id %v, want %q %v", std.Method, std.ID, tt.wantMethod, tt.wantID)
			}
			if m, err := Parse([]byte(tt.raw)); err == nil {
				t.Errorf("Parse accepted it as %+v; encoding/json reads method %q id %v", viewOf(m), std.Method, std.ID)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{KindRequest, "request"},
		{KindNotification, "notification"},
		{KindResponse, "response"},
		{0, "invalid"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.kind), got, tt.want)
		}
	}
}

func TestSplitBatch(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		want      []string
		wantBatch bool
		wantErr   bool
	}{
		{
			name: "a single message is returned whole",
			raw:  ` {"jsonrpc":"2.0","method":"m"} `,
			want: []string{` {"jsonrpc":"2.0","method":"m"} `},
		},
		{
			name:      "batch elements keep their bytes",
			raw:       "\n[ {\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,\"method\":\"a\"} ,\n{ \"jsonrpc\" : \"2.0\", \"method\":\"b\",\"params\":{\"_meta\":{}} } ]",
			want:      []string{`{"jsonrpc":"2.0","id":12345678901234567890,"method":"a"}`, `{ "jsonrpc" : "2.0", "method":"b","params":{"_meta":{}} }`},
			wantBatch: true,
		},
		{
			name:      "elements that are not messages are still split",
			raw:       `[1,"x",null]`,
			want:      []string{`1`, `"x"`, `null`},
			wantBatch: true,
		},
		{
			name: "anything that is not an array is left for Parse",
			raw:  `garbage`,
			want: []string{`garbage`},
		},
		{
			name: "empty input is left for Parse",
			raw:  ``,
			want: []string{``},
		},
		{name: "an empty batch is an error", raw: `[]`, wantBatch: true, wantErr: true},
		{name: "a broken batch is an error", raw: `[{"jsonrpc":"2.0"},`, wantBatch: true, wantErr: true},
		{name: "data after the batch is an error", raw: `[{}] {}`, wantBatch: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, isBatch, err := SplitBatch([]byte(tt.raw))
			if isBatch != tt.wantBatch {
				t.Errorf("isBatch = %v, want %v", isBatch, tt.wantBatch)
			}
			if tt.wantErr {
				if err == nil {
					t.Errorf("SplitBatch(%q) = %q, want an error", tt.raw, msgs)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitBatch(%q): %v", tt.raw, err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m))
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || len(got) != len(tt.want) {
				t.Errorf("SplitBatch(%q)\n got %q\nwant %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestWithID(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		id   string
		want string
	}{
		{
			name: "number to string",
			raw:  `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			id:   `"up-1"`,
			want: `{"jsonrpc":"2.0","id":"up-1","method":"ping"}`,
		},
		{
			name: "big integer to small, every other byte kept",
			raw:  "{ \"jsonrpc\" : \"2.0\" ,\n \"id\" :\t12345678901234567890 , \"method\":\"tools/call\", \"params\":{\"n\":98765432109876543210,\"_meta\":{\"progressToken\":12345678901234567891}}, \"x-unknown\":[true] }",
			id:   `5`,
			want: "{ \"jsonrpc\" : \"2.0\" ,\n \"id\" :\t5 , \"method\":\"tools/call\", \"params\":{\"n\":98765432109876543210,\"_meta\":{\"progressToken\":12345678901234567891}}, \"x-unknown\":[true] }",
		},
		{
			name: "small to big integer",
			raw:  `{"jsonrpc":"2.0","method":"m","id":"a"}`,
			id:   `12345678901234567890`,
			want: `{"jsonrpc":"2.0","method":"m","id":12345678901234567890}`,
		},
		{
			name: "response id",
			raw:  `{"result":{"content":[]},"id":77,"jsonrpc":"2.0"}`,
			id:   `"h-3"`,
			want: `{"result":{"content":[]},"id":"h-3","jsonrpc":"2.0"}`,
		},
		{
			name: "null id of an error response",
			raw:  `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`,
			id:   `4`,
			want: `{"jsonrpc":"2.0","id":4,"error":{"code":-32700,"message":"x"}}`,
		},
		{
			name: "an id spelled with an escape in its name",
			raw:  `{"jsonrpc":"2.0","\u0069d":1,"method":"m"}`,
			id:   `2`,
			want: `{"jsonrpc":"2.0","\u0069d":2,"method":"m"}`,
		},
		{
			name: "a notification is returned unchanged",
			raw:  `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			id:   `9`,
			want: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got := m.WithID(json.RawMessage(tt.id))
			if string(got) != tt.want {
				t.Errorf("WithID(%s)\n got %s\nwant %s", tt.id, got, tt.want)
			}
			if string(m.Raw) != tt.raw {
				t.Errorf("WithID changed the original to %s", m.Raw)
			}
		})
	}
}

func TestWithParams(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		params string
		want   string
	}{
		{
			name:   "params replaced, id, _meta elsewhere and unknown members kept",
			raw:    "{\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,\"method\":\"tools/call\",\n  \"params\" : {\"name\":\"echo\",\"arguments\":{\"m\":\"hi\"}} ,\"x\":{\"_meta\":1}}",
			params: `{"name":"echo","arguments":{"m":"bye"},"_meta":{"big":98765432109876543210}}`,
			want:   "{\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,\"method\":\"tools/call\",\n  \"params\" : {\"name\":\"echo\",\"arguments\":{\"m\":\"bye\"},\"_meta\":{\"big\":98765432109876543210}} ,\"x\":{\"_meta\":1}}",
		},
		{
			name:   "params of a notification",
			raw:    `{"params":[1,2],"method":"n","jsonrpc":"2.0"}`,
			params: `{}`,
			want:   `{"params":{},"method":"n","jsonrpc":"2.0"}`,
		},
		{
			name:   "a message without params is returned unchanged",
			raw:    `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			params: `{"cursor":"x"}`,
			want:   `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got := m.WithParams(json.RawMessage(tt.params))
			if string(got) != tt.want {
				t.Errorf("WithParams(%s)\n got %s\nwant %s", tt.params, got, tt.want)
			}
		})
	}
}

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name    string
		id      json.RawMessage
		code    int
		message string
		want    string
	}{
		{
			name:    "nil id becomes null",
			code:    CodeParseError,
			message: "parse error",
			want:    `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
		},
		{
			name:    "big integer id kept digit for digit",
			id:      json.RawMessage(`12345678901234567890`),
			code:    CodeInternalError,
			message: "boom",
			want:    `{"jsonrpc":"2.0","id":12345678901234567890,"error":{"code":-32603,"message":"boom"}}`,
		},
		{
			name:    "string id and a message needing escapes",
			id:      json.RawMessage(`"h-1"`),
			code:    CodeConnectionClosed,
			message: "lost \"it\"\n",
			want:    `{"jsonrpc":"2.0","id":"h-1","error":{"code":-32000,"message":"lost \"it\"\n"}}`,
		},
		{
			name:    "an id that is not JSON becomes null rather than no message",
			id:      json.RawMessage(`{oops`),
			code:    CodeInvalidRequest,
			message: "bad",
			want:    `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorResponse(tt.id, tt.code, tt.message)
			if string(got) != tt.want {
				t.Errorf("ErrorResponse\n got %s\nwant %s", got, tt.want)
			}
			m, err := Parse(got)
			if err != nil {
				t.Fatalf("the error response does not parse: %v", err)
			}
			if m.Kind != KindResponse || m.Error == nil {
				t.Errorf("parsed as %+v, want an error response", viewOf(m))
			}
		})
	}
}

func TestResponseAndNotification(t *testing.T) {
	resp, err := Response(json.RawMessage(`12345678901234567890`), map[string]any{"ok": true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","id":12345678901234567890,"result":{"ok":true}}`; string(resp) != want {
		t.Errorf("Response = %s, want %s", resp, want)
	}
	n, err := Notification("notifications/cancelled", map[string]any{"requestId": 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`; string(n) != want {
		t.Errorf("Notification = %s, want %s", n, want)
	}
	for _, raw := range [][]byte{resp, n} {
		if _, err := Parse(raw); err != nil {
			t.Errorf("Parse(%s): %v", raw, err)
		}
	}
}

// parseSeeds are messages worth starting the fuzzers from.
var parseSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"echo","arguments":{"m":"hi"},"_meta":{"progressToken":98765432109876543210}}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":"a","result":{"content":[]}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`,
	" { \"id\" : \"x\" , \"method\" : \"m\" , \"jsonrpc\" : \"2.0\" , \"params\" : [ 1 , 2 ] } ",
	`{"jsonrpc":"2.0","\u0069d":1,"method":"m"}`,
	`{"jsonrpc":"2.0","id":1,"ID":2,"method":"m"}`,
	`{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}`,
	`[{"jsonrpc":"2.0","method":"m"}]`,
	`{"jsonrpc":"2.0","method":"m"} {}`,
}

// checkSpans checks that m's views are the bytes of Raw they claim to be.
func checkSpans(t *testing.T, m Message) {
	t.Helper()
	if m.ID != nil && !bytes.Equal(m.Raw[m.idSpan.start:m.idSpan.end], m.ID) {
		t.Fatalf("id span %v holds %q, ID is %q", m.idSpan, m.Raw[m.idSpan.start:m.idSpan.end], m.ID)
	}
	if m.Params != nil && !bytes.Equal(m.Raw[m.paramsSpan.start:m.paramsSpan.end], m.Params) {
		t.Fatalf("params span %v holds %q, Params is %q", m.paramsSpan, m.Raw[m.paramsSpan.start:m.paramsSpan.end], m.Params)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Raw, raw) {
			t.Fatalf("Raw %q is not the input %q", m.Raw, raw)
		}
		checkSpans(t, m)
		if m.ID == nil {
			return
		}
		for _, id := range []string{`"relay-1"`, `12345678901234567890`, `0`} {
			out := m.WithID(json.RawMessage(id))
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("WithID(%s) of %q gives %q, which does not parse: %v", id, raw, out, err)
			}
			want := viewOf(m)
			want.ID = id
			if got := viewOf(m2); got != want {
				t.Fatalf("WithID(%s) of %q parses as\n %+v\nwant %+v", id, raw, got, want)
			}
		}
	})
}

func FuzzWithID(f *testing.F) {
	for i, s := range parseSeeds {
		f.Add([]byte(s), int64(i)*1_000_000_007, "id-"+s[:i], i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, raw []byte, n int64, s string, useString bool) {
		m, err := Parse(raw)
		if err != nil || m.ID == nil {
			return
		}
		var id json.RawMessage
		if useString {
			id, err = json.Marshal(s)
		} else {
			id, err = json.Marshal(n)
		}
		if err != nil {
			t.Fatal(err)
		}
		out := m.WithID(id)
		start, end := m.idSpan.start, m.idSpan.end
		if !bytes.Equal(out[:start], raw[:start]) || !bytes.Equal(out[start+len(id):], raw[end:]) {
			t.Fatalf("WithID(%s) of %q = %q: bytes outside the id changed", id, raw, out)
		}
		if !bytes.Equal(m.Raw, raw) {
			t.Fatalf("WithID changed the original to %q", m.Raw)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("WithID(%s) of %q = %q, which does not parse: %v", id, raw, out, err)
		}
		if !bytes.Equal(m2.ID, id) || m2.Kind != m.Kind || m2.Method != m.Method || !bytes.Equal(m2.Params, m.Params) {
			t.Fatalf("WithID(%s) of %q parses as %+v", id, raw, viewOf(m2))
		}
		if m.Params != nil {
			p := json.RawMessage(`{"_meta":{"n":12345678901234567890}}`)
			m3, err := Parse(m.WithParams(p))
			if err != nil {
				t.Fatalf("WithParams of %q does not parse: %v", raw, err)
			}
			if !bytes.Equal(m3.Params, p) || !bytes.Equal(m3.ID, m.ID) || m3.Kind != m.Kind || m3.Method != m.Method {
				t.Fatalf("WithParams of %q parses as %+v", raw, viewOf(m3))
			}
		}
	})
}

func TestCheckUnambiguous(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"name":"echo","arguments":{"a":1,"b":[{"c":1},{"c":2}]}}`, true},
		{`{"a":{"x":1},"b":{"x":2}}`, true},
		{`[{"a":1},{"a":1}]`, true},
		{`{"name":"rm","Name":"echo"}`, false},
		{`{"name":"rm","name":"echo"}`, false},
		{`{"arguments":{"owner":"DEFRA","Owner":"evil"}}`, false},
		{`{"arguments":{"list":[{"k":1,"K":2}]}}`, false},
		{`{"a":{"b":{"c":{"d":1,"d":2}}}}`, false},
		{`{"paramſ":1,"PARAMS":2}`, false},
		{`{"a":`, false},
	}
	for _, tt := range tests {
		if err := CheckUnambiguous([]byte(tt.in)); (err == nil) != tt.ok {
			t.Errorf("CheckUnambiguous(%s) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func FuzzCheckUnambiguous(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":2}]},"A":1}`))
	f.Add([]byte(`[{"x":1},{"x":2}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckUnambiguous(b) == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}

func TestWithIDResult(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		id, result string
		want       string
	}{
		{
			name:   "id before result",
			raw:    "{\"jsonrpc\":\"2.0\", \"id\" : 7 ,\"result\": {\"tools\":[]} , \"x\":1}",
			id:     `"h"`,
			result: `{"tools":[{"name":"a"}]}`,
			want:   "{\"jsonrpc\":\"2.0\", \"id\" : \"h\" ,\"result\": {\"tools\":[{\"name\":\"a\"}]} , \"x\":1}",
		},
		{
			name:   "result before id",
			raw:    `{"result":{"n":12345678901234567890},"jsonrpc":"2.0","id":12345678901234567890}`,
			id:     `1`,
			result: `{"n":1}`,
			want:   `{"result":{"n":1},"jsonrpc":"2.0","id":1}`,
		},
		{
			name:   "result only",
			raw:    `{"jsonrpc":"2.0","id":3,"result":{}}`,
			result: `{"ok":true}`,
			want:   `{"jsonrpc":"2.0","id":3,"result":{"ok":true}}`,
		},
		{
			name: "error response keeps its error",
			raw:  `{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}`,
			id:   `9`, result: `{"x":1}`,
			want: `{"jsonrpc":"2.0","id":9,"error":{"code":1,"message":"m"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			var id, res json.RawMessage
			if tt.id != "" {
				id = json.RawMessage(tt.id)
			}
			if tt.result != "" {
				res = json.RawMessage(tt.result)
			}
			got := m.WithIDResult(id, res)
			if string(got) != tt.want {
				t.Errorf("WithIDResult\n got %s\nwant %s", got, tt.want)
			}
			if _, err := Parse(got); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}
