// Package prooftest helps tests check that the local token is never sent to
// a program that merely holds Countersign's port.
package prooftest

import (
	"bytes"
	"net"
	"sync"
)

// Recorder is a listener that keeps every byte any of its connections
// received.
type Recorder struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

// Record wraps ln.
func Record(ln net.Listener) *Recorder { return &Recorder{Listener: ln} }

// Accept accepts a connection whose reads are recorded.
func (r *Recorder) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordedConn{Conn: c, r: r}, nil
}

// Bytes returns a copy of everything received so far.
func (r *Recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got.Bytes())
}

type recordedConn struct {
	net.Conn
	r *Recorder
}

func (c *recordedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.got.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}
