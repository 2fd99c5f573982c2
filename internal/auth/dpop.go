package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DPoP (RFC 9449) binds a server's tokens to a key Countersign holds: each
// token request and each request to the MCP server carries a proof, a JWT
// signed with that key, so a token copied elsewhere is useless without
// the key. Countersign uses it when the authorization server's metadata
// lists ES256 in dpop_signing_alg_values_supported and the MCP server
// accepts bound tokens (useDPoP). The key, one ES256 key per server, is
// generated at the first such sign-in and kept in the vault (the
// keychain), never in a file.

// dpopAlg is the one proof algorithm Countersign signs with.
const dpopAlg = "ES256"

// errUseDPoPNonce is the error a server answers when it wants a proof
// carrying the nonce it sends in the DPoP-Nonce header (RFC 9449 §8, §9).
const errUseDPoPNonce = "use_dpop_nonce"

func dpopKeyKey(id string) string { return "auth/" + id + "/dpop-key" }

// useDPoP reports whether to bind the tokens of a sign-in with d after
// the challenge ch: the authorization server must accept ES256 proofs,
// and the MCP server DPoP-bound tokens — its challenge uses the DPoP
// scheme, or its resource metadata lists ES256 or requires bound tokens.
// A server that only knows Bearer would refuse a bound token.
func useDPoP(d *discovered, ch challenge) bool {
	if !slices.Contains(d.as.DPoPSigningAlgValuesSupported, dpopAlg) {
		return false
	}
	return ch.DPoP || d.prm != nil && (d.prm.DPoPBoundAccessTokensRequired || slices.Contains(d.prm.DPoPSigningAlgValuesSupported, dpopAlg))
}

// dpopKey is a server's proof key with its public JWK (RFC 7517).
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jwk  map[string]any
}

func newDPoPKey(priv *ecdsa.PrivateKey) (*dpopKey, error) {
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	raw := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	if len(raw) != 65 {
		return nil, errors.New("the DPoP key is not a P-256 key")
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return &dpopKey{priv: priv, jwk: map[string]any{
		"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}, nil
}

// thumbprint is the key's RFC 7638 JWK SHA-256 thumbprint (the jkt a
// bound token's cnf claim names).
func (k *dpopKey) thumbprint() string {
	// RFC 7638 §3.2: the required members, in lexicographic order, no spaces.
	b := []byte(`{"crv":"P-256","kty":"EC","x":"` + k.jwk["x"].(string) + `","y":"` + k.jwk["y"].(string) + `"}`)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proof is a DPoP proof (RFC 9449 §4.2) for a request with method to
// target, sent at now. accessToken, when set, is hashed into ath (a
// request to the resource); nonce, when set, is the server's.
func (k *dpopKey) proof(method string, target *url.URL, accessToken, nonce string, now time.Time) (string, error) {
	// htu: the URI without query and fragment.
	htu := url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path, RawPath: target.RawPath}
	claims := map[string]any{
		"jti": randomString(),
		"htm": method,
		"htu": htu.String(),
		"iat": now.Unix(),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	h := map[string]any{"typ": "dpop+jwt", "alg": dpopAlg, "jwk": k.jwk}
	return signJWTHeader(k.priv, dpopAlg, h, claims)
}

// dpopKeyFor returns srv's proof key: the one in memory, the one in the
// vault, or a new one saved there.
func (s *Service) dpopKeyFor(srv *server) (*dpopKey, error) {
	s.mu.Lock()
	k := srv.dpop
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	srv.storeMu.Lock()
	defer srv.storeMu.Unlock()
	s.mu.Lock()
	k = srv.dpop
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	b, err := s.o.Vault.Get(dpopKeyKey(srv.id))
	switch {
	case err == nil:
		k, err = parseDPoPKey(b)
		if err != nil {
			return nil, fmt.Errorf("the saved DPoP key: %w", err)
		}
	case isNotFound(err):
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := s.o.Vault.Set(dpopKeyKey(srv.id), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, fmt.Errorf("saving the DPoP key: %w", err)
		}
		if k, err = newDPoPKey(priv); err != nil {
			return nil, err
		}
		s.log.Info("created a DPoP key", "server", srv.id)
	default:
		return nil, fmt.Errorf("reading the DPoP key: %w", err)
	}
	s.mu.Lock()
	srv.dpop = k
	s.mu.Unlock()
	return k, nil
}

func parseDPoPKey(b []byte) (*dpopKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM key")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	return newDPoPKey(priv)
}

// dpopNonce is the last nonce the server at origin gave, "" if none.
func (s *Service) dpopNonce(origin string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonces[origin]
}

// keepDPoPNonce remembers the nonce an answer from origin carries (RFC
// 9449 §8.2: a server may send a new one with any answer) and reports
// whether there was one.
func (s *Service) keepDPoPNonce(origin string, h http.Header) bool {
	n := h.Get("DPoP-Nonce")
	if n == "" || len(n) > 1024 || strings.ContainsFunc(n, func(r rune) bool {
		return r < 0x21 || r > 0x7e || r == '"' || r == '\\' // RFC 9449 §8.1: NQCHAR
	}) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]string{}
	}
	s.nonces[origin] = n
	return true
}
