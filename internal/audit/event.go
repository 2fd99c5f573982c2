package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what an event records.
type Kind string

// The kinds of event the log accepts. Append refuses any other kind.
const (
	KindCallSubmitted   Kind = "call_submitted"   // a tool call started waiting for a decision
	KindCallDecided     Kind = "call_decided"     // a call got its verdict (Outcome, Actor, Reason)
	KindCallForwarded   Kind = "call_forwarded"   // an approved call was sent to the server
	KindCallResult      Kind = "call_result"      // the server answered (IsError, ResultSize, Redactions)
	KindPolicyDenied    Kind = "policy_denied"    // policy refused a call or read without asking anyone
	KindSignIn          Kind = "sign_in"          // the person signed in to a server
	KindSignOut         Kind = "sign_out"         // the person signed out of a server
	KindSignInFailed    Kind = "sign_in_failed"   // a sign-in did not complete
	KindSettingsChanged Kind = "settings_changed" // settings changed (Detail says what, never a secret)
	KindAppStarted      Kind = "app_started"      // Countersign started
	KindAppStopped      Kind = "app_stopped"      // Countersign stopped
	KindPruned          Kind = "audit_pruned"     // retention removed old events; written by the log itself
	// KindMessageRedacted: secrets were removed from a server message that
	// is not a tool call's result (a resource, a prompt, a sampling or
	// elicitation request, an error answer); Tool is its method.
	KindMessageRedacted Kind = "message_redacted"
)

var kinds = map[Kind]bool{
	KindCallSubmitted: true, KindCallDecided: true, KindCallForwarded: true,
	KindCallResult: true, KindPolicyDenied: true, KindSignIn: true,
	KindSignOut: true, KindSignInFailed: true, KindSettingsChanged: true,
	KindAppStarted: true, KindAppStopped: true, KindPruned: true,
	KindMessageRedacted: true,
}

// Kinds returns every kind the log accepts, in a fixed order, for filter
// menus.
func Kinds() []Kind {
	return []Kind{
		KindCallSubmitted, KindCallDecided, KindCallForwarded, KindCallResult,
		KindPolicyDenied, KindSignIn, KindSignOut, KindSignInFailed,
		KindSettingsChanged, KindAppStarted, KindAppStopped, KindMessageRedacted,
		KindPruned, // last: tests pick from the kinds before it
	}
}

// Outcome is how a call or request ended. The log stores any string, so a
// new outcome never makes an append fail; these are the ones the app uses.
type Outcome string

// Outcomes of KindCallDecided and KindPolicyDenied events.
const (
	OutcomeApproved     Outcome = "approved"
	OutcomeDenied       Outcome = "denied"
	OutcomeTimedOut     Outcome = "timed_out"
	OutcomeCancelled    Outcome = "cancelled"
	OutcomeDisconnected Outcome = "disconnected"
	OutcomeUpstreamLost Outcome = "upstream_lost"
	OutcomeShutDown     Outcome = "shut_down"
	OutcomePaused       Outcome = "paused"
	// OutcomeAskAgain: the AI app stopped waiting before the person
	// decided; it was told to call again, and the call still waits.
	OutcomeAskAgain Outcome = "asked_to_call_again"
	// OutcomeInterrupted: Countersign stopped (or was stopped) before the
	// call ended. Open records it for every call the last run left
	// half-done; the Reason says how far the call had got.
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeNotSent: the call was approved but never sent to the server,
	// because its session ended first or the approved request could not be
	// built. It is the call's closing KindCallResult.
	OutcomeNotSent Outcome = "not_sent"
	// OutcomeNotDelivered: the server answered the call (or Countersign
	// answered for it), but the answer could not be handed to the AI app:
	// it had gone. It is the call's closing KindCallResult; the result's
	// size, error flag and redactions are the answer's as it came.
	OutcomeNotDelivered Outcome = "not_delivered"
)

// Actor is who or what made a decision.
type Actor string

// Actors of decisions.
const (
	ActorPerson  Actor = "person"  // the person at the keyboard, in the app's own window
	ActorTimeout Actor = "timeout" // nobody decided before the deadline
	ActorPolicy  Actor = "policy"  // policy decided without asking
	ActorApp     Actor = "app"     // the app ended the call (shutdown, pause, lost connection) or wrote the event itself
	ActorFile    Actor = "file"    // a program outside the app changed the settings file
)

