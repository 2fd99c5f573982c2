// Package hostwait knows how long each AI app waits for a tool call's
// answer before it gives up on its own, so that Countersign can answer in
// time ("waiting for approval, call again") instead of losing the person's
// approval to the AI app's timeout.
//
// The figures are data (budgets.json), each with its source; an
// administrator's policy can override them.
package hostwait

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

//go:embed budgets.json
var budgetsJSON []byte

// Via is how an AI app reached Countersign.
type Via string

// The ways in.
const (
	ViaHTTP   Via = "http"   // straight to the loopback endpoint
	ViaBridge Via = "bridge" // through countersign-bridge, as Claude Desktop starts local servers
)

// ViaHeader is the request header countersign-bridge sends, with the value
// "bridge", so that Countersign knows which AI apps' limits apply. It
// grants nothing.
const ViaHeader = "Countersign-Via"

// Host is one entry of the table: AI apps whose name contains Match (lower
// case), reaching Countersign by Via ("" for any way), give up after
// Budget (zero: they wait until the person decides).
type Host struct {
	Match  string
	Via    Via
	Budget time.Duration
	Source string // where the figure comes from
}

// Table is the budgets of known AI apps, and of any other.
type Table struct {
	hosts   []Host
	unknown time.Duration
}

// Default returns the built-in table.
func Default() *Table {
	t, err := parse(budgetsJSON)
	if err != nil {
		panic("hostwait: budgets.json: " + err.Error())
	}
	return t
}

// parse reads a table in budgets.json's form.
func parse(b []byte) (*Table, error) {
	var raw struct {
		Unknown string `json:"unknown"`
		Hosts   []struct {
			Match  string `json:"match"`
			Via    Via    `json:"via"`
			Budget string `json:"budget"`
			Source string `json:"source"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	t := &Table{}
	var err error
	if t.unknown, err = ParseBudget(raw.Unknown); err != nil {
		return nil, fmt.Errorf("unknown: %w", err)
	}
	for _, h := range raw.Hosts {
		d, err := ParseBudget(h.Budget)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Match, err)
		}
		if h.Match == "" || (h.Via != "" && h.Via != ViaHTTP && h.Via != ViaBridge) {
			return nil, fmt.Errorf("entry %q: match must be set, via must be %q, %q or empty", h.Match, ViaHTTP, ViaBridge)
		}
		t.hosts = append(t.hosts, Host{Match: strings.ToLower(h.Match), Via: h.Via, Budget: d, Source: h.Source})
	}
	return t, nil
}

// ParseBudget reads a budget: a Go duration ("60s", "4m") or "none" for an
// AI app that waits until the person decides.
func ParseBudget(s string) (time.Duration, error) {
	if s == "none" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("budget %q: want a duration such as 60s or 4m, or none", s)
	}
	return d, nil
}

// With returns a copy of t whose entries come after overrides: an
// administrator's figures win over the built-in ones.
func (t *Table) With(overrides []Host) *Table {
	out := &Table{unknown: t.unknown}
	for _, h := range overrides {
		h.Match = strings.ToLower(h.Match)
		out.hosts = append(out.hosts, h)
	}
	out.hosts = append(out.hosts, t.hosts...)
	return out
}

// Budget is how long the AI app named client (its clientInfo name or
// title), reaching Countersign by via, waits for a tool call's answer; zero
// when it waits until the person decides. The first matching entry counts.
// An AI app not in the table gets the unknown budget, unless it asked for
// progress: Countersign reports progress while a call waits, and AI apps
// that ask for it commonly restart their timer on it, so such an app is
// taken to wait.
func (t *Table) Budget(client string, via Via, progress bool) time.Duration {
	name := strings.ToLower(client)
	for _, h := range t.hosts {
		if strings.Contains(name, h.Match) && (h.Via == "" || h.Via == via) {
			return h.Budget
		}
	}
	if progress {
		return 0
	}
	return t.unknown
}

// AnswerBy is how long Countersign may hold a call for an AI app with this
// budget before it must answer: a few seconds earlier, so the answer
// arrives while the AI app still listens. Zero stays zero.
func AnswerBy(budget time.Duration) time.Duration {
	margin := 5 * time.Second
	if budget < 4*margin {
		margin = budget / 4
	}
	return budget - margin
}
