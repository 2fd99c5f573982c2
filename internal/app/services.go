package app

import (
	"errors"
	"strconv"
	"time"
)

// ErrNotAvailable marks a feature this build cannot offer yet; the error's
// text says why, in words the person can read.
var ErrNotAvailable = errors.New("not available")

// ErrAlreadyRunning is returned by Run when another Countersign already
// serves this user; it has been asked to bring its window forward.
var ErrAlreadyRunning = errors.New("countersign is already running")

// ServerStatus is one upstream server as the settings window shows it.
type ServerStatus struct {
	ID, Name  string
	Transport string // "streamable-http", "sse" or "stdio"
	Endpoint  string // the URL, or the command of a stdio server
	// State is the server's state in plain words, such as "Signed in",
	// "Not signed in" or "No sign-in needed".
	State    string
	SignedIn bool
	Scopes   []string // OAuth scopes granted, when signed in
	// SignInUnavailable says why Sign in and Sign out cannot be used for
	// this server; empty when they can.
	SignInUnavailable string
	// Locked says why the person cannot remove or change this server (it
	// is set by the organisation's policy); empty when they can.
	Locked string
}

// Allowlist is what a server's calls may touch: repositories, projects or
// spaces, as patterns.
type Allowlist struct {
	Kind    string // what an entry names, plural: "repositories", "projects"
	Example string // a valid entry to show as a hint, such as "DEFRA/ffc-*"
	Entries []AllowEntry
	// Unavailable says why this allowlist cannot be edited; empty when it
	// can.
	Unavailable string
}

// AllowEntry is one allowlist pattern.
type AllowEntry struct {
	Pattern string
	Locked  bool // set by the organisation's policy: shown, never removed
}

// TimeoutSetting is how long a call waits for a decision, and the bounds a
// new value must keep to.
type TimeoutSetting struct {
	Value, Min, Max time.Duration
	// Locked says why the person cannot change it; empty when they can.
	Locked string
}

// LoginSetting says whether Countersign starts when the person logs in.
type LoginSetting struct {
	On bool
	// Unavailable says why it cannot be changed here; empty when it can.
	Unavailable string
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Server  string    // server id, exact
	Tool    string    // part of the tool name, any case
	Outcome string    // a gate.Outcome's String(), such as "approved" or "timed out"
	From    time.Time // decided at or after
	To      time.Time // decided before
}

// AuditEvent is one decided call.
type AuditEvent struct {
	Time       time.Time `json:"time"` // when the call got its verdict
	CallID     string    `json:"callId"`
	Server     string    `json:"server"`
	ServerName string    `json:"serverName"`
	Tool       string    `json:"tool"`
	Client     string    `json:"client"`
	Targets    []string  `json:"targets,omitempty"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Edited     bool      `json:"edited,omitempty"` // approved with arguments the person changed
	Waited     Duration  `json:"waitedMs"`         // from arrival to verdict
}

// Duration is a time.Duration written in JSON as whole milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration in milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(time.Duration(d).Milliseconds(), 10)), nil
}

// AuditPage is one page of events, newest first, and how many match.
type AuditPage struct {
	Events []AuditEvent
	Total  int
}

// ExportFormat names an audit export format.
type ExportFormat string

// Export formats.
const (
	ExportCSV   ExportFormat = "csv"
	ExportJSONL ExportFormat = "jsonl"
)

// AuditInfo describes the audit log for the viewer.
type AuditInfo struct {
	// Store says where events are kept, in plain words.
	Store string
	// Servers lists the server ids events may name, for the filter.
	Servers []string
	// VerifyUnavailable says why integrity cannot be checked; empty when
	// it can.
	VerifyUnavailable string
}

// Integrity is the result of checking the audit log.
type Integrity struct {
	OK      bool
	Checked int    // events checked
	Problem string // the first problem found, in plain words, when not OK
}
