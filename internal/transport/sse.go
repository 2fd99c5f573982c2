package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// Event is one server-sent event.
type Event struct {
	ID   string
	Name string // "message" when the stream did not name it
	Data []byte
}

// EventReader reads server-sent events (the text/event-stream format).
type EventReader struct {
	sc     *bufio.Scanner
	max    int    // bound on one event's data
	idBuf  string // the last id field read, which becomes lastID on dispatch
	lastID string
	retry  time.Duration
}

// NewEventReader reads events from r, of up to DefaultMaxMessage bytes.
func NewEventReader(r io.Reader) *EventReader {
	return newEventReader(r, DefaultMaxMessage)
}

// newEventReader reads events from r, of up to max bytes.
func newEventReader(r io.Reader, max int) *EventReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, max)), max+len("data: ")+2)
	sc.Split(lineSplitter())
	return &EventReader{sc: sc, max: max}
}

// Next returns the next event with data, io.EOF at the end of the stream,
// ErrMessageTooLarge when an event's data is over the limit (the stream
// cannot be read further).
// Comments and events with no or empty data (keep-alives, the priming
// events of 2025-11-25 servers, "id: 1\ndata: \n\n") are skipped, but their
// id and retry fields still count. An event the stream ends in the middle of
// is dropped, and its id does not count.
func (r *EventReader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 { // dispatch
			r.lastID = r.idBuf
			ev.ID = r.lastID
			if data.Len() == 0 {
				ev = Event{}
				hasData = false
				continue
			}
			if ev.Name == "" {
				ev.Name = "message"
			}
			ev.Data = data.Bytes()
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if data.Len()+len(value) >= r.max {
				return Event{}, ErrMessageTooLarge
			}
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if !bytes.ContainsRune(value, 0) {
				r.idBuf = string(value)
			}
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms >= 0 {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Event{}, ErrMessageTooLarge
		}
		return Event{}, err
	}
	return Event{}, io.EOF
}

// LastID is the id of the last event seen, for Last-Event-ID on reconnect.
func (r *EventReader) LastID() string { return r.lastID }

// Retry is the reconnection delay the stream asked for, zero if none.
func (r *EventReader) Retry() time.Duration { return r.retry }

// lineSplitter returns a split function for \n, \r\n or a lone \r line
// endings, as the SSE format requires. A \r ends its line at once, so an
// event ended by lone CRs is read without waiting for the next byte; the
// function remembers it to drop a \n that follows, even in a later read.
// It never returns a nil token while data is left, because bufio.Scanner
// stops at the end of input on one.
func lineSplitter() bufio.SplitFunc {
	afterCR := false
	return func(data []byte, atEOF bool) (advance int, token []byte, err error) {
		skip := 0
		if afterCR && len(data) > 0 && data[0] == '\n' {
			skip = 1
		}
		rest := data[skip:]
		if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
			afterCR = rest[i] == '\r'
			return skip + i + 1, rest[:i], nil
		}
		if atEOF {
			afterCR = false
			if len(rest) == 0 {
				return len(data), nil, nil
			}
			return len(data), rest, nil
		}
		return 0, nil, nil
	}
}

// WriteEvent writes one event with the given name (empty for the default)
// and data, splitting data lines as the format requires: at \n, \r\n and
// a lone \r alike, since a reader ends a line at each.
func WriteEvent(w io.Writer, id, name string, data []byte) error {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			b.WriteString("data: ")
			b.Write(data)
			b.WriteString("\n")
			break
		}
		b.WriteString("data: ")
		b.Write(data[:i])
		b.WriteString("\n")
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
