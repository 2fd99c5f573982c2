// Package notify tells the person, with a native desktop notification, that
// a tool call is waiting for their decision, in plain words ("GitHub wants
// to create issue in DEFRA/ffc-pay"). Calls that arrive together become one
// notification, whose title counts every call waiting ("5 calls waiting"),
// and a notification never carries a call's arguments.
//
// [Watch] reads the approval queue's events on its own goroutine and hands
// the text to a [Notifier]; [Desktop] is the Notifier that uses the OS
// (beeep: toast notifications on Windows, the notification centre on
// macOS). On Linux Desktop is also a [Poster]: it talks to
// org.freedesktop.Notifications itself, so a click on the notification
// opens the review window and a notification whose calls were decided is
// withdrawn.
package notify

import (
	"fmt"
	"strings"
	"sync"
	"unicode"

	"github.com/countersign/countersign/internal/gate"
	"github.com/gen2brain/beeep"
)

// Notifier shows one notification. It may block (a D-Bus round trip), so
// it is only called from the goroutine Watch runs on, never from a UI one.
type Notifier interface {
	Notify(title, message string) error
}

// Poster is a Notifier whose notifications can be replaced, withdrawn and
// clicked; Watch uses these when its Notifier is one. Like Notify, its
// methods may block.
type Poster interface {
	Notifier
	// Post shows a notification in place of the one numbered replaces (0
	// for none) and returns its number. open, if not nil, runs on another
	// goroutine when the person clicks the notification.
	Post(replaces uint32, title, message string, open func()) (uint32, error)
	// Withdraw takes a notification away.
	Withdraw(id uint32) error
}

var setAppName sync.Once

// NewDesktop returns a Notifier that shows notifications as appName with
// icon, a small PNG (it travels with every notification).
func NewDesktop(appName string, icon []byte) *Desktop {
	// beeep keeps the application name in a package variable: set it once,
	// before any notification is sent.
	setAppName.Do(func() { beeep.AppName = appName })
	return &Desktop{appName: appName, icon: icon}
}

// Notify shows a notification. It never uses beeep's Alert or Beep, which
// may write a BEL byte to standard output.
func (d *Desktop) Notify(title, message string) error {
	var icon any = ""
	if len(d.icon) > 0 {
		icon = d.icon
	}
	if err := beeep.Notify(title, message, icon); err != nil {
		return fmt.Errorf("showing a notification: %w", err)
	}
	return nil
}

// serverName is the name the person knows a call's server by.
func serverName(c gate.Call) string {
	if c.ServerName != "" {
		return c.ServerName
	}
	return c.Server
}

// Text is the notification for one waiting call: "Review a tool call",
// "GitHub wants to create issue in DEFRA/ffc-pay".
func Text(c gate.Call) (title, message string) {
	return "Review a tool call", wants(c)
}

// wants says in plain words what a call would do: "GitHub wants to create
// issue in DEFRA/ffc-pay". It never holds the call's arguments.
func wants(c gate.Call) string {
	var b strings.Builder
	b.WriteString(serverName(c))
	b.WriteString(" wants to ")
	b.WriteString(doing(c))
	switch n := len(c.Targets); {
	case n == 1:
		b.WriteString(" in " + c.Targets[0])
	case n > 1:
		fmt.Fprintf(&b, " in %s and %d more", c.Targets[0], n-1)
	}
	return b.String()
}

// doing is what a call's tool does, in lower-case words: the server's title
// for it ("Create issue" → "create issue"), else its name made readable
// (create_issue, createIssue → "create issue").
func doing(c gate.Call) string {
	name := ""
	if c.Info != nil {
		name = strings.TrimSpace(c.Info.Title)
	}
	if name == "" {
		name = c.Tool
	}
	var b strings.Builder
	prevLower := false
	for _, r := range name {
		switch {
		case r == '_' || r == '-' || r == '.' || r == '/' || unicode.IsSpace(r):
			b.WriteByte(' ')
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			b.WriteByte(' ')
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		b.WriteRune(unicode.ToLower(r))
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	// "Echo Tool" is a name, not something to do: "wants to echo".
	if t, ok := strings.CutSuffix(s, " tool"); ok && t != "" {
		s = t
	}
	if s == "" {
		return "run a tool"
	}
	if len(s) > 60 {
		s = s[:57] + "…"
	}
	return s
}

// SummaryText is the notification for several calls at once: fresh are the
// calls not told yet, oldest first, and waiting is how many calls wait in
// all, told or not. "3 calls waiting", "GitHub and Jira want to run tools.
// Review them in Countersign."
func SummaryText(fresh []gate.Call, waiting int) (title, message string) {
	if waiting < len(fresh) {
		waiting = len(fresh)
	}
	if waiting == 1 {
		return Text(fresh[0])
	}
	title = fmt.Sprintf("%d calls waiting", waiting)
	if len(fresh) == 1 {
		return title, wants(fresh[0]) + ". Review it in Countersign."
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range fresh {
		n := serverName(c)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	who := names[0]
	switch {
	case len(names) == 2:
		who = names[0] + " and " + names[1]
	case len(names) == 3:
		who = names[0] + ", " + names[1] + " and " + names[2]
	case len(names) > 3:
		who = fmt.Sprintf("%s, %s and %d other servers", names[0], names[1], len(names)-2)
	}
	verb := "want"
	if len(names) == 1 {
		verb = "wants"
	}
	return title, who + " " + verb + " to run tools. Review them in Countersign."
}
