// Package portproof lets a client of Countersign's loopback port check that
// the program listening there knows the local token before the client sends
// it. Loopback ports are shared by every user of the machine: another user's
// program can bind Countersign's port first and collect any token sent to it.
//
// Every new connection starts with a challenge: the client sends a fresh
// random nonce to [Path] in a [ChallengeHeader], without the token; the app
// answers with HMAC-SHA256(token, label || port || nonce) in a [ProofHeader];
// the client checks it in constant time, and only then sends requests with
// the token, on that same connection, so that nothing can take the port over
// between the check and the token. The port in the MAC keeps a program that
// holds the port from relaying the challenge to a Countersign on another one.
// The proof goes one way only: the app never checks a MAC from a client
// (clients prove themselves with the token itself), so no answer of the app
// can be replayed to it as a credential.
package portproof

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// Path is the endpoint that answers challenges. It needs no token.
const Path = "/countersign/proof"

// ChallengeHeader carries the client's nonce, unpadded base64url.
const ChallengeHeader = "Countersign-Challenge"

// ProofHeader carries the app's answer, unpadded base64url.
const ProofHeader = "Countersign-Proof"

// label separates this MAC from any other use of the token.
const label = "countersign loopback listener proof v1\x00"

// nonceSize is the size of a challenge in bytes.
const nonceSize = 32

// maxAnswer bounds the bytes read for the answer to a challenge.
const maxAnswer = 16 << 10

// timeout bounds the challenge exchange on a new connection.
const timeout = 5 * time.Second

// ErrNotCountersign means the program on the port did not prove that it
// knows the token: it is not this user's Countersign.
var ErrNotCountersign = errors.New("the program on Countersign's port is not Countersign")

var enc = base64.RawURLEncoding

// mac is HMAC-SHA256(token, label || port as 2 bytes big-endian || nonce).
func mac(token string, port int, nonce []byte) []byte {
	h := hmac.New(sha256.New, []byte(token))
	h.Write([]byte(label))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(port)))
	h.Write(nonce)
	return h.Sum(nil)
}

// Answer is the app's side: the proof for a challenge header value, for the
// app listening on port. It reports false for anything but a well-formed
// challenge.
func Answer(token string, port int, challenge string) (string, bool) {
	if len(challenge) != enc.EncodedLen(nonceSize) {
		return "", false
	}
	nonce, err := enc.DecodeString(challenge)
	if err != nil || len(nonce) != nonceSize {
		return "", false
	}
	return enc.EncodeToString(mac(token, port, nonce)), true
}

// verify reports whether proof answers nonce for the app on port.
func verify(token string, port int, nonce []byte, proof string) bool {
	got, err := enc.DecodeString(proof)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(token, port, nonce))
}

// Dialer returns a DialContext for an [http.Transport] that connects only
// to 127.0.0.1:port and returns a connection only once the program there
// has answered a fresh challenge. Otherwise the error wraps
// [ErrNotCountersign], or the dial error (such as connection refused).
func Dialer(port int, token string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != want {
			return nil, fmt.Errorf("portproof: refusing to connect to %s: only %s is Countersign", addr, want)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", want)
		if err != nil {
			return nil, err
		}
		if err := challenge(ctx, conn, port, token); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// challenge sends one challenge on conn and checks the answer, leaving the
// connection ready for the next request.
func challenge(ctx context.Context, conn net.Conn, port int, token string) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	host := "127.0.0.1:" + strconv.Itoa(port)
	req := "GET " + Path + " HTTP/1.1\r\nHost: " + host + "\r\n" + ChallengeHeader + ": " + enc.EncodeToString(nonce) + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return fmt.Errorf("portproof: asking the program on port %d who it is: %w", port, err)
	}
	// An answer is a few hundred bytes: a program on the port that sends
	// more is not read for the whole timeout. Nothing is read through br
	// once the answer is checked.
	br := bufio.NewReaderSize(io.LimitReader(conn, maxAnswer), 4096)
	var resp *http.Response
	_, err := br.Peek(1) // a hang-up before the first byte is not an answer
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		// Closed without a word, as Countersign does while it quits: the
		// token was not sent, and nothing says another program is there.
		return fmt.Errorf("portproof: port %d closed the connection before answering: %w", port, err)
	default:
		return fmt.Errorf("portproof: port %d: %w (%v)", port, ErrNotCountersign, err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("portproof: port %d: %w (%v)", port, ErrNotCountersign, err)
	case resp.StatusCode != http.StatusNoContent:
		return fmt.Errorf("portproof: port %d: %w (it answered %s)", port, ErrNotCountersign, resp.Status)
	case !verify(token, port, nonce, resp.Header.Get(ProofHeader)):
		return fmt.Errorf("portproof: port %d: %w (no valid proof)", port, ErrNotCountersign)
	case br.Buffered() != 0:
		// Bytes nobody asked for: the next request would read them.
		return fmt.Errorf("portproof: port %d: %w (it sent more than its answer)", port, ErrNotCountersign)
	case resp.Close:
		return fmt.Errorf("portproof: port %d: Countersign closed the connection", port)
	}
	stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	return nil
}

// Client is an HTTP client for Countersign on 127.0.0.1:port that sends
// requests, and with them the token, only over connections whose listener
// proved it knows the token. It never uses a proxy.
func Client(port int, token string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         Dialer(port, token),
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}
