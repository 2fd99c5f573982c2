package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/gate"
)

// serverEdits is the fake settings service's memory of servers added and
// removed and tokens entered.
type serverEdits struct {
	added    []addedServer
	removed  []string
	tokens   map[string]string
	changes  chan struct{}
	accepted []string // server/tool
}

type addedServer struct {
	kind, name string
	params     map[string]string
}

var testCatalog = []app.CatalogChoice{
	{Kind: "github", Name: "GitHub", Description: "GitHub online: repositories, issues and pull requests.", SignIn: "Sign in with your browser",
		Params: []app.ParamField{
			{Name: "toolsets", Label: "Toolsets", Kind: "list", Choices: []string{"repos", "issues"}, Help: "Empty means GitHub's default set."},
			{Name: "write", Label: "Allow write tools", Kind: "bool", Default: "false"},
		}},
	{Kind: "azure-devops", Name: "Azure DevOps", Description: "Azure DevOps online: work items, repositories, pipelines.", SignIn: "Sign in with your browser",
		Params: []app.ParamField{
			{Name: "organization", Label: "Organisation", Kind: "text", Required: true, Hint: "letters, digits and dashes"},
			{Name: "region", Label: "Region", Kind: "choice", Choices: []string{"eu", "us"}, Default: "eu", Locked: "Set by your organisation's policy.", Value: "eu"},
		}},
	{Kind: "aws", Name: "AWS", Description: "AWS: its services and documentation.", Unavailable: "Countersign can't sign in to AWS yet: AWS needs a kind of sign-in Countersign doesn't offer."},
}

func (f *fakeSettings) Catalog(context.Context) ([]app.CatalogChoice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.catalog != nil {
		return f.catalog, nil
	}
	if f.aws.catalog != nil {
		return f.aws.catalog, nil
	}
	return testCatalog, nil
}

func (f *fakeSettings) CheckServerParam(kind, name, value string) error {
	if name == "organization" && strings.ContainsAny(value, " /") {
		return fmt.Errorf("%q is not valid: letters, digits and dashes", value)
	}
	return nil
}

func (f *fakeSettings) AddServer(_ context.Context, kind, name string, params map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind == "azure-devops" && params["organization"] == "taken" {
		return "", errors.New("the organisation taken is not reachable")
	}
	f.servers2.added = append(f.servers2.added, addedServer{kind, name, params})
	shown := name
	if shown == "" {
		shown = kind
	}
	f.servers = append(f.servers, app.ServerStatus{ID: kind, Name: shown, Transport: "streamable-http", State: "Not signed in"})
	return kind, nil
}

