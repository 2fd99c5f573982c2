package ui

import (
	"context"
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

var _ AWSRoleService = (*app.Settings)(nil)

// fakeAWS is the AWS access portal as the settings service shows it.
type fakeAWS struct {
	accounts []app.AWSAccount
	roles    map[string][]string
	chosen   []string            // "account/role", in order
	catalog  []app.CatalogChoice // replaces the test catalog when set
}

func (f *fakeSettings) AWSAccounts(_ context.Context, id string) (app.AWSRoleChoice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return app.AWSRoleChoice{Accounts: slices.Clone(f.aws.accounts)}, nil
}

func (f *fakeSettings) AWSRoles(_ context.Context, id, account string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.aws.roles[account]), nil
}

func (f *fakeSettings) ChooseAWSRole(_ context.Context, id string, account app.AWSAccount, role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aws.chosen = append(f.aws.chosen, account.ID+"/"+role)
	for i := range f.servers {
		if f.servers[i].ID == id {
			f.servers[i].State, f.servers[i].Role = "Signed in", "Account "+account.ID+", role "+role
		}
	}
	return nil
}

// An AWS server's card offers sign-in, then the choice of account and
// role, in plain words; the choice reaches the settings service.
func TestSettingsAWSSignInAndRoleChoice(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.mu.Lock()
	h.settings.servers = append(h.settings.servers, app.ServerStatus{ID: "aws", Name: "AWS", Transport: "streamable-http",
		Endpoint: "https://aws-mcp.eu-west-1.api.aws/mcp", State: "Not signed in"})
	h.settings.aws = fakeAWS{
		accounts: []app.AWSAccount{
			{ID: "111122223333", Name: "Payments Dev", Label: "Payments Dev (111122223333)"},
			{ID: "444455556666", Name: "Payments Prod", Label: "Payments Prod (444455556666)"},
		},
		roles: map[string][]string{"111122223333": {"PowerUser", "ReadOnly"}, "444455556666": {"ReadOnly"}},
	}
	h.settings.mu.Unlock()
	s := h.d.settings
	s.show()
	h.waitFor("the servers", func() bool { return len(s.servers) == 3 })
	s.window().Resize(fyne.NewSize(760, 700)) // room for the AWS card's notes in the pictures
	capturePNG(t, s.window(), "aws-1-not-signed-in.png")
	if len(buttons(s.serverBox, "Choose account and role…")) != 0 {
		t.Fatal("a role can be chosen before signing in")
	}

	// Signing in (the fake signs in at once); the app then says a role is
	// to be chosen.
	test.Tap(buttons(s.serverBox, "Sign in")[2])
	h.waitFor("the sign-in", func() bool { return hasText(s.serverBox, "Signed in to AWS.") })
	h.settings.mu.Lock()
	delete(h.settings.signedIn, "aws") // the app's own words for an AWS sign-in, without OAuth scopes
	h.settings.servers[2].SignedIn, h.settings.servers[2].ChoosesRole = true, true
	h.settings.servers[2].State = "Signed in: choose an AWS account and role"
	h.settings.mu.Unlock()
	s.reload()
	h.waitFor("the role button", func() bool { return len(buttons(s.serverBox, "Choose account and role…")) == 1 })
	capturePNG(t, s.window(), "aws-2-signed-in-choose-role.png")

	test.Tap(buttons(s.serverBox, "Choose account and role…")[0])
	var selects []*widget.Select
	h.waitFor("the role dialog", func() bool {
		selects = nil
		for _, o := range test.LaidOutObjects(s.window().Canvas().Overlays().Top()) {
			if sel, ok := o.(*widget.Select); ok {
				selects = append(selects, sel)
			}
		}
		return len(selects) == 2
	})
	account, role := selects[0], selects[1]
	if !role.Disabled() {
		t.Error("roles can be picked before an account")
	}
	account.SetSelectedIndex(0)
	h.waitFor("the roles", func() bool { return !role.Disabled() && len(role.Options) == 2 })
	role.SetSelected("ReadOnly")
	h.settle()
	capturePNG(t, s.window(), "aws-3-role-choice.png")
	use := buttons(s.window().Canvas().Overlays().Top(), "Use this role")
	if len(use) != 1 || use[0].Disabled() {
		t.Fatal("Use this role is not offered")
	}
	test.Tap(use[0])
	h.waitFor("the choice", func() bool {
		return hasText(s.serverBox, "AWS now uses the role ReadOnly in Payments Dev (111122223333).")
	})
	h.settings.mu.Lock()
	chosen := slices.Clone(h.settings.aws.chosen)
	h.settings.mu.Unlock()
	if !slices.Equal(chosen, []string{"111122223333/ReadOnly"}) {
		t.Fatalf("chosen %v", chosen)
	}
	h.waitFor("the role on the card", func() bool { return hasText(s.serverBox, "Account 111122223333, role ReadOnly") })
	capturePNG(t, s.window(), "aws-4-role-chosen.png")
}

