// Package notify tells the person, with a native desktop notification, that
// a tool call is waiting for their decision. Calls that arrive together
// become one notification ("3 calls waiting"), and a notification never
// carries a call's arguments.
//
// [Watch] reads the approval queue's events on its own goroutine and hands
// the text to a [Notifier]; [Desktop] is the Notifier that uses the OS
// (beeep: org.freedesktop.Notifications over D-Bus on Linux, toast
// notifications on Windows, the notification centre on macOS).
package notify

import (
	"fmt"
	"strings"
	"sync"

	"github.com/countersign/countersign/internal/gate"
	"github.com/gen2brain/beeep"
)

// Notifier shows one notification. It may block (a D-Bus round trip), so
// it is only called from the goroutine Watch runs on, never from a UI one.
type Notifier interface {
	Notify(title, message string) error
}

// Desktop sends native notifications with beeep.
type Desktop struct {
	icon []byte
}

var setAppName sync.Once

// NewDesktop returns a Notifier that shows notifications as appName with
// icon, a small PNG (it travels with every notification).
func NewDesktop(appName string, icon []byte) *Desktop {
	// beeep keeps the application name in a package variable: set it once,
	// before any notification is sent.
	setAppName.Do(func() { beeep.AppName = appName })
	return &Desktop{icon: icon}
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
// "GitHub wants to run create_issue on DEFRA/ffc-pay".
func Text(c gate.Call) (title, message string) {
	var b strings.Builder
	b.WriteString(serverName(c))
	b.WriteString(" wants to run ")
	b.WriteString(c.Tool)
	switch n := len(c.Targets); {
	case n == 1:
		b.WriteString(" on " + c.Targets[0])
	case n > 1:
		fmt.Fprintf(&b, " on %s and %d more", c.Targets[0], n-1)
	}
	return "Review a tool call", b.String()
}

// SummaryText is the notification for several calls waiting at once:
// "3 calls waiting", "GitHub and Jira want to run tools. Review them in
// Countersign."
func SummaryText(calls []gate.Call) (title, message string) {
	if len(calls) == 1 {
		return Text(calls[0])
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range calls {
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
	return fmt.Sprintf("%d calls waiting", len(calls)), who + " " + verb + " to run tools. Review them in Countersign."
}
