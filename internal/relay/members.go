package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// member is one top-level member of a JSON object: its decoded name, and
// its bytes from the name's opening quote to the end of its value.
type member struct {
	name       string
	start, end int
}

var errMembers = errors.New("relay: not a well-formed JSON object")

// topMembers returns the members of the JSON object raw, in order. known,
// if not nil, gives the exact bytes of some members' values (the ones
// jsonrpc.Parse kept), which are then checked and stepped over instead of
// scanned. Malformed input gives an error, never a panic.
func topMembers(raw []byte, known func(name string) []byte) ([]member, error) {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, errMembers
	}
	i = skipWS(raw, i+1)
	var out []member
	if i < len(raw) && raw[i] == '}' {
		return out, trailing(raw, i+1)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, errMembers
		}
		start := i
		keyEnd, err := skipString(raw, i)
		if err != nil {
			return nil, err
		}
		name, err := memberName(raw[start:keyEnd])
		if err != nil {
			return nil, err
		}
		i = skipWS(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, errMembers
		}
		i = skipWS(raw, i+1)
		var end int
		if v := knownValue(known, name); v != nil && bytes.HasPrefix(raw[i:], v) {
			end = i + len(v)
		} else if end, err = skipValue(raw, i); err != nil {
			return nil, err
		}
		out = append(out, member{name: name, start: start, end: end})
		i = skipWS(raw, end)
		if i >= len(raw) {
			return nil, errMembers
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return out, trailing(raw, i+1)
		default:
			return nil, errMembers
		}
	}
}

func knownValue(known func(string) []byte, name string) []byte {
	if known == nil {
		return nil
	}
	return known(name)
}

// trailing fails unless only white space follows i.
func trailing(raw []byte, i int) error {
	if skipWS(raw, i) != len(raw) {
		return errMembers
	}
	return nil
}

// memberName decodes a member name's literal as encoding/json does.
func memberName(lit []byte) (string, error) {
	plain := true
	for _, c := range lit {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(lit[1 : len(lit)-1]), nil
	}
	var name string
	if err := json.Unmarshal(lit, &name); err != nil {
		return "", errMembers
	}
	return name, nil
}

func skipWS(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string literal at raw[i].
func skipString(raw []byte, i int) (int, error) {
	for j := i + 1; j < len(raw); {
		q := bytes.IndexAny(raw[j:], `"\`)
		if q < 0 {
			break
		}
		j += q
		if raw[j] == '"' {
			return j + 1, nil
		}
		j += 2 // an escape: its next byte never ends the string
	}
	return 0, errMembers
}

// skipValue returns the end of the JSON value at raw[i]. It checks only as
// much as framing needs; callers pass input json.Valid accepted.
func skipValue(raw []byte, i int) (int, error) {
	if i >= len(raw) {
		return 0, errMembers
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				end, err := skipString(raw, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errMembers
	}
	j := i
	for j < len(raw) && strings.IndexByte(",}] \t\r\n{[\":", raw[j]) < 0 {
		j++
	}
	if j == i {
		return 0, errMembers
	}
	return j, nil
}

// filteredMember reports whether name is one of JSON-RPC's own member
// names, which a filter may never rename another member to.
func filteredMember(name string) bool {
	switch name {
	case "jsonrpc", "id", "method", "params", "result", "error":
		return true
	}
	return false
}

// seenElsewhere reports whether the filter sees a top-level member of a
// server message of kind some other way: jsonrpc, id and method route the
// message and are never changed; the payload handed to Filter.Result,
// ToolsListed or ServerMessage is params in a request or notification,
// and result or error in a response. A "params" beside an answer is
// nobody's payload, so it is filtered as an extra member.
func seenElsewhere(kind jsonrpc.Kind, name string) bool {
	switch name {
	case "jsonrpc", "id", "method":
		return true
	case "params":
		return kind != jsonrpc.KindResponse
	case "result", "error":
		return kind == jsonrpc.KindResponse
	}
	return false
}

// filterMembers passes every other top-level member of a server message
// (a "_debug" or "_meta" beside the result, say) through the filter as one
// object (ServerMessage with Members set), and splices what the filter
// changed back in place, every other byte as the server wrote it. It
// reports false when the message must be withheld: its members could not
// be read, or the filter's replacement would change their number, their
// order or the message's routing.
func (s *session) filterMembers(m jsonrpc.Message, sm ServerMessage) (jsonrpc.Message, bool) {
	f := s.r.o.Filter
	if f == nil {
		return m, true
	}
	all, err := topMembers(m.Raw, func(name string) []byte {
		switch name {
		case "params":
			return m.Params
		case "result":
			return m.Result
		case "error":
			return m.Error
		}
		return nil
	})
	if err != nil {
		s.r.log.Warn("withholding a server message: its members could not be read", "server", s.srv.ID, "method", sm.Method, "err", err)
		return m, false
	}
	var others []member
	size := 2
	for _, mb := range all {
		if !seenElsewhere(m.Kind, mb.name) {
			others = append(others, mb)
			size += mb.end - mb.start + 1
		}
	}
	if len(others) == 0 {
		return m, true
	}
	obj := make([]byte, 0, size)
	obj = append(obj, '{')
	for i, mb := range others {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = append(obj, m.Raw[mb.start:mb.end]...)
	}
	obj = append(obj, '}')
	sm.Payload, sm.Members = obj, true
	repl := f.ServerMessage(s.srv.ID, sm)
	if repl == nil {
		return m, true
	}
	withhold := func(why string) (jsonrpc.Message, bool) {
		s.r.log.Warn("withholding a server message: "+why, "server", s.srv.ID, "method", sm.Method)
		return m, false
	}
	if !json.Valid(repl) {
		return withhold("the filtered members are not JSON")
	}
	got, err := topMembers(repl, nil)
	if err != nil || len(got) != len(others) {
		return withhold("the filter changed which members it holds")
	}
	raw := make([]byte, 0, len(m.Raw)+len(repl)-len(obj))
	last := 0
	for i, mb := range others {
		if got[i].name != mb.name && filteredMember(got[i].name) {
			return withhold("the filter renamed a member to one the message is routed by")
		}
		raw = append(raw, m.Raw[last:mb.start]...)
		raw = append(raw, repl[got[i].start:got[i].end]...)
		last = mb.end
	}
	raw = append(raw, m.Raw[last:]...)
	out, err := jsonrpc.Parse(raw)
	if err != nil || out.Kind != m.Kind || !bytes.Equal(out.ID, m.ID) || out.Method != m.Method ||
		(m.Kind != jsonrpc.KindResponse && !bytes.Equal(out.Params, m.Params)) ||
		!bytes.Equal(out.Result, m.Result) || !bytes.Equal(out.Error, m.Error) {
		return withhold("the filtered members would change its routing or payload")
	}
	return out, true
}
