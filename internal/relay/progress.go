package relay

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// rising keeps one call's progress, as the host sees it, a rising
// sequence: the spec says progress MUST increase with each notification.
// Countersign speaks first, with "waiting for approval" progress while the
// call is held; the server then counts from its own start, so its values
// are moved up past Countersign's (progress and total alike), and one that
// would not rise is dropped. The zero value has sent nothing.
type rising struct {
	sent   bool    // a value has reached the host
	last   float64 // the last value the host got
	offset float64 // added to the server's values
}

// next returns the value after last for Countersign's own waiting
// progress: the seconds waited, or one more than last when that would not
// rise (keep-alives closer than a second apart).
func (p *rising) next(waited time.Duration) float64 {
	v := float64(int64(waited.Seconds()))
	if p.sent && v <= p.last {
		v = p.last + 1
	}
	p.sent, p.last = true, v
	return v
}

// serverStarts is called when the held call goes to the server: the
// server's values are counted from one past the last waiting value.
func (p *rising) serverStarts() {
	if p.sent {
		p.offset = p.last + 1
	}
}

// server takes the params of a progress notification from the server, as
// the host would get them, and returns them with progress and total
// rewritten in place for the host, or nil when they go as they are. It reports false when the value would not
// rise, or cannot be read: the host must not get it.
func (p *rising) server(params json.RawMessage) (json.RawMessage, bool) {
	mm, err := jsonrpc.Members(params, "progress", "total")
	if err != nil {
		return nil, false
	}
	var v float64
	if json.Unmarshal(mm["progress"], &v) != nil {
		return nil, false
	}
	v += p.offset
	if p.sent && v <= p.last {
		return nil, false
	}
	p.sent, p.last = true, v
	if p.offset == 0 {
		return nil, true
	}
	out, err := replaceMember(params, "progress", []byte(number(v)))
	if err == nil && mm["total"] != nil {
		var total float64
		if err = json.Unmarshal(mm["total"], &total); err == nil {
			out, err = replaceMember(out, "total", []byte(number(total+p.offset)))
		}
	}
	if err != nil {
		return nil, false
	}
	return out, true
}

func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