// Event is one thing that happened, as the caller reports it. Empty fields
// are stored as empty. The log stamps the time itself when it writes the
// event.
type Event struct {
	Kind    Kind
	Server  string  // configured server id
	Tool    string  // tool name
	Client  string  // the AI app's name
	CallID  string  // the gate's call id, linking a call's events
	Target  string  // repository or project the call touches
	Outcome Outcome // how it ended
	Actor   Actor   // who decided
	Reason  string  // why, in words a person can read
	// Arguments are the call's arguments as JSON, already redacted by the
	// caller: the log never sees a token.
	Arguments json.RawMessage
	// EditedArguments are the arguments the person approved after editing
	// them (redacted too); Arguments then keeps what the AI app sent.
	EditedArguments json.RawMessage
	ResultSize      int64          // bytes of the result
	IsError         bool           // the result was an error result
	Redactions      map[string]int // secrets redacted from the result, by detector name
	// Detail is any other JSON worth keeping (what a settings change
	// changed, a sign-in's scopes); never a secret.
	Detail json.RawMessage
}

// Record is an event as the log stored it: its id in the chain, the time it
// was written and its place in the hash chain.
type Record struct {
	ID   int64
	Time time.Time // UTC, millisecond precision
	Event
	PrevHash Hash // Hash of the record before it (zero for the very first)
	Hash     Hash // SHA-256(PrevHash || canonical record)
}

// errInvalid wraps every reason Append refuses an event.
var errInvalid = errors.New("invalid audit event")

// normalize checks ev and returns the exact values the log stores: text made
// valid UTF-8 without NULs, JSON compacted, "null" stored as absent. It
// refuses an unknown kind, JSON that is not JSON, and negative numbers.
func normalize(ev Event) (Event, error) {
	if !kinds[ev.Kind] {
		return Event{}, fmt.Errorf("%w: unknown kind %q", errInvalid, cleanText(string(ev.Kind)))
	}
	ev.Server = cleanText(ev.Server)
	ev.Tool = cleanText(ev.Tool)
	ev.Client = cleanText(ev.Client)
	ev.CallID = cleanText(ev.CallID)
	ev.Target = cleanText(ev.Target)
	ev.Outcome = Outcome(cleanText(string(ev.Outcome)))
	ev.Actor = Actor(cleanText(string(ev.Actor)))
	ev.Reason = cleanText(ev.Reason)
	var err error
	if ev.Arguments, err = cleanJSON("arguments", ev.Arguments); err != nil {
		return Event{}, err
	}
	if ev.EditedArguments, err = cleanJSON("edited arguments", ev.EditedArguments); err != nil {
		return Event{}, err
	}
	if ev.Detail, err = cleanJSON("detail", ev.Detail); err != nil {
		return Event{}, err
	}
	ev.Arguments = boundArguments(ev.Arguments)
	ev.EditedArguments = boundArguments(ev.EditedArguments)
	if ev.ResultSize < 0 {
		return Event{}, fmt.Errorf("%w: negative result size %d", errInvalid, ev.ResultSize)
	}
	if len(ev.Redactions) == 0 {
		ev.Redactions = nil
	} else {
		m := make(map[string]int, len(ev.Redactions))
		for k, n := range ev.Redactions {
			if n < 0 {
				return Event{}, fmt.Errorf("%w: negative redaction count for %q", errInvalid, cleanText(k))
			}
			k = cleanText(k)
			if k == "" {
				return Event{}, fmt.Errorf("%w: redaction count without a detector name", errInvalid)
			}
			m[k] += n
		}
		ev.Redactions = m
	}
	return ev, nil
}

// cleanText makes s valid UTF-8 without NUL bytes, the form every stored
// string has: SQLite's text functions stop at a NUL, and an export must
// carry each string exactly.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// cleanJSON refuses b unless it is JSON, and returns it compacted, with
// invalid UTF-8 inside strings replaced. JSON null and empty input mean
// "absent" and come back nil.
func cleanJSON(field string, b json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: %s are not JSON", errInvalid, field)
	}
	if !utf8.Valid(b) {
		// Outside strings, valid JSON is ASCII, so only string contents change.
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errInvalid, field, err)
	}
	if bytes.Equal(out.Bytes(), []byte("null")) {
		return nil, nil
	}
	return out.Bytes(), nil
}

// encodeRedactions is the stored form of a redaction count map: JSON with
// keys sorted (encoding/json sorts map keys), or "" for none.
func encodeRedactions(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(m)
	if err != nil { // a map[string]int always marshals
		panic(fmt.Sprintf("audit: encoding redaction counts: %v", err))
	}
	return string(b)
}

// decodeRedactions reads the stored form back.
func decodeRedactions(s string) (map[string]int, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]int
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("reading redaction counts: %w", err)
	}
	return m, nil
}
