package relay

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/internal/transport"
)

// benchFilter redacts what the relay hands it the way the guard does, with
// redact.RedactJSON, so the benchmark measures the relay's routing plus a
// realistic filter without importing the guard (which imports relay).
type benchFilter struct{}

func (benchFilter) ToolsListed(_ string, result json.RawMessage) json.RawMessage { return nil }
func (benchFilter) CheckResource(_, _, _ string) string                          { return "" }
func (benchFilter) Forwarded(_, _ string)                                        {}
func (benchFilter) Delivered(_, _ string, _ bool)                                {}
func (benchFilter) Result(_, _, _ string, result, _ json.RawMessage) json.RawMessage {
	return redactPayload(result)
}

func (benchFilter) ServerMessage(_ string, m ServerMessage) json.RawMessage {
	return redactPayload(m.Payload)
}

func redactPayload(p json.RawMessage) json.RawMessage {
	if p == nil {
		return nil
	}
	out, counts, err := redact.RedactJSON(p)
	if err != nil || len(counts) == 0 {
		return nil
	}
	return out
}

// benchMessages are clean server messages of each kind the relay routes
// toward the AI app, shaped like server-everything's.
var benchMessages = []struct {
	name, method, raw string
}{
	{"progress", "", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-1","progress":3,"total":10,"message":"Step 3 of 10: copying 2,048 files from build/ to dist/"}}`},
	{"log", "", `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"everything","data":"Fetched 25 issues from DEFRA/ffc-pay in 312 ms (page 2, cursor eyJwYWdlIjoyfQ, etag W/\"5f2c0a9e1b7d\")"}}`},
	{"sampling", "", `{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"Summarise the build log of run 8812: 3 tests failed in payments, commit 4e1f0c3b9a2d7e6f5a4b3c2d1e0f9a8b7c6d5e4f."}}],"systemPrompt":"You are a helpful assistant.","maxTokens":256}}`},
	{"prompts-get", "prompts/get", `{"jsonrpc":"2.0","id":1,"result":{"description":"A prompt with arguments","messages":[{"role":"user","content":{"type":"text","text":"This prompt has arguments: city=London, state=England. Reply with the weather for 2024-06-01 at 09:00."}}]}}`},
}

// BenchmarkServerMessage times routing one clean message of each kind
// from the server to an open host stream, through a relay with no filter
// and one with a redacting filter. One op routes the message through each,
// alternating which goes first so both see the same machine load; the
// metrics are each side's ns per message and the ratio between them.
func BenchmarkServerMessage(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			var sides [2]*session
			var streams [2]*stream
			for i, f := range []Filter{nil, benchFilter{}} {
				sides[i] = benchSession(Options{Logger: logger, Filter: f})
				streams[i] = newStream(true)
				sides[i].gets = []*stream{streams[i]}
			}
			raw := []byte(bm.raw)
			var spent [2]time.Duration
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for k := range 2 {
					side := (i + k) % 2
					s, st := sides[side], streams[side]
					if bm.method != "" {
						req := &request{hostID: json.RawMessage(`"h1"`), upID: "1", method: bm.method, st: st}
						s.mu.Lock()
						s.inflight["1"] = req
						s.byHostID[`"h1"`] = req
						s.mu.Unlock()
					}
					start := time.Now()
					s.fromUpstream(transport.Incoming{Raw: raw})
					spent[side] += time.Since(start)
					if got := st.take(); len(got) != 1 || !bytes.Contains(got[0], []byte(`"jsonrpc":"2.0"`)) {
						b.Fatalf("stream got %q", got)
					}
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(spent[0].Nanoseconds())/n, "nofilter-ns/msg")
			b.ReportMetric(float64(spent[1].Nanoseconds())/n, "redacting-ns/msg")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio")
		})
	}
}

// benchSession is a session with no upstream connection, for driving
// fromUpstream directly.
func benchSession(o Options) *session {
	r := &Relay{o: o, log: o.Logger}
	return &session{r: r, srv: &Server{ID: "bench"}, inflight: map[string]*request{}, byHostID: map[string]*request{}}
}
