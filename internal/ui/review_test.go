package ui

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/gate"
	"github.com/google/go-cmp/cmp"
)

// press sends a keyboard shortcut to a window, as the driver does when no
// text field has the focus.
func press(w fyne.Window, key fyne.KeyName) {
	w.Canvas().(fyne.Shortcutable).TypedShortcut(&desktop.CustomShortcut{KeyName: key, Modifier: fyne.KeyModifierControl})
}

func TestReviewGoldens(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t))
		h.d.showReview()
		assertMarkup(t, "review_empty.xml", h.d.review.window().Canvas())
	})
	t.Run("two calls, the first selected", func(t *testing.T) {
		q := newFixedQueue(t, createIssue("1", T0.Add(-12*time.Second)), listIssues("2", T0.Add(-3*time.Second)))
		h := newHarness(t, q)
		h.d.showReview()
		assertMarkup(t, "review_two.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_two.png")
	})
	t.Run("the second selected: read-only, no target", func(t *testing.T) {
		q := newFixedQueue(t, createIssue("1", T0.Add(-12*time.Second)), listIssues("2", T0.Add(-3*time.Second)))
		h := newHarness(t, q)
		h.d.showReview()
		h.d.review.list.Select(1)
		assertMarkup(t, "review_second.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_second.png")
	})
	t.Run("a 2026-07-28 retry: the server's questions and the AI app's answers", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, retriedCall("1", T0.Add(-4*time.Second))))
		h.d.showReview()
		assertMarkup(t, "review_retry.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_retry.png")
	})
}

// retriedCall is a retry as the guard fills it in (see the guard's
// TestRetryShowsTheServersQuestionAndTheAnswer): the server asked for a
// confirmation and a summary by its model; the AI app also answered a
// question Countersign never saw.
func retriedCall(id string, received time.Time) gate.Call {
	return gate.Call{
		ID: id, Server: "github", ServerName: "GitHub", Tool: "update_issue_state", Client: "Claude Desktop",
		Arguments: []byte(`{"owner":"DEFRA","repo":"ffc-pay","state":"closed","all":true}`),
		Received:  received, Deadline: received.Add(5 * time.Minute),
		Info:    &gate.ToolInfo{Description: "Close or reopen issues.", DestructiveHint: ptr(true)},
		Targets: []string{"DEFRA/ffc-pay"},
		InputResponses: []byte(`{"confirm_delete":{"action":"accept","content":{"confirm":true,"note":"ghp_…"}},` +
			`"summary":{"role":"assistant","content":{"type":"text","text":"412 issues, the oldest from 2019."},"model":"claude-sonnet"},"other":{"action":"decline"}}`),
		RequestState: []byte(`"state-1"`),
		Exchanges: []gate.Exchange{
			{Key: "confirm_delete",
				Request:  []byte(`{"method":"elicitation/create","params":{"mode":"form","message":"This deletes all 412 open issues in DEFRA/ffc-pay. Are you sure?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean","title":"Delete them all"},"note":{"type":"string"}},"required":["confirm"]}}}`),
				Response: []byte(`{"action":"accept","content":{"confirm":true,"note":"[redacted: github token]"}}`)},
			{Key: "other", Response: []byte(`{"action":"decline"}`)},
			{Key: "summary",
				Request:  []byte(`{"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"Summarise the open issues of DEFRA/ffc-pay in one line."}}],"maxTokens":100}}`),
				Response: []byte(`{"role":"assistant","content":{"type":"text","text":"412 issues, the oldest from 2019."},"model":"claude-sonnet"}`)},
		},
		Warnings: []gate.Warning{
			{Kind: gate.WarnSecret, Text: "The AI app's answers to the server's questions contain what looks like a secret (github token). Approving sends it to the server.",
				Detail: "github token in inputResponses.confirm_delete.content.note: ghp_…(40 characters)\n"},
			{Kind: gate.WarnInputUnseen, Text: "Countersign did not see the server's question for some of the AI app's answers below, so it cannot show what they answer."},
			{Kind: gate.WarnDestructive, Text: "This tool may change or delete data."},
		},
	}
}

