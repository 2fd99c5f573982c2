package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// StdioOptions describe a local server started as a child process.
type StdioOptions struct {
	Command string
	Args    []string
	Env     []string // added to the parent's environment
	Dir     string
	Logger  *slog.Logger // receives the child's stderr lines at debug level
	// MaxMessage bounds one message from the server; zero means
	// DefaultMaxMessage.
	MaxMessage int
}

// Stdio is a connection to a child process speaking newline-delimited
// JSON-RPC on stdin and stdout.
type Stdio struct {
	life
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wmu   sync.Mutex
	in    chan Incoming
	exit  chan struct{} // closed when the process has exited
	log   *slog.Logger
}

// StartStdio starts the child process. ctx bounds only the start.
func StartStdio(ctx context.Context, o StdioOptions) (*Stdio, error) {
	if o.Command == "" {
		return nil, errors.New("transport: stdio server has no command")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cmd := exec.Command(o.Command, o.Args...)
	cmd.Dir = o.Dir
	if len(o.Env) > 0 {
		cmd.Env = append(cmd.Environ(), o.Env...)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("transport: starting %s: %w", o.Command, err)
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	s := &Stdio{life: newLife(), cmd: cmd, stdin: stdin, in: make(chan Incoming, 64), exit: make(chan struct{}), log: logger}
	readersDone := make(chan struct{})
	go func() {
		defer close(readersDone)
		s.readLoop(stdout, o.MaxMessage)
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			logger.Debug("stdio server stderr", "command", o.Command, "line", sc.Text())
		}
	}()
	go func() {
		<-readersDone
		err := cmd.Wait()
		close(s.exit)
		if err == nil {
			err = errors.New("transport: server process exited")
		} else {
			err = fmt.Errorf("transport: server process exited: %w", err)
		}
		s.end(err)
	}()
	return s, nil
}

// readLoop delivers the child's messages, one a line. A line over the
// limit is not passed on: the request it answers gets an error answer
// instead; when it is not clear which request that is, the connection ends
// with ErrMessageTooLarge, so that no request waits for it.
func (s *Stdio) readLoop(r io.Reader, max int) {
	lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
	for {
		line, long, err := lr.next()
		if err != nil {
			return
		}
		if long {
			id, ok := leadingID(line)
			if !ok {
				s.end(ErrMessageTooLarge)
				s.cmd.Process.Kill()
				return
			}
			s.log.Warn("a message from the server is over the limit: its request gets an error instead", "command", s.cmd.Path)
			line = jsonrpc.ErrorResponse(id, jsonrpc.CodeInternalError, tooLargeAnswer(max))
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		msg := append([]byte(nil), line...)
		if !s.deliver(s.in, Incoming{Raw: msg}) {
			return
		}
	}
}

// Send writes one message as a line.
func (s *Stdio) Send(_ context.Context, msg []byte, _ http.Header) error {
	if bytes.ContainsAny(msg, "\n\r") {
		msg = compactJSON(msg)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return s.Err()
	default:
	}
	// The three-index slice makes append copy, rather than write the newline
	// into spare capacity of the caller's array.
	if _, err := s.stdin.Write(append(msg[:len(msg):len(msg)], '\n')); err != nil {
		return fmt.Errorf("transport: writing to server: %w", err)
	}
	return nil
}

// compactJSON removes insignificant newlines, which would break line framing.
func compactJSON(msg []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, msg); err != nil {
		return msg
	}
	return b.Bytes()
}

// Incoming delivers the server's messages.
func (s *Stdio) Incoming() <-chan Incoming { return s.in }

// Close closes the child's stdin, then stops it if it has not exited
// within two seconds.
func (s *Stdio) Close() error {
	s.end(ErrClosed)
	s.wmu.Lock()
	s.stdin.Close()
	s.wmu.Unlock()
	select {
	case <-s.exit:
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-s.exit
	}
	return nil
}