// Adding AWS asks for the organisation's access portal and its Region in
// plain words, and names the server's Regions the way AWS does.
func TestAddAWSServer(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.mu.Lock()
	h.settings.aws.catalog = []app.CatalogChoice{{Kind: "aws", Name: "AWS", Vendor: "Amazon Web Services",
		Description: "AWS MCP Server: AWS documentation, and AWS APIs in your accounts with the role you choose.",
		SignIn:      "Signs in with your AWS account",
		Params: []app.ParamField{
			{Name: "region", Label: "Region", Kind: "choice", Choices: []string{"us-east-1", "eu-west-1"}, Default: "us-east-1",
				ChoiceLabels: map[string]string{"us-east-1": "US East (N. Virginia)", "eu-west-1": "Europe (Ireland)"},
				Help:         "Where AWS MCP Server runs for you."},
			{Name: "ssoStartUrl", Label: "AWS access portal", Kind: "text", Required: true,
				Help: "Your organisation's AWS access portal address, from IAM Identity Center.", Hint: "an https address"},
			{Name: "ssoRegion", Label: "IAM Identity Center Region", Kind: "text", Required: true, Hint: "a Region code, such as eu-west-1"},
			{Name: "write", Label: "Allow write tools", Kind: "bool", Default: "false",
				Help: "Off: only tools AWS marks read-only are offered. Every call is still reviewed."},
		}}}
	h.settings.mu.Unlock()
	s := h.d.settings
	s.show()
	h.waitFor("the servers", func() bool { return len(s.servers) == 2 })
	s.window().Resize(fyne.NewSize(760, 700))
	test.Tap(buttons(s.serverList, "Add a server…")[0])
	h.waitFor("the catalog", func() bool { return len(s.adding.choices) == 1 })
	test.Tap(buttons(s.adding.view, "Choose")[0])
	var region *widget.Select
	for _, o := range test.LaidOutObjects(s.adding.view) {
		if sel, ok := o.(*widget.Select); ok {
			region = sel
		}
	}
	if region == nil || region.Selected != "US East (N. Virginia)" || !slices.Contains(region.Options, "Europe (Ireland)") {
		t.Fatalf("the Region is not named the way AWS names it: %+v", region)
	}
	region.SetSelected("Europe (Ireland)")
	es := entries(s.adding.view) // name, portal, Identity Center Region
	if len(es) != 3 {
		t.Fatalf("%d entries", len(es))
	}
	es[1].SetText("https://d-1234567890.awsapps.com/start")
	es[2].SetText("eu-west-1")
	h.settle()
	capturePNG(t, s.window(), "aws-0-add.png")
	add := buttons(s.adding.view, "Add server")[0]
	if add.Disabled() {
		t.Fatal("Add is disabled with the portal and its Region given")
	}
	test.Tap(add)
	h.waitFor("the server to be added", func() bool {
		h.settings.mu.Lock()
		defer h.settings.mu.Unlock()
		return len(h.settings.servers2.added) == 1
	})
	h.settings.mu.Lock()
	got := h.settings.servers2.added[0].params
	h.settings.mu.Unlock()
	if got["region"] != "eu-west-1" || got["ssoStartUrl"] != "https://d-1234567890.awsapps.com/start" {
		t.Fatalf("added with %v", got)
	}
}
