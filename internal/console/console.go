// Package console asks the person at the controlling terminal to approve or
// deny each tool call. It is the interim approval interface until the tray
// app exists, and reads only the terminal (/dev/tty), never standard input.
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/gate"
)

// OpenTTY opens the controlling terminal, failing when there is none (for
// example when started by a service manager), so no pipe can answer.
func OpenTTY() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no controlling terminal to ask for approvals: %w", err)
	}
	return f, nil
}

// Decider is what the prompt needs from the gate.
type Decider interface {
	Decide(id string, d gate.Decision) error
}

// Names gives the display name of a server id.
type Names func(serverID string) string

// Run prompts for each call sub reports, oldest first, until ctx ends, and
// closes sub when it returns.
func Run(ctx context.Context, sub *gate.Subscription, q Decider, tty io.ReadWriter, names Names) error {
	defer sub.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(tty)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		close(lines)
	}()
	var waiting []gate.Call
	asked := ""
	for {
		if len(waiting) > 0 && asked != waiting[0].ID {
			asked = waiting[0].ID
			ask(tty, waiting[0], names, len(waiting)-1)
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.Events():
			if !ok {
				return nil
			}
			switch ev.Kind {
			case gate.EventAdded:
				waiting = append(waiting, ev.Call)
			case gate.EventEnded:
				for i, c := range waiting {
					if c.ID == ev.Call.ID {
						waiting = append(waiting[:i], waiting[i+1:]...)
						break
					}
				}
				if ev.Call.ID == asked {
					asked = ""
					if ev.Verdict.Outcome != gate.OutcomeApproved && ev.Verdict.Outcome != gate.OutcomeDenied {
						fmt.Fprintf(tty, "\n  %s %s ended without you: %s (%s).\n", names(ev.Call.Server), ev.Call.Tool, ev.Verdict.Outcome, ev.Verdict.Reason)
					}
				}
			}
		case line, ok := <-lines:
			if !ok {
				return errors.New("the terminal closed")
			}
			if len(waiting) == 0 {
				continue
			}
			c := waiting[0]
			d, valid := parseAnswer(line)
			if !valid {
				asked = "" // ask again
				continue
			}
			if err := q.Decide(c.ID, d); err != nil {
				fmt.Fprintf(tty, "  That call has already ended.\n")
				continue
			}
			if d.Approve {
				fmt.Fprintf(tty, "  Approved.\n")
			} else {
				fmt.Fprintf(tty, "  Denied.\n")
			}
		}
	}
}

// parseAnswer reads y/yes, n/no, or any other text as a denial reason.
func parseAnswer(line string) (gate.Decision, bool) {
	s := strings.TrimSpace(line)
	switch strings.ToLower(s) {
	case "":
		return gate.Decision{}, false
	case "y", "yes":
		return gate.Decision{Approve: true}, true
	case "n", "no":
		return gate.Decision{}, true
	}
	return gate.Decision{Reason: s}, true
}

func ask(w io.Writer, c gate.Call, names Names, more int) {
	fmt.Fprintf(w, "\n%s wants to run %s", names(c.Server), c.Tool)
	if c.Client != "" {
		fmt.Fprintf(w, " (asked by %s)", c.Client)
	}
	fmt.Fprintf(w, "\n  arguments: %s\n", c.Arguments)
	fmt.Fprintf(w, "  denied automatically in %s", time.Until(c.Deadline).Round(time.Second))
	if more > 0 {
		fmt.Fprintf(w, "; %d more waiting", more)
	}
	fmt.Fprintf(w, "\nApprove? y = yes, n = no, or type a reason to deny: ")
}
