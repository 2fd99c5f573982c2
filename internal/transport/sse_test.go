package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAll reads every event of r until it fails.
func readAll(r *EventReader) ([]Event, error) {
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// formatEvents renders events for comparison and failure messages.
func formatEvents(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "{id %q name %q data %q}", ev.ID, ev.Name, ev.Data)
	}
	return b.String()
}

func TestEventReader(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		want      []Event
		wantID    string
		wantRetry time.Duration
	}{
		{
			name:   "unnamed event is a message",
			stream: "data: {}\n\n",
			want:   []Event{{Name: "message", Data: []byte("{}")}},
		},
		{
			name:   "named event",
			stream: "event: endpoint\ndata: /message?sessionId=1\n\n",
			want:   []Event{{Name: "endpoint", Data: []byte("/message?sessionId=1")}},
		},
		{
			name:   "data lines are joined with newlines",
			stream: "data: {\"a\":\ndata: 1}\n\n",
			want:   []Event{{Name: "message", Data: []byte("{\"a\":\n1}")}},
		},
		{
			name:   "CRLF line endings",
			stream: "event: message\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
			want:   []Event{{Name: "message", Data: []byte("a\nb")}, {Name: "message", Data: []byte("c")}},
		},
		{
			name:   "lone CR line endings",
			stream: "id: 1\rdata: a\rdata: b\r\rdata: c\r\r",
			want:   []Event{{ID: "1", Name: "message", Data: []byte("a\nb")}, {ID: "1", Name: "message", Data: []byte("c")}},
			wantID: "1",
		},
		{
			name:   "mixed endings, as mcp-go writes its endpoint event",
			stream: "event: endpoint\ndata: /message?sessionId=x\r\n\r\nevent: message\ndata: {}\n\n",
			want:   []Event{{Name: "endpoint", Data: []byte("/message?sessionId=x")}, {Name: "message", Data: []byte("{}")}},
		},
		{
			name:   "comments are ignored, alone or inside an event",
			stream: ": keep-alive\n\n:\ndata: a\n: note\ndata: b\n\n",
			want:   []Event{{Name: "message", Data: []byte("a\nb")}},
		},
		{
			name:      "id and retry",
			stream:    "id: 7\nretry: 1500\ndata: x\n\n",
			want:      []Event{{ID: "7", Name: "message", Data: []byte("x")}},
			wantID:    "7",
			wantRetry: 1500 * time.Millisecond,
		},
		{
			name:   "an id lasts until another replaces it",
			stream: "id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
			want: []Event{
				{ID: "1", Name: "message", Data: []byte("a")},
				{ID: "1", Name: "message", Data: []byte("b")},
				{ID: "2", Name: "message", Data: []byte("c")},
			},
			wantID: "2",
		},
		{
			name:   "an empty id field clears the id",
			stream: "id: 1\ndata: a\n\nid\ndata: b\n\n",
			want:   []Event{{ID: "1", Name: "message", Data: []byte("a")}, {Name: "message", Data: []byte("b")}},
		},
		{
			name:   "an id containing NUL is ignored",
			stream: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want:   []Event{{ID: "1", Name: "message", Data: []byte("a")}, {ID: "1", Name: "message", Data: []byte("b")}},
			wantID: "1",
		},
		{
			name:   "an event without data is skipped but its id counts",
			stream: "id: 5\nevent: ping\n\ndata: x\n\n",
			want:   []Event{{ID: "5", Name: "message", Data: []byte("x")}},
			wantID: "5",
		},
		{
			name:      "a 2025-11-25 priming event with empty data is skipped but its id and retry count",
			stream:    "id: prime-1\nretry: 10\ndata: \n\n",
			wantID:    "prime-1",
			wantRetry: 10 * time.Millisecond,
		},
		{
			name:   "two empty data lines make one newline",
			stream: "data:\ndata:\n\n",
			want:   []Event{{Name: "message", Data: []byte("\n")}},
		},
		{
			name:   "one space after the colon is dropped, further ones kept",
			stream: "data:x\n\ndata:  y\n\n",
			want:   []Event{{Name: "message", Data: []byte("x")}, {Name: "message", Data: []byte(" y")}},
		},
		{
			name:   "a field without a colon has an empty value",
			stream: "data\ndata: x\n\n",
			want:   []Event{{Name: "message", Data: []byte("\nx")}},
		},
		{
			name:   "colons in the value are kept",
			stream: "data: {\"a\":\"b:c\"}\n\n",
			want:   []Event{{Name: "message", Data: []byte(`{"a":"b:c"}`)}},
		},
		{
			name:   "unknown fields are ignored",
			stream: "foo: bar\ndata: x\nDATA: y\n\n",
			want:   []Event{{Name: "message", Data: []byte("x")}},
		},
		{
			name:   "the name of a skipped event does not carry over",
			stream: "event: endpoint\n\ndata: x\n\n",
			want:   []Event{{Name: "message", Data: []byte("x")}},
		},
		{
			name:   "an event the stream ends inside is dropped, and its id does not count",
			stream: "id: 1\ndata: a\n\nid: 2\ndata: b\n",
			want:   []Event{{ID: "1", Name: "message", Data: []byte("a")}},
			wantID: "1",
		},
		{
			name:      "retry that is not a number is ignored",
			stream:    "retry: 20\n\nretry: soon\n\nretry: -5\n\n",
			wantRetry: 20 * time.Millisecond,
		},
		{
			name:   "an empty stream has no events",
			stream: "",
		},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				r := NewEventReader(rd.wrap(strings.NewReader(tt.stream)))
				got, err := readAll(r)
				if err != io.EOF {
					t.Fatalf("Next ended with %v, want io.EOF", err)
				}
				if formatEvents(got) != formatEvents(tt.want) {
					t.Errorf("events\n got %s\nwant %s", formatEvents(got), formatEvents(tt.want))
				}
				if r.LastID() != tt.wantID {
					t.Errorf("LastID() = %q, want %q", r.LastID(), tt.wantID)
				}
				if r.Retry() != tt.wantRetry {
					t.Errorf("Retry() = %v, want %v", r.Retry(), tt.wantRetry)
				}
			})
		}
	}
}

