package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/awsauth"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/redact"
)

// AWSAccount is an AWS account the person may choose, in plain words.
type AWSAccount struct {
	ID, Name string
	// Label is "Payments Dev (111122223333)".
	Label string
}

// AWSRoleChoice is what the settings window offers after an AWS sign-in:
// the accounts the person may use (narrowed by the allowlist and admin
// policy) and the current choice.
type AWSRoleChoice struct {
	Accounts []AWSAccount
	// AccountID and Role are the current choice ("" when none).
	AccountID, Role string
	// Locked says why the person cannot change the choice ("" when they can).
	Locked string
}

// awsSession returns the AWS sign-in of a server.
func (s *Settings) awsSession(serverID string) (config.EffectiveServer, *awsauth.Session, error) {
	es, err := s.server(serverID)
	if err != nil {
		return es, nil, err
	}
	if s.auth == nil {
		return es, nil, unavailable("Signing in is not available right now.")
	}
	sess, err := s.auth.AWS(serverID)
	if err != nil {
		return es, nil, unavailable(displayName(es.Server) + " does not sign in to AWS.")
	}
	return es, sess, nil
}

// awsProblem tells an AWS failure in plain words.
func awsProblem(name string, err error) error {
	reason, _ := redact.Redact(err.Error())
	msg := "Countersign could not reach your organisation's AWS access portal. Try again in a moment."
	if errors.Is(err, awsauth.ErrSignInRequired) {
		msg = "Your AWS sign-in has ended. Sign in to " + name + " again."
	}
	return &Problem{Message: msg, Detail: reason, err: err}
}

// accountAllowed reports whether the allowlist (the person's and the
// policy's aws-account entries) lets the person use an account. An empty
// allowlist allows any account here: calls are still checked against it.
func accountAllowed(es config.EffectiveServer, id string) bool {
	entries := es.Allowlist[string(catalog.KindAWSAccount)]
	if len(entries) == 0 {
		return true
	}
	return slices.ContainsFunc(entries, func(e config.Entry) bool { return matchDigits(e.Value, id) })
}

// matchDigits matches an account pattern, where * stands for any digits.
func matchDigits(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	if pat[0] == '*' {
		for i := 0; i <= len(s); i++ {
			if matchDigits(pat[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	return s != "" && pat[0] == s[0] && matchDigits(pat[1:], s[1:])
}

// AWSAccounts lists the AWS accounts the person may choose after signing
// in. It reaches the network: never call it on the UI goroutine.
func (s *Settings) AWSAccounts(ctx context.Context, serverID string) (AWSRoleChoice, error) {
	es, sess, err := s.awsSession(serverID)
	if err != nil {
		return AWSRoleChoice{}, err
	}
	accounts, err := sess.Accounts(ctx)
	if err != nil {
		return AWSRoleChoice{}, awsProblem(displayName(es.Server), err)
	}
	fixedAccount := es.Params["account"]
	var out AWSRoleChoice
	for _, a := range accounts {
		if fixedAccount.Locked && a.ID != fixedAccount.Value {
			continue
		}
		if !accountAllowed(es, a.ID) {
			continue
		}
		out.Accounts = append(out.Accounts, AWSAccount{ID: a.ID, Name: a.Name, Label: a.Label()})
	}
	out.AccountID, out.Role = es.Params["account"].Value, es.Params["role"].Value
	if fixedAccount.Locked && es.Params["role"].Locked {
		out.Locked = config.WhyPolicy + ": your organisation chose the account and role."
	}
	return out, nil
}

// AWSRoles lists the roles the person may take in an account.
func (s *Settings) AWSRoles(ctx context.Context, serverID, accountID string) ([]string, error) {
	es, sess, err := s.awsSession(serverID)
	if err != nil {
		return nil, err
	}
	roles, err := sess.Roles(ctx, accountID)
	if err != nil {
		return nil, awsProblem(displayName(es.Server), err)
	}
	if fixed := es.Params["role"]; fixed.Locked {
		roles = slices.DeleteFunc(roles, func(r string) bool { return r != fixed.Value })
	}
	return roles, nil
}

// ChooseAWSRole fetches the role's short-lived credentials and saves the
// choice, so calls are signed with it from then on.
func (s *Settings) ChooseAWSRole(ctx context.Context, serverID string, account AWSAccount, role string) error {
	es, sess, err := s.awsSession(serverID)
	if err != nil {
		return err
	}
	name := displayName(es.Server)
	if fixed := es.Params["account"]; fixed.Locked && fixed.Value != account.ID {
		return unavailable(config.WhyPolicy + ": " + name + " uses account " + fixed.Value + ".")
	}
	if fixed := es.Params["role"]; fixed.Locked && fixed.Value != role {
		return unavailable(config.WhyPolicy + ": " + name + " uses the role " + fixed.Value + ".")
	}
	if !accountAllowed(es, account.ID) {
		return unavailable("Account " + account.ID + " is not in " + name + "'s allowlist.")
	}
	roles, err := sess.Roles(ctx, account.ID)
	if err != nil {
		return awsProblem(name, err)
	}
	if !slices.Contains(roles, role) {
		return unavailable("Your organisation does not offer the role " + role + " in that account.")
	}
	if err := sess.ChooseRole(ctx, awsauth.Account{ID: account.ID, Name: account.Name}, role); err != nil {
		return awsProblem(name, err)
	}
	changes, _, err := s.updateDiff(func(c *config.Config) error {
		i := slices.IndexFunc(c.Servers, func(x config.Server) bool { return x.ID == serverID })
		if i < 0 {
			return fmt.Errorf("there is no server %q in the settings file", serverID)
		}
		if c.Servers[i].Params == nil {
			c.Servers[i].Params = map[string]string{}
		}
		if c.Servers[i].Params["account"] == account.ID && c.Servers[i].Params["role"] == role {
			return errUnchanged
		}
		if !es.Params["account"].Locked {
			c.Servers[i].Params["account"] = account.ID
		}
		if !es.Params["role"].Locked {
			c.Servers[i].Params["role"] = role
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.auth.RefreshAWS(serverID)
	s.record(ctx, audit.Event{
		Kind: audit.KindSettingsChanged, Server: serverID,
		Reason: fmt.Sprintf("%s: account %s, role %s", name, account.ID, role),
		Detail: changesDetail(map[string]any{"setting": "aws-role", "server": serverID, "account": account.ID, "role": role}, changes),
	})
	s.log.Info("AWS role chosen", "server", serverID, "account", account.ID, "role", role)
	return nil
}