// ready moves the clock past the guard that protects a call that has just
// appeared, and past the time a call must be on screen before a key can
// approve it.
func (h *harness) ready() { h.clock.Advance(max(guard, readTime)) }

func TestReviewDecisions(t *testing.T) {
	t.Run("Approve button approves the selected call", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		q.submit(createIssue("", time.Time{}))
		h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
		if !h.d.review.visible {
			t.Error("the review window did not open when a call arrived")
		}
		h.ready()
		test.Tap(h.d.review.approveBtn)
		// The call carries a secret: approving takes a second step.
		confirm, ok := h.d.review.dlg.(*dialog.ConfirmDialog)
		if !ok {
			t.Fatalf("Approve opened %T, want a confirmation", h.d.review.dlg)
		}
		confirm.Confirm()
		if v := q.verdict(t); v.Outcome != gate.OutcomeApproved || v.Arguments != nil {
			t.Fatalf("verdict %+v", v)
		}
		if n := h.d.review.waiting(); n != 0 {
			t.Errorf("%d calls still listed", n)
		}
		if got := h.d.review.note.Text; got != "Approved: Create issue 'Fix login' in DEFRA/ffc-pay." {
			t.Errorf("note %q", got)
		}
	})
	t.Run("keyboard: Ctrl+D denies, Ctrl+Enter approves the next", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		q.submit(createIssue("", time.Time{}))
		h.waitFor("the first call", func() bool { return h.d.review.waiting() == 1 })
		q.submit(listIssues("", time.Time{}))
		h.waitFor("the second call", func() bool { return h.d.review.waiting() == 2 })
		w := h.d.review.window()
		h.ready()
		press(w, fyne.KeyD)
		v := q.verdict(t)
		if v.Outcome != gate.OutcomeDenied || v.CallID != "1" {
			t.Fatalf("Ctrl+D: verdict %+v", v)
		}
		press(w, fyne.KeyReturn) // too soon: the selection just moved to the next call
		select {
		case v := <-q.verdicts:
			t.Fatalf("a key pressed as the selection moved decided the next call: %+v", v)
		case <-time.After(50 * time.Millisecond):
		}
		if !strings.Contains(h.d.review.note.Text, "just changed") {
			t.Errorf("note %q does not say why nothing happened", h.d.review.note.Text)
		}
		h.ready()
		press(w, fyne.KeyReturn)
		if v := q.verdict(t); v.Outcome != gate.OutcomeApproved || v.CallID != "2" {
			t.Fatalf("Ctrl+Enter: verdict %+v", v)
		}
	})
	t.Run("keyboard: next and previous", func(t *testing.T) {
		q := newFixedQueue(t, createIssue("1", T0), listIssues("2", T0), createIssue("3", T0))
		h := newHarness(t, q)
		w := h.d.review.window()
		steps := []struct {
			key  fyne.KeyName
			ctrl bool
			want string
		}{
			{fyne.KeyDown, true, "2"}, {fyne.KeyDown, false, "3"}, {fyne.KeyDown, true, "3"},
			{fyne.KeyUp, true, "2"}, {fyne.KeyUp, false, "1"}, {fyne.KeyUp, false, "1"},
		}
		for i, s := range steps {
			if s.ctrl {
				press(w, s.key)
			} else {
				w.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: s.key})
			}
			if h.d.review.selected != s.want {
				t.Fatalf("step %d: selected %q, want %q", i, h.d.review.selected, s.want)
			}
			if h.d.review.listSel != h.d.review.indexOf(s.want) {
				t.Fatalf("step %d: the list highlights row %d", i, h.d.review.listSel)
			}
		}
	})
	t.Run("deny with a reason", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		q.submit(createIssue("", time.Time{}))
		h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
		h.ready()
		press(h.d.review.window(), fyne.KeyR)
		if _, ok := h.d.review.dlg.(*dialog.CustomDialog); !ok {
			t.Fatalf("Ctrl+R opened %T", h.d.review.dlg)
		}
		entry, ok := h.d.review.window().Canvas().Focused().(*widget.Entry)
		if !ok {
			t.Fatal("the reason field does not have the focus")
		}
		press(h.d.review.window(), fyne.KeyReturn) // a dialog is open: no approving behind it
		test.Type(entry, "use the staging project")
		entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		v := q.verdict(t)
		if v.Outcome != gate.OutcomeDenied || v.Reason != "use the staging project" {
			t.Fatalf("verdict %+v", v)
		}
	})
}