// TestEventReaderDeliversAfterLoneCR checks that an event ended by lone CRs
// is delivered while the stream stays open: a reader must not wait for the
// byte after a CR to see whether it is a LF.
func TestEventReaderDeliversAfterLoneCR(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("data: a\r\r"))
	got := make(chan Event, 1)
	go func() {
		ev, err := NewEventReader(pr).Next()
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		got <- ev
	}()
	select {
	case ev := <-got:
		if string(ev.Data) != "a" {
			t.Errorf("Data = %q, want %q", ev.Data, "a")
		}
	case <-time.After(10 * time.Second):
		pw.Close()
		<-got
		t.Fatal("Next is still waiting for more of the stream after a complete event")
	}
}

func TestEventReaderErrorFromStream(t *testing.T) {
	boom := errors.New("boom")
	r := NewEventReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom)))
	evs, err := readAll(r)
	if !errors.Is(err, boom) {
		t.Errorf("Next ended with %v, want %v", err, boom)
	}
	if len(evs) != 1 || string(evs[0].Data) != "a" {
		t.Errorf("events = %s, want the one complete event", formatEvents(evs))
	}
}

func TestWriteEvent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteEvent(&b, "42", "message", []byte("{\"a\":\n1}")); err != nil {
		t.Fatal(err)
	}
	if want := "id: 42\nevent: message\ndata: {\"a\":\ndata: 1}\n\n"; b.String() != want {
		t.Errorf("WriteEvent wrote %q, want %q", b.String(), want)
	}
}

// normalizeEOL turns every line ending into \n, as a round trip does.
func normalizeEOL(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func TestWriteEventRoundTrip(t *testing.T) {
	tests := []struct {
		name            string
		id, event, data string
	}{
		{name: "one line", data: `{"jsonrpc":"2.0","method":"m"}`},
		{name: "newlines in the data", id: "7", event: "message", data: "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"m\"\n}"},
		{name: "CRLF in the data", data: "{\r\n\"a\":1\r\n}"},
		{name: "lone CR in the data", data: "{\r\"a\":1\r}"},
		{name: "a trailing newline", data: "{}\n"},
		{name: "a leading newline", data: "\n{}"},
		{name: "blank lines inside", data: "a\n\n\nb"},
		{name: "text that looks like fields", event: "endpoint", data: "id: 3\nevent: x\n: comment\nretry: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteEvent(&b, tt.id, tt.event, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			r := NewEventReader(&b)
			ev, err := r.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			wantName := tt.event
			if wantName == "" {
				wantName = "message"
			}
			want := Event{ID: tt.id, Name: wantName, Data: []byte(normalizeEOL(tt.data))}
			if formatEvents([]Event{ev}) != formatEvents([]Event{want}) {
				t.Errorf("read back %s, want %s", formatEvents([]Event{ev}), formatEvents([]Event{want}))
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("after the event: %v, want io.EOF", err)
			}
		})
	}
}

func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"data: {}\n\n",
		"id: 1\r\nretry: 10\r\ndata: \r\n\r\n",
		"event: endpoint\ndata: /m?s=1\r\n\r\n",
		"data: a\rdata: b\r\r",
		": c\n\nid\ndata\n\n",
		"id: 2\x003\ndata: x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewEventReader(bytes.NewReader(stream))
		evs, err := readAll(r)
		if err != io.EOF {
			t.Fatalf("Next ended with %v, want io.EOF", err)
		}
		// Every event ends with a blank line, which takes at least one byte.
		if len(evs) > len(stream) {
			t.Fatalf("%d events from %d bytes", len(evs), len(stream))
		}
		for _, ev := range evs {
			if len(ev.Data) == 0 || ev.Name == "" {
				t.Fatalf("Next returned %s", formatEvents([]Event{ev}))
			}
		}
		// How the stream is cut into reads must not matter.
		r1 := NewEventReader(iotest.OneByteReader(bytes.NewReader(stream)))
		evs1, err := readAll(r1)
		if err != io.EOF {
			t.Fatalf("byte by byte, Next ended with %v", err)
		}
		if formatEvents(evs1) != formatEvents(evs) || r1.LastID() != r.LastID() || r1.Retry() != r.Retry() {
			t.Fatalf("read whole: %s id %q retry %v\nbyte by byte: %s id %q retry %v",
				formatEvents(evs), r.LastID(), r.Retry(), formatEvents(evs1), r1.LastID(), r1.Retry())
		}
	})
}

func FuzzWriteEvent(f *testing.F) {
	f.Add("1", "message", []byte("{\n}"))
	f.Add("", "", []byte("a\r\nb\rc\n"))
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		if strings.ContainsAny(id, "\r\n\x00") || strings.ContainsAny(name, "\r\n") {
			return // WriteEvent's callers pass plain ids and names
		}
		var b bytes.Buffer
		if err := WriteEvent(&b, id, name, data); err != nil {
			t.Fatal(err)
		}
		r := NewEventReader(&b)
		ev, err := r.Next()
		want := normalizeEOL(string(data))
		if want == "" {
			if err != io.EOF {
				t.Fatalf("empty data read back as %s, %v", formatEvents([]Event{ev}), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if string(ev.Data) != want {
			t.Fatalf("data %q read back as %q", data, ev.Data)
		}
	})
}
