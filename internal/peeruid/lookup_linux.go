package peeruid

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
)

// maxTable bounds how much of a socket table Lookup reads: about 27,000
// sockets. A larger table (another user opening sockets to slow every
// accept down) makes the owner unknown rather than the accept slow.
const maxTable = 4 << 20

// Lookup returns the uid owning the client end of the loopback connection
// accepted with local address local and remote address remote: from the
// kernel's sock_diag, which finds one socket at once, or where that cannot
// be asked, from /proc/net/tcp, then /proc/net/tcp6.
func Lookup(local, remote netip.AddrPort) (uint32, error) {
	uid, err := diagLookup(remote, local)
	if !errors.Is(err, errDiag) {
		return uid, err
	}
	return scanLookup(local, remote)
}

// scanLookup is Lookup from the socket tables.
func scanLookup(local, remote netip.AddrPort) (uint32, error) {
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		table, err := readTable(name)
		if err != nil {
			return 0, err
		}
		uid, err := Parse(table, local, remote)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return uid, err
	}
	return 0, ErrNotFound
}

func readTable(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("peeruid: %w", err)
	}
	defer f.Close()
	table, err := io.ReadAll(io.LimitReader(f, maxTable+1))
	if err != nil {
		return nil, fmt.Errorf("peeruid: reading %s: %w", name, err)
	}
	if len(table) > maxTable {
		return nil, fmt.Errorf("peeruid: %s is larger than %d bytes", name, maxTable)
	}
	return table, nil
}
