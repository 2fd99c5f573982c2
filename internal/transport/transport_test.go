package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/goleak"
)

// testTimeout only stops a broken test from hanging; nothing is timed.
const testTimeout = 10 * time.Second

// childEnv selects what the test binary does when re-executed as a stdio
// server; see TestMain.
const childEnv = "COUNTERSIGN_TRANSPORT_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		goleak.VerifyTestMain(m) // no test may leave a goroutine behind
	case "mcp":
		if err := server.ServeStdio(newTestMCPServer()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "raw":
		runRawChild()
		os.Exit(0)
	case "huge":
		runHugeChild()
		os.Exit(0)
	case "exit":
		os.Exit(3)
	case "stubborn":
		io.Copy(io.Discard, os.Stdin)
		time.Sleep(time.Hour) // ignores the end of its input; must be killed
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", os.Getenv(childEnv))
		os.Exit(2)
	}
}

// rawNotification is written byte for byte by the raw child: re-encoding
// would change the big integer, 1.50, 1E+2, the \u00e9 escape, the order of
// members or the spaces.
const rawNotification = `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"caf\u00e9","_meta":{"big":12345678901234567890,"float":1.50,"exp":1E+2}} , "x-unknown" : [ true ] }`

// rawResult is the result the raw child gives every request.
const rawResult = `{"n":98765432109876543210,"_meta":{"k":1.0}}`

// runRawChild writes rawNotification, then answers each request line with
// rawResult under the request's own id bytes, until its input ends.
func runRawChild() {
	os.Stdout.WriteString(rawNotification + "\r\n")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m, err := jsonrpc.Parse(sc.Bytes())
		if err != nil || m.Kind != jsonrpc.KindRequest {
			continue
		}
		fmt.Fprintf(os.Stdout, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n", m.ID, rawResult)
	}
}

// newTestMCPServer is a real mcp-go server with three tools: echo returns
// its message; notify sends a log notification before answering; ask
// elicits an answer from the client and returns "<action>: <answer>".
func newTestMCPServer(opts ...server.ServerOption) *server.MCPServer {
	s := server.NewMCPServer("transport-test", "1.0.0", append([]server.ServerOption{server.WithToolCapabilities(false)}, opts...)...)
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Returns its message."), mcp.WithString("message", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			msg, err := req.RequireString("message")
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText(msg), nil
		})
	s.AddTool(mcp.NewTool("notify", mcp.WithDescription("Logs, then answers.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := s.SendNotificationToClient(ctx, "notifications/message", map[string]any{"level": "info", "data": "working"}); err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("done"), nil
		})
	s.AddTool(mcp.NewTool("ask", mcp.WithDescription("Asks the user.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
				Message: "Proceed?",
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"answer": map[string]any{"type": "string"}},
				},
			}})
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			content, _ := res.Content.(map[string]any)
			return mcp.NewToolResultText(fmt.Sprintf("%s: %v", res.Action, content["answer"])), nil
		})
	return s
}

func initializeRequest(id, version string) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{"elicitation":{}},"clientInfo":{"name":"transport-test","version":"0"}}}`, id, version)
}

const initializedNotification = `{"jsonrpc":"2.0","method":"notifications/initialized"}`

func callTool(id, name string, args map[string]any) []byte {
	a, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, name, a)
}

// recv returns the next message from c.
func recv(t *testing.T, c Conn) Incoming {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case in := <-c.Incoming():
		return in
	case <-c.Done():
		t.Fatalf("connection ended while waiting for a message: %v", c.Err())
	case <-timer.C:
		t.Fatal("no message from the server")
	}
	return Incoming{}
}

// recvMessage returns the next message from c, parsed, and checks its kind.
func recvMessage(t *testing.T, c Conn, kind jsonrpc.Kind) (Incoming, jsonrpc.Message) {
	t.Helper()
	in := recv(t, c)
	m, err := jsonrpc.Parse(in.Raw)
	if err != nil {
		t.Fatalf("server message %q does not parse: %v", in.Raw, err)
	}
	if m.Kind != kind {
		t.Fatalf("got a %v %s, want a %v", m.Kind, in.Raw, kind)
	}
	return in, m
}

// recvResponse returns the answer to request id, which must be the next
// message.
func recvResponse(t *testing.T, c Conn, id string) (Incoming, jsonrpc.Message) {
	t.Helper()
	in, m := recvMessage(t, c, jsonrpc.KindResponse)
	if string(m.ID) != id {
		t.Fatalf("got the answer to %s, want the answer to %s: %s", m.ID, id, in.Raw)
	}
	if m.Error != nil {
		t.Fatalf("request %s failed: %s", id, m.Error)
	}
	return in, m
}

// toolText returns the text of a tools/call result, failing on isError.
func toolText(t *testing.T, result json.RawMessage) string {
	t.Helper()
	var r struct {
		Content []struct {
			Type, Text string
		}
		IsError bool
	}
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatalf("tool result %s: %v", result, err)
	}
	var texts []string
	for _, c := range r.Content {
		texts = append(texts, c.Text)
	}
	if r.IsError {
		t.Fatalf("tool failed: %s", strings.Join(texts, " "))
	}
	return strings.Join(texts, " ")
}

// initialize runs the initialize handshake on c and returns the version
// the server chose.
func initialize(t *testing.T, c Conn, version string) string {
	t.Helper()
	ctx := context.Background()
	if err := c.Send(ctx, initializeRequest("1", version), nil); err != nil {
		t.Fatalf("sending initialize: %v", err)
	}
	_, m := recvResponse(t, c, "1")
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, []byte(initializedNotification), nil); err != nil {
		t.Fatalf("sending notifications/initialized: %v", err)
	}
	return res.ProtocolVersion
}

// echoRoundTrip calls the echo tool on c and checks the answer.
func echoRoundTrip(t *testing.T, c Conn, id string) {
	t.Helper()
	if err := c.Send(context.Background(), callTool(id, "echo", map[string]any{"message": "hello " + id}), nil); err != nil {
		t.Fatalf("sending tools/call: %v", err)
	}
	_, m := recvResponse(t, c, id)
	if got, want := toolText(t, m.Result), "hello "+id; got != want {
		t.Errorf("echo answered %q, want %q", got, want)
	}
}

// waitDone waits for c to end.
func waitDone(t *testing.T, c Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("the connection did not end")
	}
}

// answerAsk plays the client side of the "ask" tool: it takes the server's
// elicitation/create request, accepts it, and checks the tool's answer to
// the tools/call with id callID.
func answerAsk(t *testing.T, c Conn, callID string) {
	t.Helper()
	ctx := context.Background()
	in, m := recvMessage(t, c, jsonrpc.KindRequest)
	if m.Method != "elicitation/create" || !strings.Contains(string(m.Params), "Proceed?") {
		t.Fatalf("got %s, want the elicitation/create request", in.Raw)
	}
	answer, err := jsonrpc.Response(m.ID, map[string]any{"action": "accept", "content": map[string]any{"answer": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, answer, nil); err != nil {
		t.Fatalf("sending the answer: %v", err)
	}
	_, m = recvResponse(t, c, callID)
	if got := toolText(t, m.Result); got != "accept: yes" {
		t.Errorf("ask answered %q, want %q", got, "accept: yes")
	}
}
