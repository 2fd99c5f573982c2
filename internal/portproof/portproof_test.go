package portproof

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/portproof/prooftest"
)

const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// serve runs the handler mk makes for its port on a recording loopback
// listener and returns it with its port.
func serve(t *testing.T, mk func(port int) http.Handler) (*prooftest.Recorder, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	rec := prooftest.Record(ln)
	hs := &http.Server{Handler: mk(port)}
	go hs.Serve(rec)
	t.Cleanup(func() { hs.Close() })
	return rec, port
}

// honest answers challenges the way the relay does and says 200 to the rest.
func honest(tok string) func(port int) http.Handler {
	return func(port int) http.Handler { return honestOn(tok, port) }
}

func honestOn(tok string, port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path {
			p, ok := Answer(tok, port, r.Header.Get(ChallengeHeader))
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set(ProofHeader, p)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "hello "+r.Header.Get("Authorization"))
	})
}

func get(t *testing.T, port int) (string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/servers/x/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	c := Client(port, token)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func fixed(h http.HandlerFunc) func(int) http.Handler { return func(int) http.Handler { return h } }

func TestTheTokenGoesOnlyToAListenerThatProvesItKnowsIt(t *testing.T) {
	impostors := map[string]func(int) http.Handler{
		"answers everything with 204": fixed(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(ProofHeader, r.Header.Get(ChallengeHeader)) // echoes the challenge back
			w.WriteHeader(http.StatusNoContent)
		}),
		"answers everything with 200": fixed(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		"knows another token":         honest(strings.Repeat("z", 64)),
		"not found":                   fixed(http.NotFound),
	}
	for name, mk := range impostors {
		t.Run(name, func(t *testing.T) {
			rec, port := serve(t, mk)
			_, err := get(t, port)
			if !errors.Is(err, ErrNotCountersign) {
				t.Fatalf("error %v, want ErrNotCountersign", err)
			}
			got := rec.Bytes()
			if bytes.Contains(got, []byte(token)) {
				t.Fatalf("the listener received the token:\n%s", got)
			}
			if !bytes.Contains(got, []byte(ChallengeHeader)) {
				t.Fatalf("the listener did not even get a challenge:\n%s", got)
			}
		})
	}
}

func TestAListenerThatKnowsTheTokenGetsTheRequestOnTheProvedConnection(t *testing.T) {
	rec, port := serve(t, honest(token))
	got, err := get(t, port)
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello Bearer "+token {
		t.Fatalf("got %q", got)
	}
	// One connection: the challenge, then the request on it.
	if n := bytes.Count(rec.Bytes(), []byte("\r\nHost: ")); n != 2 {
		t.Fatalf("%d requests, want the challenge and the request", n)
	}
}

// A program holding the port cannot pass the challenge on to a Countersign
// listening on another port: the port is part of the proof.
func TestAProofForAnotherPortIsRefused(t *testing.T) {
	_, realPort := serve(t, honest(token))
	relayed := fixed(func(w http.ResponseWriter, r *http.Request) {
		// Ask the real Countersign with the client's challenge.
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(realPort)+Path, nil)
		req.Header.Set(ChallengeHeader, r.Header.Get(ChallengeHeader))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.Header().Set(ProofHeader, resp.Header.Get(ProofHeader))
		w.WriteHeader(resp.StatusCode)
	})
	rec, port := serve(t, relayed)
	if _, err := get(t, port); !errors.Is(err, ErrNotCountersign) {
		t.Fatalf("error %v, want ErrNotCountersign", err)
	}
	if bytes.Contains(rec.Bytes(), []byte(token)) {
		t.Fatal("the relaying listener received the token")
	}
}

func TestDialerConnectsOnlyToItsPort(t *testing.T) {
	dial := Dialer(4000, token)
	for _, addr := range []string{"127.0.0.1:4001", "localhost:4000", "[::1]:4000", "192.0.2.1:4000"} {
		if c, err := dial(context.Background(), "tcp", addr); err == nil {
			c.Close()
			t.Errorf("dialled %s", addr)
		}
	}
}

func TestAnswerRefusesMalformedChallenges(t *testing.T) {
	good := enc.EncodeToString(bytes.Repeat([]byte{7}, nonceSize))
	if _, ok := Answer(token, 1, good); !ok {
		t.Fatal("a good challenge was refused")
	}
	for _, c := range []string{"", "abc", good + "A", good[:len(good)-1], strings.Repeat("!", len(good)), enc.EncodeToString(make([]byte, 64))} {
		if _, ok := Answer(token, 1, c); ok {
			t.Errorf("Answer accepted %q", c)
		}
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(enc.EncodeToString(make([]byte, nonceSize)), 4000)
	f.Add("", 0)
	f.Add("====", 65535)
	f.Fuzz(func(t *testing.T, challenge string, port int) {
		proof, ok := Answer(token, port, challenge)
		if !ok {
			return
		}
		nonce, err := enc.DecodeString(challenge)
		if err != nil || len(nonce) != nonceSize {
			t.Fatalf("accepted %q", challenge)
		}
		if !verify(token, port, nonce, proof) {
			t.Fatal("an answer does not verify")
		}
		if verify(token, port+1, nonce, proof) && uint16(port) != uint16(port+1) {
			t.Fatal("an answer verifies for another port")
		}
	})
}

// A listener that closes the connection without answering (as Countersign
// does while it quits) gets no token, and is not called another program.
func TestAListenerThatHangsUpIsNotCalledAnotherProgram(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = get(t, ln.Addr().(*net.TCPAddr).Port)
	if err == nil || errors.Is(err, ErrNotCountersign) {
		t.Fatalf("error %v, want a hang-up that is not ErrNotCountersign", err)
	}
}

// TestAnEndlessAnswerIsCutShort: a program on the port that answers the
// challenge with a header that never ends is not read for the whole
// timeout (memory grows with every byte read): the answer to a challenge
// is small, and reading stops soon after that.
func TestAnEndlessAnswerIsCutShort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var sent atomic.Int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-Endless: ")
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for {
			n, err := c.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	_, err = Dialer(port, token)(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if !errors.Is(err, ErrNotCountersign) {
		t.Fatalf("error %v, want ErrNotCountersign", err)
	}
	// What the kernel buffers between the two ends comes on top of what
	// the client read.
	if n := sent.Load(); n > 16<<20 {
		t.Fatalf("the client read %d bytes of an answer to a challenge", n)
	}
}
