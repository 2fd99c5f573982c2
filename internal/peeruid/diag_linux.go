package peeruid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Netlink sock_diag (linux/sock_diag.h, linux/inet_diag.h): asking the
// kernel about one socket by its addresses costs microseconds, where
// reading /proc/net/tcp costs milliseconds per thousand sockets on the
// machine.
const (
	netlinkSockDiag   = 4  // NETLINK_SOCK_DIAG
	sockDiagByFamily  = 20 // SOCK_DIAG_BY_FAMILY
	inetDiagReqV2Len  = 56 // sizeof(struct inet_diag_req_v2)
	inetDiagMsgUIDOff = 64 // offsetof(struct inet_diag_msg, idiag_uid)
)

// errDiag wraps every reason the sock_diag lookup failed; Lookup then
// reads the socket table instead.
var errDiag = errors.New("peeruid: sock_diag")

// diagLookup asks the kernel for the uid owning the TCP socket whose local
// address is src and remote address is dst: the client end of a loopback
// connection, from the accepted connection's remote and local addresses.
// It returns ErrNotFound when the kernel has no such socket.
func diagLookup(src, dst netip.AddrPort) (uint32, error) {
	src, dst = unmap(src), unmap(dst)
	family := syscall.AF_INET
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		if src.Addr().Is4() != dst.Addr().Is4() {
			return 0, ErrNotFound
		}
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errDiag, err)
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("%w: %v", errDiag, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("%w: %v", errDiag, err)
	}

	const seq = 1
	msg := make([]byte, syscall.NLMSG_HDRLEN+inetDiagReqV2Len)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], sockDiagByFamily)
	ne.PutUint16(msg[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(msg[8:], seq)
	req := msg[syscall.NLMSG_HDRLEN:]
	req[0] = byte(family)
	req[1] = syscall.IPPROTO_TCP
	ne.PutUint32(req[4:], 0xffffffff) // every state
	id := req[8:]
	binary.BigEndian.PutUint16(id[0:], src.Port())
	binary.BigEndian.PutUint16(id[2:], dst.Port())
	copy(id[4:20], addrBytes(src.Addr()))
	copy(id[20:36], addrBytes(dst.Addr()))
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("%w: %v", errDiag, err)
	}

	buf := make([]byte, 8192)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errDiag, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errDiag, err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case syscall.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return 0, fmt.Errorf("%w: a short error", errDiag)
				}
				code := -int32(ne.Uint32(m.Data))
				if syscall.Errno(code) == syscall.ENOENT {
					return 0, ErrNotFound
				}
				return 0, fmt.Errorf("%w: %v", errDiag, syscall.Errno(code))
			case sockDiagByFamily:
				if len(m.Data) < inetDiagMsgUIDOff+4 {
					return 0, fmt.Errorf("%w: a short answer", errDiag)
				}
				// The answer names the socket it describes: it must be
				// the one asked about.
				got := m.Data[4:40]
				if binary.BigEndian.Uint16(got[0:]) != src.Port() || binary.BigEndian.Uint16(got[2:]) != dst.Port() {
					return 0, fmt.Errorf("%w: the answer is about another socket", errDiag)
				}
				// A TIME_WAIT socket names no owner (uid 0 whoever it
				// was); a listening one is never a client end.
				if st := m.Data[1]; st == stateTimeWait || st == stateListen {
					return 0, ErrNotFound
				}
				return ne.Uint32(m.Data[inetDiagMsgUIDOff:]), nil
			case syscall.NLMSG_DONE:
				return 0, ErrNotFound
			}
		}
	}
}

// addrBytes is an address as inet_diag_sockid holds it: 4 or 16 bytes in
// network order.
func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}