func TestReviewEdit(t *testing.T) {
	open := func(t *testing.T) (*harness, *realQueue, *editor) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		c := createIssue("", time.Time{})
		c.Check = allowlistCheck
		q.submit(c)
		h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
		h.ready()
		press(h.d.review.window(), fyne.KeyE)
		if h.d.review.editor == nil {
			t.Fatal("Ctrl+E opened no editor")
		}
		return h, q, h.d.review.editor
	}
	t.Run("golden", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, createIssue("1", T0.Add(-12*time.Second))))
		h.d.showReview()
		h.ready()
		press(h.d.review.window(), fyne.KeyE)
		assertMarkup(t, "review_edit.xml", h.d.review.window().Canvas())
	})
	t.Run("checks as the person types", func(t *testing.T) {
		_, _, e := open(t)
		tests := []struct {
			name, text, status string
			ok                 bool
		}{
			{"valid", `{"owner":"DEFRA","repo":"ffc-pay","title":"Fix it"}`, "Valid: matches the tool's input schema.", true},
			{"not JSON", `{"owner":`, "Not valid JSON: line 1: unexpected end of JSON input.", false},
			{"not an object", `["a"]`, "The arguments must be a JSON object: { … }.", false},
			{"a name twice", `{"owner":"a","repo":"b","title":"c","Title":"d"}`, "A name appears twice (or twice in different case) in one object: servers may read that differently, so remove one.", false},
			{"against the schema", `{"owner":"DEFRA","title":""}`, "Does not match the tool's input schema: /title: minLength: got 0, want 1; the arguments: missing property 'repo'.", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e.entry.SetText(tt.text)
				if e.status.Text != tt.status {
					t.Errorf("status %q, want %q", e.status.Text, tt.status)
				}
				if e.approve.Disabled() == tt.ok {
					t.Errorf("approve enabled = %v, want %v", !e.approve.Disabled(), tt.ok)
				}
			})
		}
	})
	t.Run("approving carries the edit", func(t *testing.T) {
		_, q, e := open(t)
		e.entry.SetText("{\n  \"owner\": \"DEFRA\", \"repo\": \"ffc-pay\", \"title\": \"Fix logout\"\n}")
		test.Tap(e.approve)
		v := q.verdict(t)
		if v.Outcome != gate.OutcomeApproved || string(v.Arguments) != `{"owner":"DEFRA","repo":"ffc-pay","title":"Fix logout"}` {
			t.Fatalf("verdict %+v, arguments %s", v, v.Arguments)
		}
	})
	t.Run("an edit the rules refuse keeps the call waiting, and says why", func(t *testing.T) {
		h, q, e := open(t)
		e.entry.SetText(`{"owner":"DEFRA","repo":"secret","title":"Fix login"}`)
		test.Tap(e.approve)
		if h.d.review.editor != e || h.d.review.dlg == nil {
			t.Fatal("the editor closed")
		}
		if want := "Your edit cannot be approved: DEFRA/secret is not in the allowlist for GitHub."; e.status.Text != want || e.status.Importance != widget.DangerImportance {
			t.Errorf("status %q (%v), want %q", e.status.Text, e.status.Importance, want)
		}
		if !e.approve.Disabled() {
			t.Error("approve stays enabled after a refusal")
		}
		if h.d.review.waiting() != 1 {
			t.Errorf("%d calls waiting, want the call still there", h.d.review.waiting())
		}
		select {
		case v := <-q.verdicts:
			t.Fatalf("the call ended: %+v", v)
		default:
		}
		e.entry.SetText(`{"owner":"DEFRA","repo":"ffc-api","title":"Fix login"}`)
		test.Tap(e.approve)
		if v := q.verdict(t); v.Outcome != gate.OutcomeApproved || string(v.Arguments) != `{"owner":"DEFRA","repo":"ffc-api","title":"Fix login"}` {
			t.Fatalf("verdict %+v, arguments %s", v, v.Arguments)
		}
		if h.d.review.dlg != nil {
			t.Error("the editor is still open after the approval")
		}
	})
	t.Run("Countersign's rules judge the edit as the person types", func(t *testing.T) {
		c := createIssue("1", T0.Add(-12*time.Second))
		c.Check = allowlistCheck
		c.Preview = func(args json.RawMessage) (string, []gate.Warning) {
			if err := allowlistCheck(args); err != nil {
				return err.Error(), nil
			}
			if strings.Contains(string(args), "ghp_") {
				return "", []gate.Warning{{Kind: gate.WarnSecret, Text: "The edited arguments contain what looks like a secret (github token). Approving sends it to the server."}}
			}
			return "", nil
		}
		h := newHarness(t, newFixedQueue(t, c))
		h.d.showReview()
		h.ready()
		press(h.d.review.window(), fyne.KeyE)
		e := h.d.review.editor
		e.entry.SetText(`{"owner":"DEFRA","repo":"secret","title":"Fix login"}`)
		if e.status.Text != "Your edit cannot be approved: DEFRA/secret is not in the allowlist for GitHub." || !e.approve.Disabled() {
			t.Errorf("outside the allowlist: status %q, approve enabled %v", e.status.Text, !e.approve.Disabled())
		}
		e.entry.SetText(`{"owner":"DEFRA","repo":"ffc-pay","title":"ghp_x"}`)
		if want := "Valid: matches the tool's input schema. But: The edited arguments contain what looks like a secret (github token). Approving sends it to the server."; e.status.Text != want ||
			e.status.Importance != widget.WarningImportance || e.approve.Disabled() {
			t.Errorf("a secret: status %q (%v), approve enabled %v", e.status.Text, e.status.Importance, !e.approve.Disabled())
		}
		assertMarkup(t, "review_edit_warned.xml", h.d.review.window().Canvas())
	})
	t.Run("golden: an edit refused", func(t *testing.T) {
		c := createIssue("1", T0.Add(-12*time.Second))
		c.Check = allowlistCheck
		h := newHarness(t, newFixedQueue(t, c))
		h.d.showReview()
		h.ready()
		press(h.d.review.window(), fyne.KeyE)
		e := h.d.review.editor
		e.entry.SetText(`{"owner":"DEFRA","repo":"secret","title":"Fix login"}`)
		test.Tap(e.approve)
		assertMarkup(t, "review_edit_refused.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_edit_refused.png")
	})
	t.Run("approving unchanged runs the call as sent", func(t *testing.T) {
		_, q, e := open(t)
		test.Tap(e.approve)
		if v := q.verdict(t); v.Outcome != gate.OutcomeApproved || v.Arguments != nil {
			t.Fatalf("verdict %+v, arguments %s", v, v.Arguments)
		}
	})
	t.Run("the dialog closes when the call ends elsewhere", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		cancel := q.submit(createIssue("", time.Time{}))
		h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
		h.ready()
		press(h.d.review.window(), fyne.KeyE)
		e := h.d.review.editor
		cancel()
		h.waitFor("the call to leave", func() bool { return h.d.review.waiting() == 0 })
		if h.d.review.dlg != nil || h.d.review.editor != nil {
			t.Error("the editor is still open")
		}
		test.Tap(e.approve) // a stale button must not decide anything
		if v := q.verdict(t); v.Outcome != gate.OutcomeCancelled {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("the schema is never fetched from elsewhere", func(t *testing.T) {
		s, why := schemaOf(&gate.ToolInfo{InputSchema: []byte(`{"$ref":"file:///etc/passwd"}`)})
		if s != nil || !strings.Contains(why, "could not be used") {
			t.Fatalf("schemaOf = %v, %q", s, why)
		}
	})
}

// allowlistCheck stands in for the guard's rules on an edit: only
// DEFRA/ffc-* repositories.
func allowlistCheck(args json.RawMessage) error {
	var a struct {
		Repo string `json:"repo"`
	}
	json.Unmarshal(args, &a)
	if !strings.HasPrefix(a.Repo, "ffc-") {
		return refusal("Your edit cannot be approved: DEFRA/" + a.Repo + " is not in the allowlist for GitHub.")
	}
	return nil
}

type refusal string

func (r refusal) Error() string { return string(r) }

func TestReviewBatch(t *testing.T) {
	t.Run("tick all and approve shows each call first", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		q.submit(createIssue("", time.Time{}))
		h.waitFor("a call", func() bool { return h.d.review.waiting() == 1 })
		q.submit(listIssues("", time.Time{}))
		h.waitFor("two calls", func() bool { return h.d.review.waiting() == 2 })
		h.ready()
		w := h.d.review.window()
		w.Canvas().(fyne.Shortcutable).TypedShortcut(&fyne.ShortcutSelectAll{})
		if got := h.d.review.approveBtn.Text; got != "Approve 2" {
			t.Errorf("button %q", got)
		}
		if !h.d.review.editBtn.Disabled() || !strings.Contains(h.d.review.why.Text, "one call at a time") {
			t.Errorf("edit enabled with two ticked, or no reason given: %q", h.d.review.why.Text)
		}
		press(w, fyne.KeyReturn)
		confirm, ok := h.d.review.dlg.(*dialog.ConfirmDialog)
		if !ok {
			t.Fatalf("approving two opened %T, want a confirmation", h.d.review.dlg)
		}
		confirm.Confirm()
		got := map[string]gate.Outcome{}
		for range 2 {
			v := q.verdict(t)
			got[v.CallID] = v.Outcome
		}
		if diff := cmp.Diff(map[string]gate.Outcome{"1": gate.OutcomeApproved, "2": gate.OutcomeApproved}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if h.d.review.note.Text != "Approved 2 calls." {
			t.Errorf("note %q", h.d.review.note.Text)
		}
	})
	t.Run("golden", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, createIssue("1", T0.Add(-12*time.Second)), listIssues("2", T0.Add(-3*time.Second))))
		h.d.showReview()
		h.ready()
		w := h.d.review.window()
		w.Canvas().(fyne.Shortcutable).TypedShortcut(&fyne.ShortcutSelectAll{})
		press(w, fyne.KeyReturn)
		assertMarkup(t, "review_batch.xml", w.Canvas())
	})
	t.Run("ticking rows and denying", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		for range 3 {
			q.submit(listIssues("", time.Time{}))
		}
		h.waitFor("three calls", func() bool { return h.d.review.waiting() == 3 })
		h.ready()
		rows := visibleRows(h.d.review)
		if len(rows) != 3 {
			t.Fatalf("%d rows on screen", len(rows))
		}
		tapBox(rows[0].tick)
		tapBox(rows[2].tick)
		test.Tap(h.d.review.denyBtn)
		got := map[string]gate.Outcome{}
		for range 2 {
			v := q.verdict(t)
			got[v.CallID] = v.Outcome
		}
		if diff := cmp.Diff(map[string]gate.Outcome{"1": gate.OutcomeDenied, "3": gate.OutcomeDenied}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if h.d.review.waiting() != 1 || h.d.review.calls[0].ID != "2" {
			t.Errorf("left %v", h.d.review.calls)
		}
	})
}

