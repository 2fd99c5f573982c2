package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/lockdown"
)

// policyReport is what `countersign policy show` prints: the policy in
// force as policy.json would hold it, where it came from, and the places
// looked at in the order they win.
type policyReport struct {
	// Source is where the policy in force came from; null for none.
	Source *string `json:"source"`
	// Policy is the policy in force, null for none or when it is invalid.
	Policy *config.Policy `json:"policy"`
	// Error says why the policy cannot be used: no server connects.
	Error string `json:"error,omitempty"`
	// Sources are the places looked at, first wins.
	Sources []string `json:"sources"`
	// Limits are the limits in force: the policy's, or Countersign's own
	// where it sets none (or cannot be used).
	Limits limitsReport `json:"limits"`
}

// limitsReport is the limits in force in the units of the policy's
// "limits" fields.
type limitsReport struct {
	CallTimeoutMinutes  int `json:"callTimeoutMinutes"`
	MaxRequestMB        int `json:"maxRequestMB"`
	MaxServerAnswerMB   int `json:"maxServerAnswerMB"`
	MaxSessionsPerAIApp int `json:"maxSessionsPerAIApp"`
	// MessagesInFlightMB bounds every AI app's messages being handled at
	// once; it follows from maxRequestMB.
	MessagesInFlightMB int `json:"messagesInFlightMB"`
	// SetByPolicy names the fields the policy sets.
	SetByPolicy []string `json:"setByPolicy"`
}

func reportLimits(p *config.Policy) limitsReport {
	l := app.LimitsFor(p)
	return limitsReport{
		CallTimeoutMinutes:  int(l.CallTimeout / time.Minute),
		MaxRequestMB:        int(l.MaxRequest >> 20),
		MaxServerAnswerMB:   l.MaxServerAnswer >> 20,
		MaxSessionsPerAIApp: l.MaxSessionsPerAIApp,
		MessagesInFlightMB:  int(l.MaxInFlight >> 20),
		SetByPolicy:         l.SetByPolicy,
	}
}

// showPolicy prints the admin policy as the app would apply it, as JSON:
// exit status 0 when there is none or it is valid, 1 when it is invalid
// (the app fails closed).
func showPolicy(w io.Writer) int {
	return reportPolicy(w, config.AdminPolicySources())
}

func reportPolicy(w io.Writer, sources []config.PolicySource) int {
	r := policyReport{Sources: []string{}}
	for _, s := range sources {
		r.Sources = append(r.Sources, s.Where)
	}
	p, err := config.LoadAdminPolicy(sources)
	if err == nil && p != nil {
		err = p.Check(app.PolicyChecks())
		if err != nil {
			err = &config.PolicyError{Path: p.Path(), Err: err}
		}
	}
	code := 0
	var pe *config.PolicyError
	switch {
	case errors.As(err, &pe):
		r.Source, r.Error, code = &pe.Path, pe.Error(), 1
	case err != nil:
		r.Error, code = err.Error(), 1
	case p != nil:
		where := p.Path()
		r.Source, r.Policy = &where, p
	}
	r.Limits = reportLimits(r.Policy)
	b, _ := json.MarshalIndent(r, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
	return code
}

// showHostSnippets prints the snippets that lock AI apps to this machine's
// Countersign servers (docs/ADMIN-HOSTS.md): exit status 0, or 1 when they
// cannot be made (no servers yet, no bridge).
func showHostSnippets(w io.Writer, configPath string) int {
	cfg, err := config.Load(configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "countersign:", err)
		return 1
	}
	bridge, err := app.DefaultBridgePath()
	if err != nil {
		fmt.Fprintln(os.Stderr, "countersign:", err)
		return 1
	}
	m := lockdown.Machine{GOOS: runtime.GOOS, Port: cfg.Port, BridgePath: bridge}
	for _, s := range cfg.Servers {
		m.Servers = append(m.Servers, s.ID)
	}
	snippets, err := lockdown.Snippets(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "countersign:", err)
		return 1
	}
	fmt.Fprint(w, lockdown.Text(snippets))
	return 0
}
