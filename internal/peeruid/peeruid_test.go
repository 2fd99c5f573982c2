package peeruid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// word prints addr the way the kernel does: each 32-bit word as a number
// loaded in the machine's byte order.
func word(ap netip.AddrPort) string {
	raw := ap.Addr().AsSlice()
	var b strings.Builder
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(raw[i:]))
	}
	return fmt.Sprintf("%s:%04X", b.String(), ap.Port())
}

func row(n int, local, remote netip.AddrPort, state byte, uid uint32) string {
	return fmt.Sprintf("  %2d: %s %s %02X 00000000:00000000 00:00000000 00000000 %5d        0 44421%d 1 000000001915700c 100 0 0 10 0\n",
		n, word(local), word(remote), state, uid, n)
}

const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

var (
	server   = netip.MustParseAddrPort("127.0.0.1:39217") // the listener: the accepted connection's local address
	client   = netip.MustParseAddrPort("127.0.0.1:51234") // its remote address
	server6  = netip.MustParseAddrPort("[::1]:39217")
	client6  = netip.MustParseAddrPort("[::1]:51234")
	mapped   = netip.MustParseAddrPort("[::ffff:127.0.0.1]:51234")
	mappedSv = netip.MustParseAddrPort("[::ffff:127.0.0.1]:39217")
)

func TestParse(t *testing.T) {
	table := header +
		row(0, server, netip.MustParseAddrPort("0.0.0.0:0"), 0x0A, 1000) + // the listener
		row(1, server, client, 0x01, 1000) + // the accepted end: Countersign's own
		row(2, client, server, 0x01, 1001) + // the client's end: its user
		row(3, netip.MustParseAddrPort("127.0.0.1:51235"), server, 0x01, 1002)
	for _, tc := range []struct {
		name          string
		table         string
		local, remote netip.AddrPort
		want          uint32
		err           error
	}{
		{name: "the client's end names its user", table: table, local: server, remote: client, want: 1001},
		{name: "mapped addresses are compared unmapped", table: table, local: mappedSv, remote: mapped, want: 1001},
		{name: "IPv6", table: header + row(0, server6, client6, 0x01, 1000) + row(1, client6, server6, 0x01, 7), local: server6, remote: client6, want: 7},
		{name: "no such connection", table: table, local: server, remote: netip.MustParseAddrPort("127.0.0.1:9"), err: ErrNotFound},
		{name: "TIME_WAIT rows have no owner", table: header + row(0, client, server, 0x06, 0), local: server, remote: client, err: ErrNotFound},
		{name: "empty", table: "", local: server, remote: client, err: ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.table), tc.local, tc.remote)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// Anything the parser does not understand is an error, never a guess.
func TestParseRefuses(t *testing.T) {
	good := row(0, client, server, 0x01, 1001)
	for name, table := range map[string]string{
		"too few fields":     "   0: " + word(client) + " " + word(server) + " 01\n",
		"no line number":     strings.Replace(good, " 0:", " 0 ", 1),
		"bad address":        strings.Replace(good, word(client), "0100007G:C822", 1),
		"short address":      strings.Replace(good, word(client), "100007F:C822", 1),
		"bad port":           strings.Replace(good, word(client), word(client)[:9]+"C82", 1),
		"bad state":          strings.Replace(good, " 01 ", " 1 ", 1),
		"uid not a number":   strings.Replace(good, " 1001 ", " -1 ", 1),
		"uid beyond 32 bits": strings.Replace(good, " 1001 ", " 4294967296 ", 1),
		"two users":          good + row(1, client, server, 0x01, 1002),
	} {
		t.Run(name, func(t *testing.T) {
			if uid, err := Parse([]byte(header+table), server, client); err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("Parse = %d, %v; want an error", uid, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(header+row(0, client, server, 0x01, 1001)), uint16(51234))
	f.Add([]byte(header+row(0, client6, server6, 0x01, 0)+row(1, server6, client6, 0x06, 5)), uint16(51234))
	f.Add([]byte("   0: 0100007F:C822 0100007F:9931 01 0:0 0:0 0 4294967295 0 1\n"), uint16(51234))
	f.Fuzz(func(t *testing.T, table []byte, port uint16) {
		remote := netip.AddrPortFrom(client.Addr(), port)
		uid, err := Parse(table, server, remote)
		if err != nil {
			return
		}
		// A uid is only ever one a matching row carries.
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			l, err1 := parseAddr(f[1])
			r, err2 := parseAddr(f[2])
			u, err3 := strconv.ParseUint(f[7], 10, 32)
			if err1 == nil && err2 == nil && err3 == nil && l == remote && r == server && uint32(u) == uid {
				return
			}
		}
		t.Fatalf("uid %d from a table with no row for %v:\n%q", uid, remote, table)
	})
}