// tapBox taps a tick box in the middle, where a person would.
func tapBox(c *widget.Check) {
	test.TapAt(c, fyne.NewPos(c.MinSize().Width/2, c.Size().Height/2))
}

// visibleRows are the review list's rows on screen, top first.
func visibleRows(r *review) []*callRow {
	var out []*callRow
	for _, o := range test.LaidOutObjects(r.list) {
		if row, ok := o.(*callRow); ok && row.Visible() && row.id != "" {
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Position().Y < out[j].Position().Y })
	return out
}

func TestReviewCallsEndingElsewhere(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		end     func(cancel func())
		note    string
	}{
		{"the AI app cancels", time.Hour, func(cancel func()) { cancel() },
			"The AI app cancelled Create issue 'Fix login' in DEFRA/ffc-pay (GitHub, create_issue)."},
		{"nobody decides in time", 50 * time.Millisecond, func(func()) {},
			"Denied automatically because nobody decided in time: Create issue 'Fix login' in DEFRA/ffc-pay (GitHub, create_issue)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newRealQueue(t, tt.timeout)
			h := newHarness(t, q)
			cancel := q.submit(createIssue("", time.Time{}))
			h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 || h.d.review.built() && h.d.review.note.Text != "" })
			tt.end(cancel)
			h.waitFor("the call to leave", func() bool { return h.d.review.waiting() == 0 })
			if got := h.d.review.note.Text; got != tt.note {
				t.Errorf("note %q, want %q", got, tt.note)
			}
			if !h.d.review.noteBox.Visible() {
				t.Error("the note is hidden")
			}
		})
	}
}

