package console

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/gate"
)

// term is a fake terminal: the test types into in and reads out.
type term struct {
	io.Reader
	io.Writer
}

func TestPromptDecidesCallsInOrder(t *testing.T) {
	q := gate.New(gate.Options{})
	defer q.Close()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, q.Subscribe(), q, term{inR, outW}, func(id string) string { return strings.ToUpper(id) })
	out := bufio.NewReader(outR)
	waitFor := func(s string) {
		t.Helper()
		var seen strings.Builder
		for !strings.Contains(seen.String(), s) {
			b, err := out.ReadByte()
			if err != nil {
				t.Fatalf("output ended before %q: %s", s, seen.String())
			}
			seen.WriteByte(b)
		}
	}
	verdicts := make(chan gate.Verdict, 3)
	go func() {
		verdicts <- q.Submit(ctx, gate.Call{Server: "github", Tool: "create_issue", Client: "Claude", Arguments: []byte(`{"title":"x"}`)})
	}()
	waitFor(`GITHUB wants to run create_issue (asked by Claude)`)
	waitFor(`arguments: {"title":"x"}`)
	waitFor("Approve?")
	io.WriteString(inW, "y\n")
	if v := <-verdicts; v.Outcome != gate.OutcomeApproved {
		t.Fatalf("outcome %v", v.Outcome)
	}
	go func() { verdicts <- q.Submit(ctx, gate.Call{Server: "jira", Tool: "delete"}) }()
	waitFor("JIRA wants to run delete")
	waitFor("Approve?")
	io.WriteString(inW, "   \n") // blank: asked again, nothing decided
	waitFor("Approve?")
	io.WriteString(inW, "wrong project\n")
	if v := <-verdicts; v.Outcome != gate.OutcomeDenied || v.Reason != "wrong project" {
		t.Fatalf("verdict %+v", v)
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		in      string
		approve bool
		reason  string
		valid   bool
	}{
		{"y", true, "", true},
		{"YES", true, "", true},
		{"n", false, "", true},
		{"no", false, "", true},
		{"not that repo", false, "not that repo", true},
		{"  ", false, "", false},
	}
	for _, tt := range tests {
		d, ok := parseAnswer(tt.in)
		if ok != tt.valid || d.Approve != tt.approve || d.Reason != tt.reason {
			t.Errorf("parseAnswer(%q) = %+v, %v", tt.in, d, ok)
		}
	}
}
