package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/countersign/countersign/internal/awsauth"
)

// AWSSettings are a KindAWS server's IAM Identity Center and role.
type AWSSettings struct {
	// StartURL and Region locate the organisation's IAM Identity Center.
	StartURL, Region string
	// AccountID and Role, when set, are the only role the server's calls
	// may be signed with (the person's choice, or admin policy's).
	AccountID, Role string
	// OIDCEndpoint and PortalEndpoint replace AWS's endpoints (tests).
	OIDCEndpoint, PortalEndpoint string
	// Scope is the SigV4 service and Region; empty reads them from the
	// endpoint, as aws-mcp.eu-west-1.api.aws gives aws-mcp in eu-west-1.
	Scope awsauth.SigningScope
}

// awsServer is a KindAWS server's session and request signer.
type awsServer struct {
	sess   *awsauth.Session
	signer *awsauth.Signer
}

// registerAWS makes the session and signer of a KindAWS server and reads
// where its sign-in stands. It reads the keychain.
func (s *Service) registerAWS(srv *server) error {
	a := srv.cfg.AWS
	if a == nil {
		return fmt.Errorf("server %s: AWS sign-in needs IAM Identity Center settings", srv.id)
	}
	sess, err := awsauth.New(awsauth.Options{
		ID: srv.id, Vault: s.o.Vault, HTTPClient: s.o.HTTPClient, Now: s.now, Logger: s.log,
		SignInTimeout: s.o.SignInTimeout,
		Settings:      awsauth.Settings{StartURL: a.StartURL, Region: a.Region, OIDCEndpoint: a.OIDCEndpoint, PortalEndpoint: a.PortalEndpoint},
		OpenURL: func(raw string) error {
			u, err := url.Parse(raw)
			if err != nil {
				return err
			}
			if s.o.OpenURL == nil {
				return errors.New("no browser")
			}
			return s.o.OpenURL(u)
		},
	})
	if err != nil {
		return fmt.Errorf("server %s: %w", srv.id, err)
	}
	creds := &chosenRole{sess: sess, account: a.AccountID, role: a.Role}
	signer, err := awsauth.NewSigner(srv.cfg.ResourceURL, a.Scope, creds, s.o.Transport)
	if err != nil {
		return fmt.Errorf("server %s: %w", srv.id, err)
	}
	signer.Now = s.now
	srv.aws = &awsServer{sess: sess, signer: signer}
	srv.state, srv.reason = awsState(sess, a)
	return nil
}

// chosenRole hands out the session's credentials only for the role the
// settings name, so a role chosen elsewhere, or changed by admin policy,
// never signs this server's calls.
type chosenRole struct {
	sess          *awsauth.Session
	account, role string
}

func (c *chosenRole) Retrieve(ctx context.Context) (aws.Credentials, error) {
	st, err := c.sess.Status()
	if err != nil {
		return aws.Credentials{}, err
	}
	if c.account != "" && (st.AccountID != c.account || st.RoleName != c.role) {
		return aws.Credentials{}, awsauth.ErrNoRole
	}
	return c.sess.Retrieve(ctx)
}

// awsState is where a KindAWS server's sign-in stands, in plain words.
func awsState(sess *awsauth.Session, a *AWSSettings) (State, string) {
	st, err := sess.Status()
	switch {
	case err != nil:
		return StateSignedOut, "the saved AWS sign-in could not be read: " + err.Error()
	case !st.SignedIn:
		return StateSignedOut, ""
	case st.RoleName == "" || (a.AccountID != "" && (st.AccountID != a.AccountID || st.RoleName != a.Role)):
		return StateSignedIn, "choose an AWS account and role"
	}
	return StateSignedIn, ""
}

// AWS returns a KindAWS server's IAM Identity Center session, for listing
// accounts and roles and choosing one.
func (s *Service) AWS(id string) (*awsauth.Session, error) {
	srv, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if srv.aws == nil {
		return nil, fmt.Errorf("%s does not sign in to AWS", srv.cfg.Name)
	}
	return srv.aws.sess, nil
}

// RefreshAWS re-reads a KindAWS server's state after its role changed.
func (s *Service) RefreshAWS(id string) {
	srv, err := s.lookup(id)
	if err != nil || srv.aws == nil {
		return
	}
	st, reason := awsState(srv.aws.sess, srv.cfg.AWS)
	s.mu.Lock()
	s.setStateLocked(srv, st, reason)
	s.mu.Unlock()
}

// signInAWS runs the IAM Identity Center sign-in in the browser.
func (s *Service) signInAWS(ctx context.Context, srv *server) error {
	s.mu.Lock()
	s.setStateLocked(srv, StateSigningIn, "")
	s.mu.Unlock()
	err := srv.aws.sess.SignIn(ctx)
	st, reason := awsState(srv.aws.sess, srv.cfg.AWS)
	s.mu.Lock()
	s.setStateLocked(srv, st, reason)
	s.mu.Unlock()
	return err
}

// roundTripAWS signs a request for a KindAWS server; a sign-in that has
// ended is reported as a *SignInError, as for OAuth servers.
func (s *Service) roundTripAWS(srv *server, req *http.Request) (*http.Response, error) {
	resp, err := srv.aws.signer.RoundTrip(req)
	if errors.Is(err, awsauth.ErrSignInRequired) || errors.Is(err, awsauth.ErrNoRole) {
		st, reason := StateSignInAgain, "sign in to AWS again"
		if errors.Is(err, awsauth.ErrNoRole) {
			st, reason = StateSignedIn, "choose an AWS account and role"
		}
		s.mu.Lock()
		s.setStateLocked(srv, st, reason)
		s.mu.Unlock()
		return nil, &SignInError{Server: srv.cfg.Name, Reason: reason}
	}
	return resp, err
}
