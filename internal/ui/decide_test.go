package ui

import (
	"image/color"
	"math"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/policy"
)

// token is a GitHub token's shape, as redact finds it.
const token = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

// echoSecret is a read-only call whose argument holds a secret, as the
// guard fills it in.
func echoSecret(id string, received time.Time) gate.Call {
	return gate.Call{
		ID: id, Server: "everything", ServerName: "Everything", Tool: "echo", Client: "Cursor",
		Arguments: []byte(`{"message":"Use this to push: ` + token + `"}`),
		Received:  received, Deadline: received.Add(5 * time.Minute),
		Info: &gate.ToolInfo{Title: "Echo tool", Description: "Echoes back the input.", ReadOnlyHint: ptr(true)},
		Warnings: []gate.Warning{{Kind: gate.WarnSecret,
			Text: "The arguments contain what looks like a secret (github token). Approving sends it to the server."}},
	}
}

// deleteBranch is a destructive call with nothing else to warn of.
func deleteBranch(id string, received time.Time) gate.Call {
	return gate.Call{
		ID: id, Server: "github", ServerName: "GitHub", Tool: "delete_branch", Client: "Claude Desktop",
		Arguments: []byte(`{"owner":"DEFRA","repo":"ffc-pay","branch":"main"}`),
		Received:  received, Deadline: received.Add(5 * time.Minute),
		Info:    &gate.ToolInfo{Title: "Delete branch", DestructiveHint: ptr(true)},
		Targets: []string{"DEFRA/ffc-pay"},
	}
}

// readOnly is an ordinary call: nothing to confirm.
func readOnly(server string) gate.Call {
	return gate.Call{Server: server, ServerName: server, Tool: "get-sum", Client: "Cursor",
		Arguments: []byte(`{"a":2,"b":40}`), Info: &gate.ToolInfo{ReadOnlyHint: ptr(true)}}
}

// texts are the texts of every label and rich text in the review window.
func texts(w fyne.Window) string {
	var b strings.Builder
	for _, o := range test.LaidOutObjects(w.Canvas().Content()) {
		switch o := o.(type) {
		case *widget.Label:
			b.WriteString(o.Text + "\n")
		case *widget.RichText:
			b.WriteString(o.String() + "\n")
		}
	}
	for _, ov := range w.Canvas().Overlays().List() {
		for _, o := range test.LaidOutObjects(ov) {
			if l, ok := o.(*widget.Label); ok {
				b.WriteString(l.Text + "\n")
			}
		}
	}
	return b.String()
}

func TestSecretsHiddenUntilRevealed(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	q.submit(echoSecret("", time.Time{}))
	h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
	r := h.d.review
	w := r.window()
	// The accordion's JSON is laid out only when open: open it.
	for _, o := range test.LaidOutObjects(r.detail) {
		if acc, ok := o.(*widget.Accordion); ok {
			acc.OpenAll()
		}
	}
	capturePNG(t, w, "secret_hidden.png")
	all := texts(w)
	if strings.Contains(all, "ghp_") {
		t.Fatalf("the secret is on screen before the person asked to see it:\n%s", all)
	}
	for _, want := range []string{
		"Echo tool 'Use this to push: [hidden github token]'",  // title and list row
		"Use this to push: [hidden github token]",              // the field
		`"message": "Use this to push: [hidden github token]"`, // the JSON
	} {
		if !strings.Contains(all, want) {
			t.Errorf("%q is not on screen:\n%s", want, all)
		}
	}
	if rows := visibleRows(r); len(rows) != 1 || rows[0].warn.Resource.Name() != secretIcon().Name() {
		t.Errorf("the row's warning icon is not the secret's")
	}

	show := findButton(t, r.detail, "Show the secret")
	test.Tap(show)
	if all := texts(w); !strings.Contains(all, token) {
		t.Errorf("Show the secret did not show it:\n%s", all)
	}
	capturePNG(t, w, "secret_revealed.png")
	test.Tap(findButton(t, r.detail, "Hide the secret"))
	if all := texts(w); strings.Contains(all, "ghp_") {
		t.Errorf("Hide the secret left it on screen")
	}

	h.ready()
	test.Tap(r.approveBtn)
	r.dlg.(*dialog.ConfirmDialog).Confirm()
	if v := q.verdict(t); v.Outcome != gate.OutcomeApproved {
		t.Fatalf("verdict %+v", v)
	}
	if got := r.note.Text; got != "Approved: Echo tool 'Use this to push: [hidden github token]'." {
		t.Errorf("note %q", got)
	}
}