func TestPause(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	q.submit(createIssue("", time.Time{}))
	h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
	h.d.tray.pause.Action()
	if v := q.verdict(t); v.Outcome != gate.OutcomePaused {
		t.Fatalf("pausing: verdict %+v", v)
	}
	h.waitFor("the list to empty", func() bool { return h.d.review.waiting() == 0 })
	if !h.d.review.pausedBox.Visible() || h.d.tray.status.Label != "Paused: every call is denied" || h.d.tray.pause.Label != "Resume" {
		t.Errorf("paused state not shown: banner %v, tray %q / %q", h.d.review.pausedBox.Visible(), h.d.tray.status.Label, h.d.tray.pause.Label)
	}
	q.submit(createIssue("", time.Time{}))
	if v := q.verdict(t); v.Outcome != gate.OutcomePaused {
		t.Fatalf("while paused: verdict %+v", v)
	}
	h.d.tray.pause.Action()
	if h.d.review.pausedBox.Visible() || h.d.tray.pause.Label != "Pause all calls" {
		t.Error("still shown as paused after resuming")
	}
	q.submit(createIssue("", time.Time{}))
	h.waitFor("a call after resuming", func() bool { return h.d.review.waiting() == 1 })
}

func TestArgumentsShownAsJSON(t *testing.T) {
	c := createIssue("1", T0)
	var v map[string]any
	if err := json.Unmarshal([]byte(prettyJSON(c.Arguments)), &v); err != nil {
		t.Fatalf("the pretty JSON does not parse: %v", err)
	}
}

