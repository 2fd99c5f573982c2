package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultMaxMessage bounds one message from a server: a JSON body, an
// event's data or a stdio line. A larger one is not read into memory; the
// request it answers gets an error saying so. An organisation's policy may
// set another (limits.maxServerAnswerMB), which the app passes in as
// HTTPOptions.MaxMessage or StdioOptions.MaxMessage.
const DefaultMaxMessage = 8 << 20

// ErrMessageTooLarge is the error of a message over the limit.
var ErrMessageTooLarge = errors.New("transport: the server sent a message larger than Countersign's limit")

// tooLargeAnswer is the text of the error answer that replaces a server's
// answer over max bytes.
func tooLargeAnswer(max int) string {
	size := fmt.Sprintf("%d KB", max>>10)
	if max >= 1<<20 {
		size = fmt.Sprintf("%d MB", max>>20)
	}
	return "the server's answer is larger than Countersign's limit of " + size + ", so it was not passed on"
}

// headerTimeout bounds how long a server may take to begin answering a
// message that is not a request, or a GET stream. (Connecting and the TLS
// handshake are bounded by http.DefaultTransport; how long a server may
// take over a request is bounded by the relay, which knows what it is.)
const headerTimeout = 60 * time.Second

// readLimited reads all of r up to max bytes; more is ErrMessageTooLarge.
func readLimited(r io.Reader, max int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, ErrMessageTooLarge
	}
	return b, nil
}

// lineReader reads newline-delimited messages of at most max bytes. Of a
// longer line it keeps only the start, for the id of what it answers.
type lineReader struct {
	r   *bufio.Reader
	max int
}

// keptOfLongLine is how much of a line over the limit is kept.
const keptOfLongLine = 64 << 10

// next returns the next line, without its line ending. A line over the
// limit is read to its end and returned cut to its first bytes, with long
// true.
func (l *lineReader) next() (line []byte, long bool, err error) {
	var buf []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > l.max+1 { // +1: the newline
				long = true
				keep := min(keptOfLongLine-len(buf), len(chunk))
				if keep > 0 {
					buf = append(buf, chunk[:keep]...)
				}
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), long, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(buf) > 0 && errors.Is(err, io.EOF):
			return bytes.TrimRight(buf, "\r\n"), long, nil
		default:
			return nil, false, err
		}
	}
}

// leadingID reads the id of a JSON-RPC message from the start of it, as
// far as it goes: the answer to which request a message over the limit
// was. It reports false when the start holds no top-level id, or one that
// is not a string or number.
func leadingID(start []byte) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(start))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, false
		}
		if key == "id" {
			var id json.RawMessage
			if dec.Decode(&id) != nil {
				return nil, false
			}
			id = bytes.TrimSpace(id)
			if len(id) == 0 || (id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9')) {
				return nil, false
			}
			return id, true
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil, false
		}
	}
	return nil, false
}

// do sends req under the connection's context. It gives up when the server
// has not begun answering within headerWithin (zero: no bound), or when
// caller ends before it has. Closing the response's body releases the
// request's context.
func do(client *http.Client, base context.Context, req *http.Request, caller context.Context, headerWithin time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancel(base)
	req = req.WithContext(ctx)
	var timer *time.Timer
	if headerWithin > 0 {
		timer = time.AfterFunc(headerWithin, cancel)
	}
	stop := func() bool { return true }
	if caller != nil {
		stop = context.AfterFunc(caller, cancel)
	}
	resp, err := client.Do(req)
	if timer != nil {
		timer.Stop()
	}
	stop()
	if err != nil {
		cancel()
		if base.Err() == nil && ctx.Err() != nil && (caller == nil || caller.Err() == nil) {
			return nil, fmt.Errorf("the server did not begin to answer within %v: %w", headerWithin, err)
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
