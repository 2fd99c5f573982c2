package awsauth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sso"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/sso/types"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	oidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
)

// Account is an AWS account the person can reach through the access portal.
type Account struct {
	ID, Name, Email string
}

// Label is how the account is shown: its name and number.
func (a Account) Label() string {
	if a.Name == "" {
		return a.ID
	}
	return a.Name + " (" + a.ID + ")"
}

// Accounts lists the accounts the person may use, sorted by name.
func (s *Session) Accounts(ctx context.Context) ([]Account, error) {
	tok, err := s.portalToken(ctx)
	if err != nil {
		return nil, err
	}
	var out []Account
	p := sso.NewListAccountsPaginator(s.sso, &sso.ListAccountsInput{AccessToken: aws.String(tok)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.portalErr("listing your AWS accounts", err)
		}
		for _, a := range page.AccountList {
			out = append(out, Account{ID: aws.ToString(a.AccountId), Name: aws.ToString(a.AccountName), Email: aws.ToString(a.EmailAddress)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label() < out[j].Label() })
	return out, nil
}

// Roles lists the roles the person may take in an account, sorted.
func (s *Session) Roles(ctx context.Context, accountID string) ([]string, error) {
	tok, err := s.portalToken(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	p := sso.NewListAccountRolesPaginator(s.sso, &sso.ListAccountRolesInput{AccessToken: aws.String(tok), AccountId: aws.String(accountID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.portalErr("listing your roles", err)
		}
		for _, r := range page.RoleList {
			out = append(out, aws.ToString(r.RoleName))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ChooseRole fetches the role's credentials and keeps the choice; calls
// are signed with it from then on.
func (s *Session) ChooseRole(ctx context.Context, account Account, role string) error {
	if account.ID == "" || role == "" {
		return errors.New("awsauth: choose an account and a role")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rc := &roleCreds{AccountID: account.ID, AccountName: account.Name, RoleName: role}
	if err := s.fetchLocked(ctx, rc); err != nil {
		return err
	}
	return nil
}

// Retrieve returns the chosen role's credentials, renewing them when they
// are within ExpiryWindow of their end, so calls go on without the person
// noticing. It implements aws.CredentialsProvider and is its own cache:
// it runs on the Session's clock, which tests set.
func (s *Session) Retrieve(ctx context.Context) (aws.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(); err != nil {
		return aws.Credentials{}, err
	}
	if s.role == nil || s.role.AccountID == "" || s.role.RoleName == "" {
		return aws.Credentials{}, ErrNoRole
	}
	if s.role.SessionToken == "" || !s.o.Now().Add(s.o.ExpiryWindow).Before(s.role.Expires) {
		rc := *s.role
		if err := s.fetchLocked(ctx, &rc); err != nil {
			return aws.Credentials{}, err
		}
	}
	return s.role.credentials(), nil
}

func (rc *roleCreds) credentials() aws.Credentials {
	return aws.Credentials{
		AccessKeyID: rc.AccessKeyID, SecretAccessKey: rc.SecretAccessKey, SessionToken: rc.SessionToken,
		Source: "IAM Identity Center", CanExpire: true, Expires: rc.Expires, AccountID: rc.AccountID,
	}
}

// fetchLocked gets fresh credentials for rc's role and keeps them.
func (s *Session) fetchLocked(ctx context.Context, rc *roleCreds) error {
	if err := s.loadLocked(); err != nil {
		return err
	}
	tok, err := s.portalTokenLocked(ctx)
	if err != nil {
		return err
	}
	out, err := s.sso.GetRoleCredentials(ctx, &sso.GetRoleCredentialsInput{
		AccessToken: aws.String(tok), AccountId: aws.String(rc.AccountID), RoleName: aws.String(rc.RoleName),
	})
	if err != nil {
		return s.portalErr("getting credentials for "+rc.RoleName, err)
	}
	c := out.RoleCredentials
	if c == nil || aws.ToString(c.AccessKeyId) == "" || aws.ToString(c.SecretAccessKey) == "" {
		return errors.New("awsauth: IAM Identity Center sent no credentials")
	}
	// Only temporary credentials: a session token and an end in the future.
	expires := time.UnixMilli(c.Expiration)
	if aws.ToString(c.SessionToken) == "" || c.Expiration == 0 || !expires.After(s.o.Now()) {
		return errors.New("awsauth: IAM Identity Center sent credentials that are not temporary; Countersign uses only short-lived role credentials")
	}
	rc.AccessKeyID, rc.SecretAccessKey, rc.SessionToken = aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
	rc.Expires = expires
	if err := s.putJSON(s.roleKey(), rc); err != nil {
		return err
	}
	s.role = rc
	s.o.Logger.Info("renewed AWS role credentials", "server", s.o.ID, "account", rc.AccountID, "role", rc.RoleName, "expires", expires)
	return nil
}

// portalErr turns a portal error into plain words; an unauthorised token
// means signing in again.
func (s *Session) portalErr(doing string, err error) error {
	var unauth *ssotypes.UnauthorizedException
	if errors.As(err, &unauth) {
		return fmt.Errorf("%s: %w", doing, ErrSignInRequired)
	}
	return fmt.Errorf("awsauth: %s: %w", doing, err)
}

func (s *Session) portalToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(); err != nil {
		return "", err
	}
	return s.portalTokenLocked(ctx)
}

// portalTokenLocked returns a portal token that is valid for at least
// ExpiryWindow, refreshing it with its refresh token when needed.
func (s *Session) portalTokenLocked(ctx context.Context) (string, error) {
	tok := s.tok
	if tok == nil || tok.AccessToken == "" {
		return "", ErrSignInRequired
	}
	now := s.o.Now()
	if now.Add(s.o.ExpiryWindow).Before(tok.Expires) {
		return tok.AccessToken, nil
	}
	if tok.RefreshToken == "" || (!tok.ClientExpires.IsZero() && !now.Before(tok.ClientExpires)) {
		return "", ErrSignInRequired
	}
	out, err := s.oidc.CreateToken(ctx, &ssooidc.CreateTokenInput{
		ClientId: aws.String(tok.ClientID), ClientSecret: aws.String(tok.ClientSecret),
		GrantType: aws.String("refresh_token"), RefreshToken: aws.String(tok.RefreshToken),
	})
	if err != nil {
		var grant *oidctypes.InvalidGrantException
		var expired *oidctypes.ExpiredTokenException
		if errors.As(err, &grant) || errors.As(err, &expired) {
			return "", ErrSignInRequired
		}
		return "", fmt.Errorf("awsauth: renewing the AWS sign-in: %w", err)
	}
	next := *tok
	next.AccessToken = aws.ToString(out.AccessToken)
	if r := aws.ToString(out.RefreshToken); r != "" {
		next.RefreshToken = r
	}
	next.Expires = now.Add(time.Duration(out.ExpiresIn) * time.Second)
	if next.AccessToken == "" {
		return "", ErrSignInRequired
	}
	if err := s.putJSON(s.tokenKey(), &next); err != nil {
		return "", err
	}
	s.tok = &next
	return next.AccessToken, nil
}