// TestTheAIAppsOwnClock (issue 14): a call whose AI app gives up before
// Countersign does shows both clocks; once the AI app has stopped waiting,
// the call says so, and what approving it does.
func TestTheAIAppsOwnClock(t *testing.T) {
	waits := createIssue("1", T0.Add(-12*time.Second))
	waits.HostBudget, waits.HostDeadline = 55*time.Second, waits.Received.Add(55*time.Second)
	gone := listIssues("2", T0.Add(-70*time.Second))
	gone.HostBudget, gone.HostDeadline, gone.HostGone, gone.RetryWindow = 55*time.Second, gone.Received.Add(55*time.Second), true, 10*time.Minute

	t.Run("the AI app still waits", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, waits))
		h.d.showReview()
		assertMarkup(t, "review_host_waits.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_host_waits.png")
		if got := h.d.review.hostLeft; got == nil || !strings.Contains(got.Text, "0:43 more") {
			t.Fatalf("the AI app's clock: %v", got)
		}
	})
	t.Run("the AI app stopped waiting", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, gone))
		h.d.showReview()
		assertMarkup(t, "review_host_gone.xml", h.d.review.window().Canvas())
		capturePNG(t, h.d.review.window(), "review_host_gone.png")
	})
	t.Run("the mark follows the queue", func(t *testing.T) {
		q := newRealQueue(t, time.Hour)
		h := newHarness(t, q)
		c := listIssues("", T0)
		c.HostBudget = 50 * time.Millisecond
		q.submit(c)
		if v := q.verdict(t); v.Outcome != gate.OutcomeAskAgain {
			t.Fatalf("verdict %+v", v)
		}
		const want = "The AI app stopped waiting for an answer. If you approve, the call runs when the AI app asks for it again"
		h.waitFor("the mark", func() bool { return strings.Contains(texts(h.d.review.window()), want) })
		if !strings.Contains(texts(h.d.review.window()), "AI app stopped waiting · waiting") {
			t.Fatalf("the list row does not say the AI app stopped waiting:\n%s", texts(h.d.review.window()))
		}
	})
}
