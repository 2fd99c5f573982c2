// Package peeruid finds which user of the machine opened a loopback TCP
// connection. Every local client reaches Countersign from 127.0.0.1, but on
// Linux the kernel's socket table (/proc/net/tcp and /proc/net/tcp6) names
// the owner of the client's end: the row whose local address is the
// accepted connection's remote address, and whose remote address is its
// local one, carries the client's uid.
//
// Where the owner cannot be found (another OS, a client that already
// closed, a table too large to read) Lookup returns an error and the caller
// treats the connection as coming from an unknown user.
package peeruid

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNotFound means the socket table has no row for the connection's
// client end: it closed already, or it lives in another network namespace.
var ErrNotFound = errors.New("peeruid: the connection's client end is not in the socket table")

// ErrUnsupported means this OS has no socket table Lookup can read.
var ErrUnsupported = errors.New("peeruid: finding a connection's user is not supported on this system")

// TCP states of /proc/net/tcp that name no owner or no connection: a
// TIME_WAIT row has uid 0 whoever owned the socket, and a listening socket
// is never the client end.
const (
	stateTimeWait = 0x06
	stateListen   = 0x0A
)

// Parse finds, in the contents of /proc/net/tcp or /proc/net/tcp6, the uid
// owning the client end of the connection accepted with local address local
// and remote address remote: the row with local address remote and remote
// address local. Addresses are compared without IPv4-in-IPv6 mapping. It
// returns ErrNotFound when no row matches, and an error when a line does not
// parse or matching rows name different users.
func Parse(table []byte, local, remote netip.AddrPort) (uint32, error) {
	local = unmap(local)
	remote = unmap(remote)
	var (
		uid   uint32
		found bool
	)
	for n, line := range bytes.Split(table, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 || (n == 0 && f[0] == "sl") {
			continue
		}
		if len(f) < 8 || !strings.HasSuffix(f[0], ":") {
			return 0, fmt.Errorf("peeruid: line %d: too few fields", n+1)
		}
		rowLocal, err := parseAddr(f[1])
		if err != nil {
			return 0, fmt.Errorf("peeruid: line %d: local address: %w", n+1, err)
		}
		rowRemote, err := parseAddr(f[2])
		if err != nil {
			return 0, fmt.Errorf("peeruid: line %d: remote address: %w", n+1, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil || len(f[3]) != 2 {
			return 0, fmt.Errorf("peeruid: line %d: bad state %q", n+1, f[3])
		}
		u, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("peeruid: line %d: bad uid %q", n+1, f[7])
		}
		if st == stateTimeWait || st == stateListen || rowLocal != remote || rowRemote != local {
			continue
		}
		if found && uint32(u) != uid {
			return 0, errors.New("peeruid: rows for the connection name different users")
		}
		uid, found = uint32(u), true
	}
	if !found {
		return 0, ErrNotFound
	}
	return uid, nil
}

// parseAddr reads "0100007F:1F90": an IPv4 (8 hex digits) or IPv6 (32)
// address printed as 32-bit words in the machine's byte order, a colon and
// the port in 4 hex digits.
func parseAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) || len(p) != 4 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", s)
	}
	// Each word was printed as a number: undo the machine's byte order.
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw) // 4 or 16 bytes: always valid
	return unmap(netip.AddrPortFrom(addr, uint16(port))), nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
