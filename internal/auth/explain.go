package auth

import (
	"context"
	"errors"
	"net"
	"strconv"
)

// ErrMetadataMissing means the server or its authorization server does
// not publish the sign-in metadata Countersign needs (RFC 9728, RFC 8414),
// or publishes it without an endpoint the sign-in uses.
var ErrMetadataMissing = errors.New("the sign-in metadata is missing")

// StatusError is an unexpected HTTP status from a sign-in endpoint.
type StatusError struct {
	Status int
}

// Error reads "HTTP 503".
func (e *StatusError) Error() string { return "HTTP " + strconv.Itoa(e.Status) }

// Explain tells a person in one or two sentences why signing in to the
// server called name failed and what to do next. It never holds the
// error's text, which may name hosts, addresses and endpoints: that
// detail belongs behind "Technical details" and in the log.
func Explain(name string, err error) string {
	var (
		oauth  *OAuthError
		status *StatusError
		dns    *net.DNSError
		op     *net.OpError
		netErr net.Error
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errSignedOut):
		return "The sign-in to " + name + " stopped because you signed out."
	case errors.Is(err, ErrSignInCanceled), errors.Is(err, context.Canceled):
		return "The sign-in to " + name + " was cancelled. Press Sign in to start again."
	case errors.Is(err, ErrSignInTimedOut):
		return "The sign-in to " + name + " wasn't finished in the browser in time. Press Sign in to try again."
	case errors.Is(err, ErrTokenRefused):
		return name + " didn't accept that token. Check that you copied all of it and that it hasn't expired, then paste it again."
	case errors.As(err, &oauth) && oauth.Code == "access_denied":
		return "The sign-in to " + name + " was declined in the browser. Press Sign in again and allow Countersign access."
	case errors.As(err, &dns), errors.As(err, &op),
		errors.As(err, &netErr) && netErr.Timeout(),
		errors.Is(err, context.DeadlineExceeded):
		return "Countersign couldn't reach " + name + ". Check your network or VPN, then press Sign in again."
	case errors.As(err, &oauth) && (oauth.Status == 401 || oauth.Status == 403 || oauth.Code == "unauthorized_client" || oauth.Code == "invalid_client"):
		return name + " refused Countersign's sign-in. Ask your IT team whether Countersign may be used with " + name + "."
	case errors.As(err, &status) && (status.Status == 401 || status.Status == 403):
		return name + " refused Countersign's sign-in. Ask your IT team whether Countersign may be used with " + name + "."
	case errors.As(err, &status) && status.Status >= 500, errors.As(err, &oauth) && oauth.Status >= 500:
		return name + "'s sign-in service isn't working right now. Try again in a few minutes."
	case errors.Is(err, ErrMetadataMissing), errors.Is(err, ErrNoRegistration),
		errors.Is(err, ErrPKCEUnsupported), errors.Is(err, ErrGrantUnsupported),
		errors.Is(err, ErrAuthMethodUnsupported):
		return name + " doesn't offer a sign-in Countersign can use. Ask your IT team to check how " + name + " is set up."
	case errors.Is(err, ErrIssuerMismatch), errors.Is(err, ErrResourceMismatch), errors.Is(err, ErrAudienceMismatch):
		return name + "'s sign-in answered from an unexpected place, so Countersign stopped to keep you safe. Ask your IT team."
	case errors.Is(err, errNoBrowser):
		return "Countersign couldn't open your web browser to sign in to " + name + ". Open a browser once, then press Sign in again."
	case errors.As(err, &oauth):
		return name + " didn't accept the sign-in. Press Sign in to try again; if it keeps failing, show the technical details to your IT team."
	}
	return "Signing in to " + name + " didn't work. Press Sign in to try again; if it keeps failing, show the technical details to your IT team."
}
