package app

import (
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// Limits are the bounds the relay and the connections to servers run
// with under an organisation's policy: the policy's figures, and
// Countersign's own where the policy leaves one out.
type Limits struct {
	// CallTimeout bounds how long a request forwarded to a server may go
	// unanswered.
	CallTimeout time.Duration
	// MaxRequest bounds one message from an AI app, in bytes.
	MaxRequest int64
	// MaxInFlight bounds the bytes of every AI app's messages being
	// handled at once: the built-in figure, or room for
	// inFlightMessages of the largest, whichever is more.
	MaxInFlight int64
	// MaxServerAnswer bounds one message from a server, in bytes.
	MaxServerAnswer int
	// MaxSessionsPerAIApp bounds the open sessions of one AI app.
	MaxSessionsPerAIApp int
	// SetByPolicy names the fields of the policy's "limits" that are set.
	SetByPolicy []string
}

// inFlightMessages is how many messages of the largest size the policy
// allows fit in the budget for all messages at once. The built-in budget
// holds eight of the built-in largest; a raised limit keeps room for four,
// so that calls waiting for a person do not shut out everyone else, while
// the memory they can take stays bounded (docs/ADMIN-POLICY.md).
const inFlightMessages = 4

// LimitsFor gives the limits in force under policy p (nil: none).
func LimitsFor(p *config.Policy) Limits {
	l := Limits{
		CallTimeout:         relay.DefaultCallTimeout,
		MaxRequest:          relay.DefaultMaxMessage,
		MaxServerAnswer:     transport.DefaultMaxMessage,
		MaxSessionsPerAIApp: relay.DefaultMaxSessionsPerClient,
		SetByPolicy:         []string{},
	}
	if p != nil {
		lp := p.Limits
		if v := lp.CallTimeoutMinutes; v != nil {
			l.CallTimeout = time.Duration(*v) * time.Minute
			l.SetByPolicy = append(l.SetByPolicy, "callTimeoutMinutes")
		}
		if v := lp.MaxRequestMB; v != nil {
			l.MaxRequest = int64(*v) << 20
			l.SetByPolicy = append(l.SetByPolicy, "maxRequestMB")
		}
		if v := lp.MaxServerAnswerMB; v != nil {
			l.MaxServerAnswer = *v << 20
			l.SetByPolicy = append(l.SetByPolicy, "maxServerAnswerMB")
		}
		if v := lp.MaxSessionsPerAIApp; v != nil {
			l.MaxSessionsPerAIApp = *v
			l.SetByPolicy = append(l.SetByPolicy, "maxSessionsPerAIApp")
		}
	}
	l.MaxInFlight = max(relay.DefaultMaxInFlight, inFlightMessages*l.MaxRequest)
	return l
}

// relay is the part of the limits the relay enforces.
func (l Limits) relay() relay.Limits {
	return relay.Limits{CallTimeout: l.CallTimeout, MaxMessage: l.MaxRequest, MaxInFlight: l.MaxInFlight, MaxSessionsPerClient: l.MaxSessionsPerAIApp}
}
