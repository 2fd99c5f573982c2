package awsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningScope is where a SigV4 signature is valid: a service in a Region.
type SigningScope struct {
	Service, Region string
}

// ScopeFor infers the signing service and Region from an AWS endpoint, as
// AWS's own mcp-proxy-for-aws does: <service>.<region>.api.aws, such as
// aws-mcp.eu-west-1.api.aws, signs as service aws-mcp in eu-west-1.
func ScopeFor(endpoint string) (SigningScope, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return SigningScope{}, fmt.Errorf("awsauth: %q is not an address", endpoint)
	}
	parts := strings.Split(strings.ToLower(u.Hostname()), ".")
	if len(parts) == 4 && parts[2] == "api" && parts[3] == "aws" && regionPattern.MatchString(parts[1]) {
		return SigningScope{Service: parts[0], Region: parts[1]}, nil
	}
	return SigningScope{}, fmt.Errorf("awsauth: the signing service and Region cannot be read from %s", u.Hostname())
}

// Signer is an http.RoundTripper that signs every request to one origin
// with SigV4 — POST bodies, GET streams and DELETEs alike — using the
// AWS SDK's signer and credentials from Credentials (a *Session, which
// renews them before they expire). Requests to
// any other origin are refused: AWS credentials never sign for a stranger.
type Signer struct {
	Credentials aws.CredentialsProvider
	Scope       SigningScope
	// Origin is the endpoint's scheme://host[:port].
	Origin string
	// Next sends the signed request; nil means http.DefaultTransport.
	Next http.RoundTripper
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time

	signer *v4.Signer // safe for concurrent use; nil means a new one per request
}

// NewSigner returns a Signer for the endpoint, its scope inferred from the
// address when scope is empty.
func NewSigner(endpoint string, scope SigningScope, creds aws.CredentialsProvider, next http.RoundTripper) (*Signer, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("awsauth: %q is not an address", endpoint)
	}
	if u.Scheme != "https" && !loopbackHost(u.Hostname()) {
		return nil, errors.New("awsauth: AWS requests are signed only over https")
	}
	if scope == (SigningScope{}) {
		if scope, err = ScopeFor(endpoint); err != nil {
			return nil, err
		}
	}
	return &Signer{Credentials: creds, Scope: scope, Origin: u.Scheme + "://" + u.Host, Next: next, signer: v4.NewSigner()}, nil
}

func loopbackHost(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }

// emptyHash is the SHA-256 of no bytes: the payload hash of a GET or DELETE.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// RoundTrip signs req and sends it.
func (t *Signer) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if req.URL.Scheme+"://"+req.URL.Host != t.Origin {
		closeBody()
		return nil, fmt.Errorf("awsauth: refusing to sign a request for %s with AWS credentials", req.URL.Host)
	}
	creds, err := t.Credentials.Retrieve(req.Context())
	if err != nil {
		closeBody()
		return nil, err
	}
	if creds.SessionToken == "" || !creds.CanExpire {
		closeBody()
		return nil, errors.New("awsauth: refusing to sign with credentials that are not temporary")
	}
	r := req.Clone(req.Context())
	hash := emptyHash
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("awsauth: reading the request body: %w", err)
		}
		sum := sha256.Sum256(b)
		hash = hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		r.ContentLength = int64(len(b))
	}
	r.Header.Del("Authorization") // nobody else's credential goes to AWS
	signer := t.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	if err := signer.SignHTTP(r.Context(), creds, r, hash, t.Scope.Service, t.Scope.Region, now().UTC()); err != nil {
		return nil, fmt.Errorf("awsauth: signing the request: %w", err)
	}
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}