func findButton(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	for _, c := range test.LaidOutObjects(o) {
		if b, ok := c.(*widget.Button); ok && b.Text == text && b.Visible() {
			return b
		}
	}
	t.Fatalf("no %q button", text)
	return nil
}

func TestSecondStep(t *testing.T) {
	changed := readOnly("Everything")
	changed.Warnings = []gate.Warning{{Kind: gate.WarnToolChanged, Text: "The tool get-sum changed."}}
	unknown := readOnly("Everything")
	unknown.Info = nil
	tests := []struct {
		name   string
		call   gate.Call
		effect string
	}{
		{"may change or delete data", deleteBranch("", time.Time{}), "It may change or delete data in DEFRA/ffc-pay."},
		{"a secret", echoSecret("", time.Time{}), "It sends what looks like a secret to Everything."},
		{"a changed tool", changed, "The tool get-sum changed since Countersign first saw it."},
		{"an unknown tool", unknown, "Countersign does not know what this tool does, so it may change or delete data."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newRealQueue(t, time.Hour)
			h := newHarness(t, q)
			q.submit(tt.call)
			h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
			r := h.d.review
			h.ready()
			h.clock.Advance(time.Minute) // long enough to read: keys still do not approve it
			press(r.window(), fyne.KeyReturn)
			select {
			case v := <-q.verdicts:
				t.Fatalf("Ctrl+Enter approved a call that needs a second step: %+v", v)
			case <-time.After(50 * time.Millisecond):
			}
			if !strings.Contains(r.note.Text, "does not approve this call") {
				t.Errorf("note %q does not say why", r.note.Text)
			}
			test.Tap(r.approveBtn)
			confirm, ok := r.dlg.(*dialog.ConfirmDialog)
			if !ok {
				t.Fatalf("Approve opened %T, want a confirmation", r.dlg)
			}
			capturePNG(t, r.window(), "second_step_"+strings.ReplaceAll(tt.name, " ", "_")+".png")
			if all := texts(r.window()); !strings.Contains(all, tt.effect) {
				t.Errorf("the confirmation does not name %q:\n%s", tt.effect, all)
			}
			press(r.window(), fyne.KeyReturn) // no key confirms it
			select {
			case v := <-q.verdicts:
				t.Fatalf("Ctrl+Enter confirmed: %+v", v)
			case <-time.After(20 * time.Millisecond):
			}
			confirm.Confirm()
			if v := q.verdict(t); v.Outcome != gate.OutcomeApproved {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
	t.Run("an ordinary call needs no second step", func(t *testing.T) {
		if fx := effects(readOnly("Everything")); len(fx) != 0 {
			t.Errorf("effects %q", fx)
		}
	})
}

func TestKeysApproveOnlyCallsOnScreenLongEnough(t *testing.T) {
	// Three Ctrl+Enter presses within a second once approved two calls
	// 0.72 s apart.
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	q.submit(readOnly("A"))
	h.waitFor("the first call", func() bool { return h.d.review.waiting() == 1 })
	q.submit(readOnly("B"))
	h.waitFor("the second call", func() bool { return h.d.review.waiting() == 2 })
	w := h.d.review.window()
	none := func(when string) {
		t.Helper()
		select {
		case v := <-q.verdicts:
			t.Fatalf("%s: a key approved %+v", when, v)
		case <-time.After(30 * time.Millisecond):
		}
	}
	h.clock.Advance(700 * time.Millisecond)
	press(w, fyne.KeyReturn)
	none("0.7 s after the call appeared")
	if !strings.Contains(h.d.review.note.Text, "only just appeared") {
		t.Errorf("note %q", h.d.review.note.Text)
	}
	h.clock.Advance(300 * time.Millisecond)
	press(w, fyne.KeyReturn)
	if v := q.verdict(t); v.CallID != "1" || v.Outcome != gate.OutcomeApproved {
		t.Fatalf("verdict %+v", v)
	}
	h.clock.Advance(720 * time.Millisecond)
	press(w, fyne.KeyReturn)
	none("0.72 s after the next call came on screen")
	h.clock.Advance(280 * time.Millisecond)
	press(w, fyne.KeyReturn)
	if v := q.verdict(t); v.CallID != "2" || v.Outcome != gate.OutcomeApproved {
		t.Fatalf("verdict %+v", v)
	}
}

func TestNewCallsRaiseTheReviewWindow(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	q.submit(readOnly("A"))
	h.waitFor("the first call", func() bool { return h.d.review.waiting() == 1 })
	before := h.d.review.raised
	if !h.d.review.visible || before == 0 {
		t.Fatal("the first call did not open the review window")
	}
	h.d.showSettings() // another window comes in front
	q.submit(readOnly("B"))
	h.waitFor("the second call", func() bool { return h.d.review.waiting() == 2 })
	if h.d.review.raised != before+1 {
		t.Errorf("the open review window was not brought forward for the second call (raised %d, was %d)", h.d.review.raised, before)
	}
}

// contrast is the WCAG 2 contrast ratio of two colours.
func contrast(a, b color.Color) float64 {
	lum := func(c color.Color) float64 {
		r, g, b, _ := c.RGBA()
		ch := func(v uint32) float64 {
			s := float64(v) / 0xffff
			if s <= 0.04045 {
				return s / 12.92
			}
			return math.Pow((s+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(b)
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func TestDecisionButtonsContrast(t *testing.T) {
	if got := contrast(color.White, color.NRGBA{R: 0x43, G: 0xf4, B: 0x36, A: 0xff}); math.Abs(got-1.48) > 0.01 {
		t.Fatalf("contrast of Fyne's white on green = %.2f, want the 1.48 measured", got)
	}
	h := newHarness(t, newFixedQueue(t, createIssue("1", T0)))
	h.d.showReview()
	r := h.d.review
	h.ready()
	r.denyWithReason() // the reason dialog's Deny too
	reasonDeny := findButton(t, r.window().Canvas().Overlays().Top(), "Deny")
	r.closeDialog()
	r.edit()
	editApprove := r.editor.approve
	buttons := []struct {
		name   string
		b      *widget.Button
		fg, bg fyne.ThemeColorName
	}{
		{"Approve", r.approveBtn, theme.ColorNameForegroundOnSuccess, theme.ColorNameSuccess},
		{"Deny", r.denyBtn, theme.ColorNameForegroundOnError, theme.ColorNameError},
		{"the reason dialog's Deny", reasonDeny, theme.ColorNameForegroundOnError, theme.ColorNameError},
		{"the editor's Approve", editApprove, theme.ColorNameForegroundOnSuccess, theme.ColorNameSuccess},
	}
	for _, b := range buttons {
		want := widget.SuccessImportance
		if b.bg == theme.ColorNameError {
			want = widget.DangerImportance
		}
		if b.b.Importance != want {
			t.Fatalf("%s has importance %v: the colours checked are not the ones it uses", b.name, b.b.Importance)
		}
		th := b.b.Theme() // the theme the button draws with
		for _, v := range []fyne.ThemeVariant{theme.VariantLight, theme.VariantDark} {
			if got := contrast(th.Color(b.fg, v), th.Color(b.bg, v)); got < 4.5 {
				t.Errorf("%s in variant %d: contrast %.2f:1, below WCAG AA's 4.5:1", b.name, v, got)
			}
		}
	}
	if reasonDeny.Icon != theme.CancelIcon() {
		t.Errorf("the reason dialog's Deny carries %v, not the deny icon", reasonDeny.Icon)
	}
}

func TestAfterEditAndApproveTheNextCallShows(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	c := createIssue("", time.Time{})
	c.Check = allowlistCheck
	q.submit(c)
	h.waitFor("the first call", func() bool { return h.d.review.waiting() == 1 })
	q.submit(listIssues("", time.Time{}))
	h.waitFor("the second call", func() bool { return h.d.review.waiting() == 2 })
	r := h.d.review
	h.ready()
	press(r.window(), fyne.KeyE)
	r.editor.entry.SetText(`{"owner":"DEFRA","repo":"ffc-pay","title":"Fix logout"}`)
	test.Tap(r.editor.approve)
	if v := q.verdict(t); v.Outcome != gate.OutcomeApproved {
		t.Fatalf("verdict %+v", v)
	}
	h.settle()
	capturePNG(t, r.window(), "after_edit.png")
	if r.selected != "2" {
		t.Fatalf("selected %q after the edit, want the next call", r.selected)
	}
	if got := r.note.Text; got != "Approved with your changes: Create issue 'Fix login' in DEFRA/ffc-pay." {
		t.Errorf("note %q", got)
	}
	if all := texts(r.window()); !strings.Contains(all, "Search jira issues using jql") {
		t.Errorf("the right pane does not show the next call:\n%s", all)
	}
}

func TestCountdownShowsUrgency(t *testing.T) {
	c := readOnly("A")
	c.Deadline = T0.Add(5 * time.Minute)
	tests := []struct {
		at   time.Duration // after T0
		imp  widget.Importance
		text string
	}{
		{0, widget.MediumImportance, "in 5:00 (at 10:05:00)"},
		{4*time.Minute + 30*time.Second, widget.WarningImportance, "in 0:30: decide now, or the AI app is told no"},
		{4*time.Minute + 50*time.Second, widget.DangerImportance, "in 0:10: decide now, or the AI app is told no"},
	}
	for _, tt := range tests {
		l := widget.NewLabel("")
		setLeft(l, c, T0.Add(tt.at))
		if l.Importance != tt.imp || l.Text != tt.text {
			t.Errorf("at %v: %q (%v), want %q (%v)", tt.at, l.Text, l.Importance, tt.text, tt.imp)
		}
	}
}

func TestNotesSitWithTheListNotAboveTheNextCall(t *testing.T) {
	h := newHarness(t, newFixedQueue(t, createIssue("1", T0)))
	h.d.showReview()
	r := h.d.review
	r.setNote("Denied automatically because nobody decided in time: something else.")
	if !r.noteBox.Visible() {
		t.Fatal("the note is not shown")
	}
	// The note is under the list on the left, never over the detail pane
	// of the call now shown.
	notePos := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.noteBox)
	detailPos := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.scroll)
	if notePos.X+r.noteBox.Size().Width > detailPos.X {
		t.Errorf("the note (x %v, width %v) reaches into the detail pane (x %v)", notePos.X, r.noteBox.Size().Width, detailPos.X)
	}
	listPos := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.list)
	if notePos.Y < listPos.Y {
		t.Errorf("the note (y %v) is above the list (y %v)", notePos.Y, listPos.Y)
	}
}

func TestPausingShowsInTheOpenWindowAtOnce(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.d.showReview()
	r := h.d.review
	h.d.setPaused(true)
	if !r.pausedBox.Visible() || r.pausedBox.Size().Height == 0 {
		t.Fatalf("the paused banner is not laid out (visible %v, size %v)", r.pausedBox.Visible(), r.pausedBox.Size())
	}
	all := texts(r.window())
	if strings.Contains(all, "When an AI app wants to run a tool") || !strings.Contains(all, "Countersign is paused") {
		t.Errorf("the empty pane contradicts the banner:\n%s", all)
	}
	capturePNG(t, r.window(), "paused.png")
	h.d.setPaused(false)
	if all := texts(r.window()); r.pausedBox.Visible() || !strings.Contains(all, "When an AI app wants to run a tool") {
		t.Errorf("still paused after resuming:\n%s", all)
	}
}

// TestReviewShowsTheAtlassianSite: the review window names the Atlassian
// site of each project a call touches, as the policy reads it from the
// call's cloudId.
func TestReviewShowsTheAtlassianSite(t *testing.T) {
	p, err := policy.New(policy.Config{Name: "Atlassian", CatalogID: "atlassian",
		Params:    map[string]string{"site": "defra.atlassian.net"},
		Allowlist: map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC"}}})
	if err != nil {
		t.Fatal(err)
	}
	args := []byte(`{"cloudId":"https://defra.atlassian.net","issueIdOrKey":"FFC-12","commentBody":"Done"}`)
	d := p.Check(policy.Call{Tool: "addCommentToJiraIssue", Arguments: args})
	c := gate.Call{Server: "atlassian", ServerName: "Atlassian", Tool: "addCommentToJiraIssue", Client: "Claude Desktop", Arguments: args}
	for _, tg := range d.Targets {
		c.Targets = append(c.Targets, tg.String())
	}
	q := newRealQueue(t, time.Hour)
	h := newHarness(t, q)
	q.submit(c)
	h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
	w := h.d.review.window()
	if all := texts(w); !strings.Contains(all, "FFC on defra.atlassian.net") {
		t.Errorf("the review window does not name the site:\n%s", all)
	}
	capturePNG(t, w, "review_atlassian_site.png")
}
