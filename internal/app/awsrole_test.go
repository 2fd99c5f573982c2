package app

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/awsauth/awstest"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// The organisation's policy fixes the access portal, its Region and the
// account; the person adds AWS without typing them, signs in, sees only
// that account, cannot take another, and chooses a role in it, which is
// saved and audited.
func TestAWSRoleChoiceUnderPolicy(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	ic := awstest.NewIdentityCenter(clock,
		awstest.Account{ID: "111122223333", Name: "Payments Dev", Roles: []string{"PowerUser", "ReadOnly"}},
		awstest.Account{ID: "444455556666", Name: "Payments Prod", Roles: []string{"ReadOnly"}})
	defer ic.Close()
	svc := auth.New(auth.Options{
		Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()}), Logger: discardLog(), Now: clock.Now,
		OpenURL: awstest.OpenInBrowser, // the person's browser: the stand-in signs in at once
	})
	defer svc.Close()
	const policy = `{"version": 1, "servers": {"aws": {"params": {
		"ssoStartUrl": "https://d-1234567890.awsapps.com/start", "ssoRegion": "eu-west-1", "account": "444455556666"}}}}`
	env := newSettingsEnv(t, `{"version": 2}`, policy, withAuth(svc))
	ctx := context.Background()
	id, err := env.s.AddServer(ctx, "aws", "", map[string]string{"region": "Europe (Ireland)"})
	if err != nil {
		t.Fatal(err)
	}
	// The app registers the server with AWS's own endpoints; here the
	// stand-ins take their place.
	if err := svc.Register(id, auth.ServerAuth{Kind: auth.KindAWS, Name: "AWS", ResourceURL: "https://aws-mcp.eu-west-1.api.aws/mcp",
		AWS: &auth.AWSSettings{StartURL: "https://d-1234567890.awsapps.com/start", Region: "eu-west-1",
			OIDCEndpoint: ic.URL, PortalEndpoint: ic.URL, AccountID: "444455556666"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.s.SignIn(ctx, id); err != nil {
		t.Fatal(err)
	}
	servers, _ := env.s.Servers(ctx)
	if len(servers) != 1 || !servers[0].ChoosesRole || servers[0].State != "Signed in: choose an AWS account and role" {
		t.Fatalf("after sign-in: %+v", servers)
	}
	choice, err := env.s.AWSAccounts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(choice.Accounts) != 1 || choice.Accounts[0].ID != "444455556666" || choice.Accounts[0].Label != "Payments Prod (444455556666)" {
		t.Fatalf("accounts offered: %+v", choice.Accounts)
	}
	err = env.s.ChooseAWSRole(ctx, id, AWSAccount{ID: "111122223333"}, "PowerUser")
	wantErr(t, err, "uses account 444455556666")
	if err := env.s.ChooseAWSRole(ctx, id, choice.Accounts[0], "ReadOnly"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(env.path)
	if !strings.Contains(string(b), `"role": "ReadOnly"`) || strings.Contains(string(b), "444455556666") {
		t.Fatalf("settings file:\n%s", b)
	}
	if evs := env.events(t, audit.KindSettingsChanged); len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Reason, "role ReadOnly") {
		t.Fatalf("audit: %+v", evs)
	}
	if n := len(ic.Issued()); n != 1 {
		t.Fatalf("%d role credentials fetched", n)
	}
}
