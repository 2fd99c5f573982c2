//go:build !linux

package peeruid

import "net/netip"

// Lookup returns ErrUnsupported: only Linux has a socket table it reads.
func Lookup(local, remote netip.AddrPort) (uint32, error) {
	return 0, ErrUnsupported
}