func (f *fakeSettings) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers2.removed = append(f.servers2.removed, id)
	for i, s := range f.servers {
		if s.ID == id {
			f.servers = append(f.servers[:i:i], f.servers[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("there is no server %q", id)
}

func (f *fakeSettings) SetToken(_ context.Context, id, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.servers2.tokens == nil {
		f.servers2.tokens = map[string]string{}
	}
	f.servers2.tokens[id] = token
	f.signedIn[id] = true
	return nil
}

func (f *fakeSettings) Changes() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.servers2.changes == nil {
		f.servers2.changes = make(chan struct{}, 1)
	}
	return f.servers2.changes, func() {}
}

// entries finds the entries inside o, in layout order.
func entries(o fyne.CanvasObject) []*widget.Entry {
	var out []*widget.Entry
	for _, x := range test.LaidOutObjects(o) {
		if e, ok := x.(*widget.Entry); ok {
			out = append(out, e)
		}
	}
	return out
}

func TestAddServerFromCatalog(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	test.Tap(buttons(s.serverList, "Add a server…")[0])
	h.waitFor("the catalog", func() bool { return len(s.adding.choices) == 3 })
	if s.serverList.Visible() || !s.adding.view.Visible() {
		t.Fatal("the add panel does not replace the server list")
	}
	assertMarkup(t, "settings_add_catalog.xml", s.window().Canvas())

	choose := buttons(s.adding.view, "Choose")
	if len(choose) != 3 || choose[0].Disabled() || !choose[2].Disabled() {
		t.Fatalf("Choose buttons: want GitHub and Azure DevOps enabled, AWS disabled")
	}
	if !hasText(s.adding.view, "AWS yet") {
		t.Error("AWS does not say why it can't be added")
	}

	test.Tap(choose[1]) // Azure DevOps
	add := buttons(s.adding.view, "Add server")[0]
	if !add.Disabled() || !hasText(s.adding.view, "To add the server, fill in Organisation above.") {
		t.Error("Add is enabled, or silent, before the required organisation is given")
	}
	es := entries(s.adding.view) // name, organisation
	if len(es) != 2 {
		t.Fatalf("%d entries, want the name and the organisation", len(es))
	}
	test.Type(es[1], "no spaces")
	if !add.Disabled() || !hasText(s.adding.view, `"no spaces" is not valid`) {
		t.Error("an invalid organisation is not refused as typed")
	}
	es[1].SetText("defra")
	if add.Disabled() {
		t.Fatal("Add stays disabled with a valid organisation")
	}
	if !hasText(s.adding.view, "Locked: Set by your organisation's policy.") {
		t.Error("the region fixed by the policy is not shown as locked")
	}
	assertMarkup(t, "settings_add_form.xml", s.window().Canvas())
	capturePNG(t, s.window(), "settings_add_form.png")
	test.Type(es[0], "DEFRA DevOps")
	test.Tap(add)
	test.Type(es[1], "x") // typing while it is being added
	es[1].SetText("defra")
	if !add.Disabled() || !buttons(s.adding.view, "Back")[0].Disabled() {
		t.Error("Add or Back is live while the server is being added: it could be sent twice")
	}
	h.waitFor("the server to be added", func() bool { return strings.HasPrefix(s.status.Text, "Added DEFRA DevOps") })
	if diff := cmp.Diff([]addedServer{{"azure-devops", "DEFRA DevOps", map[string]string{"organization": "defra"}}},
		h.settings.servers2.added, cmp.AllowUnexported(addedServer{})); diff != "" {
		t.Errorf("AddServer calls (-want +got)\n%s", diff)
	}
	h.waitFor("the list to show it", func() bool { return len(s.servers) == 3 })
	if !s.serverList.Visible() || s.adding.view.Visible() {
		t.Error("the server list is not back after adding")
	}
	if s.allowServer != "azure-devops" {
		t.Errorf("the allowlist tab shows %q, want the new server", s.allowServer)
	}
}

func TestAddServerShowsARefusal(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	test.Tap(buttons(s.serverList, "Add a server…")[0])
	h.waitFor("the catalog", func() bool { return len(s.adding.choices) == 3 })
	test.Tap(buttons(s.adding.view, "Choose")[1])
	entries(s.adding.view)[1].SetText("taken")
	test.Tap(buttons(s.adding.view, "Add server")[0])
	h.waitFor("the refusal", func() bool { return hasText(s.adding.view, "Not added: the organisation taken is not reachable") })
	if !s.adding.view.Visible() {
		t.Error("the form closed on a refusal: what was typed is lost")
	}
	if buttons(s.adding.view, "Add server")[0].Disabled() {
		t.Error("Add is left disabled after a refusal")
	}
	test.Tap(buttons(s.adding.view, "Back")[0])
	test.Tap(buttons(s.adding.view, "Back to servers")[0])
	if !s.serverList.Visible() {
		t.Error("Back to servers does not go back")
	}
}

func TestRemoveServer(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	test.Tap(buttons(s.serverBox, "Remove")[1]) // Local files
	overlay := s.window().Canvas().Overlays().Top()
	if overlay == nil || !hasText(overlay, "Remove Local files?") {
		t.Fatal("no confirmation before removing")
	}
	test.Tap(buttons(overlay, "Yes")[0])
	h.waitFor("the removal", func() bool { return s.status.Text == "Removed Local files." })
	if diff := cmp.Diff([]string{"local"}, h.settings.servers2.removed); diff != "" {
		t.Errorf("RemoveServer calls (-want +got)\n%s", diff)
	}
	if len(s.servers) != 1 {
		t.Errorf("%d servers shown, want 1", len(s.servers))
	}
}

func TestEnterToken(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.servers = append(h.settings.servers, app.ServerStatus{ID: "sonar", Name: "SonarQube", Transport: "streamable-http",
		State: "Not signed in", TakesToken: true})
	s := h.d.settings
	s.show()
	h.waitFor("the settings to load", func() bool { return len(s.servers) == 3 })
	enter := buttons(s.serverBox, "Enter token…")
	if len(enter) != 1 || enter[0].Disabled() {
		t.Fatal("no enabled Enter token button for the server that takes one")
	}
	test.Tap(enter[0])
	overlay := s.window().Canvas().Overlays().Top()
	if overlay == nil || !hasText(overlay, "noted in the audit log") || hasText(overlay, "policy exception") {
		t.Fatal("the token dialog does not say, in plain words, that a token is an exception")
	}
	assertMarkup(t, "settings_token.xml", s.window().Canvas())
	const token = "squ_0123456789abcdef"
	es := entries(overlay)
	if len(es) != 1 || !es[0].Password {
		t.Fatal("the token is not typed into a password entry")
	}
	test.Type(es[0], token)
	test.Tap(buttons(overlay, "Save")[0])
	h.waitFor("the token to be saved", func() bool { return hasText(s.serverBox, "Signed in to SonarQube with your token.") })
	if got := h.settings.servers2.tokens["sonar"]; got != token {
		t.Errorf("SetToken got %q, want %q", got, token)
	}
	if es[0].Text != "" {
		t.Error("the dialog's entry still holds the token")
	}
}

func TestSignInAgainInTray(t *testing.T) {
	h := openSettings(t)
	h.settings.mu.Lock()
	h.settings.servers[0].NeedsSignIn = true
	h.settings.servers[0].State = "Sign in again: the refresh token was revoked"
	h.settings.mu.Unlock()
	h.settings.mu.Lock()
	changes := h.settings.servers2.changes
	h.settings.mu.Unlock()
	changes <- struct{}{}
	tr := h.d.tray
	h.waitFor("the tray to offer signing in again", func() bool { return len(tr.againItems) == 1 })
	if got := tr.menu.Items[1].Label; got != "Sign in again to GitHub…" {
		t.Errorf("menu item 1 = %q, want the sign-in item under the status line", got)
	}
	if !strings.Contains(tr.status.Label, "1 to sign in again") {
		t.Errorf("status line %q does not count it", tr.status.Label)
	}
	if !hasText(h.d.settings.serverBox, "Sign in again: the refresh token was revoked") {
		t.Error("the open settings window does not show the new state")
	}
	tr.menu.Items[1].Action()
	h.waitFor("signing in", func() bool { return hasText(h.d.settings.serverBox, "Signed in to GitHub.") })
}

func (f *fakeSettings) AcceptTool(_ context.Context, server, tool, definition string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if definition == "changed-again" {
		return errors.New("the tool changed again since it was shown: read the new change first")
	}
	f.servers2.accepted = append(f.servers2.accepted, server+"/"+tool+"@"+definition)
	return nil
}

func TestTrustAChangedTool(t *testing.T) {
	c := createIssue("1", T0.Add(-12*time.Second))
	c.Warnings = append(c.Warnings, gate.Warning{Kind: gate.WarnToolChanged,
		Text: "create_issue changed since Countersign first saw it.", Detail: "- description: old\n+ description: new", Definition: "h1"})
	q := newFixedQueue(t, c)
	h := newHarness(t, q)
	h.d.showReview()
	r := h.d.review
	trust := buttons(r.detail, "Trust the changed definition")
	if len(trust) != 1 {
		t.Fatal("no Trust button for a tool that changed")
	}
	assertMarkup(t, "review_tool_changed.xml", r.window().Canvas())
	test.Tap(trust[0])
	h.waitFor("the tool to be trusted", func() bool { return hasText(r.detail, "Trusted: later calls to create_issue") })
	if diff := cmp.Diff([]string{"github/create_issue@h1"}, h.settings.servers2.accepted); diff != "" {
		t.Errorf("AcceptTool calls (-want +got)\n%s", diff)
	}
	if len(q.decided) != 0 {
		t.Errorf("trusting the tool decided the call: %v", q.decided)
	}
	r.showDetail()
	if len(buttons(r.detail, "Trust the changed definition")) != 0 || !hasText(r.detail, "Trusted:") {
		t.Error("shown again, the call offers Trust again")
	}

	// The same tool changed again: a new definition is not shown as trusted.
	c2 := c
	c2.ID = "3"
	c2.Warnings = []gate.Warning{{Kind: gate.WarnToolChanged, Text: "create_issue changed since Countersign first saw it.", Definition: "h2"}}
	h2 := newHarness(t, newFixedQueue(t, c2))
	h2.d.showReview()
	h2.d.review.trusted = r.trusted
	h2.d.review.showDetail()
	if len(buttons(h2.d.review.detail, "Trust the changed definition")) != 1 || hasText(h2.d.review.detail, "Trusted:") {
		t.Error("a second, different change shows as already trusted")
	}

	// A definition that changed again before the click is refused, and the
	// person can see why.
	c3 := c
	c3.ID = "4"
	c3.Warnings = []gate.Warning{{Kind: gate.WarnToolChanged, Text: "changed", Definition: "changed-again"}}
	h3 := newHarness(t, newFixedQueue(t, c3))
	h3.d.showReview()
	test.Tap(buttons(h3.d.review.detail, "Trust the changed definition")[0])
	h3.waitFor("the refusal", func() bool { return hasText(h3.d.review.detail, "Not trusted: the tool changed again") })

	plain := newHarness(t, newFixedQueue(t, listIssues("2", T0)))
	plain.d.showReview()
	if n := len(buttons(plain.d.review.detail, "Trust the changed definition")) + len(buttons(plain.d.review.detail, "Trust this new tool")); n != 0 {
		t.Error("a Trust button on a call with no tool warning")
	}
}

func TestSignInAgainWithAToken(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.servers = append(h.settings.servers, app.ServerStatus{ID: "sonar", Name: "SonarQube", Transport: "streamable-http",
		State: "Sign in again: the token was refused", TakesToken: true, NeedsSignIn: true})
	h.settings.mu.Lock()
	changes := h.settings.servers2.changes
	h.settings.mu.Unlock()
	changes <- struct{}{}
	tr := h.d.tray
	h.waitFor("the tray to offer signing in again", func() bool { return len(tr.againItems) == 1 })
	tr.againItems[0].Action()
	overlay := h.d.settings.window().Canvas().Overlays().Top()
	if overlay == nil || len(entries(overlay)) != 1 || !entries(overlay)[0].Password {
		t.Fatal("signing in again to a token server does not ask for a new token")
	}
}

// catalogChoice is a real catalog entry as the settings service offers it.
func catalogChoice(t *testing.T, id string) app.CatalogChoice {
	t.Helper()
	e, ok := catalog.Lookup(id)
	if !ok {
		t.Fatalf("no catalog entry %s", id)
	}
	c := app.CatalogChoice{Kind: e.ID, Name: e.Name, Description: e.Description, SignIn: "Sign in with your browser"}
	for _, p := range e.Params {
		c.Params = append(c.Params, app.ParamField{Name: p.Name, Label: p.Label, Help: p.Help, Kind: string(p.Kind),
			Choices: p.Choices, Default: p.Default, Required: p.Required || p.RequiredToAdd, Hint: p.Hint})
	}
	return c
}

// TestAddServerFormsOfTheNewCatalog lays out the forms of the entries the
// autumn-2026 catalog changed: GitHub's lockdown (kept on by the policy
// here) and single tools, Atlassian's site, SonarQube's server address.
func TestAddServerFormsOfTheNewCatalog(t *testing.T) {
	gh := catalogChoice(t, "github")
	for i, p := range gh.Params {
		if p.Name == "lockdown" {
			gh.Params[i].Locked, gh.Params[i].Value = "Set by your organisation's policy.", "true"
		}
	}
	h := openSettings(t)
	h.settings.catalog = []app.CatalogChoice{gh, catalogChoice(t, "atlassian"), catalogChoice(t, "sonarqube-cloud")}
	s := h.d.settings
	test.Tap(buttons(s.serverList, "Add a server…")[0])
	h.waitFor("the catalog", func() bool { return len(s.adding.choices) == 3 })

	test.Tap(buttons(s.adding.view, "Choose")[0])
	if !hasText(s.adding.view, "Hide content from outside contributors") || !hasText(s.adding.view, "Locked: Set by your organisation's policy.") {
		t.Error("GitHub's lockdown is not shown locked on")
	}
	if !hasText(s.adding.view, "Single tools") {
		t.Error("GitHub's single tools are not offered")
	}
	capturePNG(t, s.window(), "add_github.png")
	scrollDown(s.adding.view)
	capturePNG(t, s.window(), "add_github_lower.png")

	test.Tap(buttons(s.adding.view, "Back")[0])
	test.Tap(buttons(s.adding.view, "Choose")[1])
	add := buttons(s.adding.view, "Add server")[0]
	if !add.Disabled() || !hasText(s.adding.view, "Atlassian site (required)") || !hasText(s.adding.view, "or paste its web address") {
		t.Error("Atlassian's site is not asked for, with its address, before adding")
	}
	es := entries(s.adding.view) // name, site, cloud ID
	test.Type(es[1], "https://defra.atlassian.net/jira/your-work")
	if add.Disabled() {
		t.Error("Add stays disabled with the site given")
	}
	scrollDown(s.adding.view)
	capturePNG(t, s.window(), "add_atlassian.png")

	test.Tap(buttons(s.adding.view, "Back")[0])
	test.Tap(buttons(s.adding.view, "Choose")[2])
	if !hasText(s.adding.view, "SonarQube Server address") {
		t.Error("SonarQube does not offer a server address")
	}
	capturePNG(t, s.window(), "add_sonarqube.png")
}

// scrollDown scrolls every scroll container in o to its end.
func scrollDown(o fyne.CanvasObject) {
	for _, x := range test.LaidOutObjects(o) {
		if sc, ok := x.(*container.Scroll); ok {
			sc.ScrollToBottom()
		}
	}
}

// TestSitelessAtlassianServerSaysWhatToDo lays out the server list with an
// Atlassian server saved before servers were tied to a site.
func TestSitelessAtlassianServerSaysWhatToDo(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	const state = "Signed in. Not tied to an Atlassian site yet, so calls naming a site are flagged for you: remove this server and add it again with its site"
	h.settings.mu.Lock()
	h.settings.servers = append(h.settings.servers, app.ServerStatus{ID: "atlassian", Name: "Atlassian (Jira and Confluence)",
		Transport: "streamable-http", Endpoint: "https://mcp.atlassian.com/v1/mcp/authv2", State: state, SignedIn: true})
	h.settings.mu.Unlock()
	s.reload()
	h.waitFor("the Atlassian server", func() bool { return len(s.servers) == 3 })
	if !hasText(s.serverList, "remove this server and add it again with its site") {
		t.Error("the server list does not say how to tie the server to its site")
	}
	capturePNG(t, s.window(), "settings_siteless_atlassian.png")
}
