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
	// TakesToken is set for a server that signs in with an access token
	// the person pastes (a policy exception) instead of the browser.
	TakesToken bool
	// NeedsSignIn is set when the server's sign-in ended (a refresh was
	// refused) and the person must sign in again.
	NeedsSignIn bool
	// Locked says why the person cannot remove or change this server (it
	// is set by the organisation's policy); empty when they can.
	Locked string
	// ChoosesRole is set for a signed-in AWS server: the person chooses
	// the account and role its calls use (AWSAccounts, ChooseAWSRole).
	// Role says which, in plain words, once chosen.
	ChoosesRole bool
	Role        string
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
	// Kinds are what one list holds when it holds several (Jira projects
	// and Confluence spaces), for the person to choose from; an entry of
	// one is written Prefix + ":" + pattern. Empty when there is one kind.
	Kinds []AllowKind
}

// AllowKind is one kind of thing an allowlist with several holds.
type AllowKind struct {
	Prefix  string // "jira"
	Noun    string // "Jira project"
	Example string // "FFC*"
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

// EventSet is which kinds of audit event the viewer lists.
type EventSet int

// The sets of events the viewer offers. The zero value lists every event.
const (
	AllEvents EventSet = iota // every event the log holds
	Decisions                 // each call's verdict: the person's, the timeout's or the policy's
	CallSteps                 // every step of a call: asked, decided, sent, answered
	AppEvents                 // sign-ins, settings changes, Countersign starting and stopping
)

// EventSets lists the sets in the order the viewer offers them.
func EventSets() []EventSet { return []EventSet{Decisions, CallSteps, AppEvents, AllEvents} }

func (s EventSet) String() string {
	switch s {
	case AllEvents:
		return "All events"
	case Decisions:
		return "Decisions"
	case CallSteps:
		return "Every step of each call"
	case AppEvents:
		return "Sign-ins, settings, start and stop"
	}
	return "events(" + strconv.Itoa(int(s)) + ")"
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Events  EventSet
	Server  string    // server id, exact
	Tool    string    // tool name, exact
	Outcome string    // one of AuditInfo.Outcomes, such as "approved" or "timed out"
	From    time.Time // written at or after
	To      time.Time // written before
	// Text is words that must each appear in the tool, target or reason,
	// ignoring case; double quotes keep a phrase together.
	Text string
}

// AuditEvent is one stored audit event, in the words the viewer shows.
type AuditEvent struct {
	ID         int64     // its place in the log: later events have larger ids
	Time       time.Time // when it was written
	Kind       string    // what happened, in words: "Decided", "Signed in"
	Server     string    // server id
	ServerName string    // the server's name in the current settings, or its id
	Tool       string
	Client     string // the AI app
	CallID     string
	Target     string // repositories or projects the call touches
	Outcome    string // how a call ended, in AuditInfo.Outcomes' words; "error" or "answered" for a result
	Actor      string // who decided: "person", "timeout", "policy" or "Countersign"
	Edited     bool   // approved with arguments the person changed
	// Details is the reason, or what else the event records (the setting
	// changed, scopes granted, secrets removed), in one line.
	Details string
	// Waited is how long a decided call waited, from being asked to its
	// decision; zero for other events.
	Waited time.Duration
	// Arguments are the call's arguments as recorded (secrets removed),
	// indented JSON; EditedArguments what the person approved instead.
	Arguments, EditedArguments string
	// Redactions lists the secrets removed, by kind: "2 github token, 1 jwt".
	Redactions string
	// Hash and PrevHash are the event's place in the hash chain, in hex.
	Hash, PrevHash string
}

// AuditPage is one page of events, newest first. Pages are keyed by event
// id, so they stay put while new events are written.
type AuditPage struct {
	Events []AuditEvent
	More   bool  // older events match too
	Next   int64 // pass as before to get the next, older page; 0 when !More
}

// ExportFormat names an audit export format.
type ExportFormat string

// Export formats.
const (
	ExportCSV   ExportFormat = "csv"
	ExportJSONL ExportFormat = "jsonl"
)

// AuditServer is a server the viewer's filter offers.
type AuditServer struct {
	ID   string
	Name string // the name in the current settings; the id when it has none
}

// AuditInfo describes the audit log for the viewer.
type AuditInfo struct {
	// Store says where events are kept and for how long, in plain words.
	Store string
	// Servers are the servers events name or the settings list, by id.
	Servers []AuditServer
	// Tools are tool names events name, in order.
	Tools []string
	// Outcomes are the words for how a call ended, for the filter.
	Outcomes []string
}

// Integrity is the result of checking the audit log's hash chain.
type Integrity struct {
	OK      bool
	Checked int64 // events that verified, in order, before any problem
	LastID  int64 // the id of the last event verified; 0 when none
	// Problem is the first problem found, as a sentence, when not OK.
	Problem string
	// Pruned says that older events were removed by the retention period,
	// and where the chain now starts; empty when none were.
	Pruned string
	// Anchor says why the end of the log could not be checked against the
	// copy kept in the keychain; empty when it was.
	Anchor string
}
