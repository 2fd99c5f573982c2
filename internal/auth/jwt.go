package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// assertionLifetime is how long a client assertion is valid: long enough
// for clock skew, short enough that a captured one is soon useless.
const assertionLifetime = 2 * time.Minute

// parsePrivateKey reads a PEM private key: PKCS #8, SEC 1 (EC) or PKCS #1
// (RSA). Errors never quote the key.
func parsePrivateKey(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, errors.New("the private key is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q block is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key cannot be parsed")
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits is too weak (at least 2048)", k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign client assertions", key)
}

// keyAlgs lists the JWS algorithms a key can sign with, preferred first.
func keyAlgs(key crypto.Signer) []string {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case *rsa.PrivateKey:
		return []string{"PS256", "RS256", "PS384", "RS384", "PS512", "RS512"}
	case ed25519.PrivateKey:
		return []string{"EdDSA"}
	}
	return nil
}

// chooseAlg picks the signing algorithm: the configured one, else the
// key's preferred one the authorization server lists in
// token_endpoint_auth_signing_alg_values_supported (any of the key's when
// it lists none).
func chooseAlg(key crypto.Signer, configured string, supported []string) (string, error) {
	algs := keyAlgs(key)
	if configured != "" {
		if !slices.Contains(algs, configured) {
			return "", fmt.Errorf("the configured algorithm %s does not fit the key (it can sign %s)", configured, strings.Join(algs, ", "))
		}
		if len(supported) > 0 && !slices.Contains(supported, configured) {
			return "", fmt.Errorf("%w: the server accepts %s assertions, not %s", ErrAuthMethodUnsupported, strings.Join(supported, ", "), configured)
		}
		return configured, nil
	}
	for _, a := range algs {
		if len(supported) == 0 || slices.Contains(supported, a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: the server accepts %s assertions; the key can sign %s", ErrAuthMethodUnsupported, strings.Join(supported, ", "), strings.Join(algs, ", "))
}

// clientAssertion is an RFC 7523 §2.2 client authentication JWT for c:
// issuer and subject the client ID, audience the authorization server's
// issuer identifier (draft-ietf-oauth-rfc7523bis), short-lived, unique.
func clientAssertion(c client, now time.Time) (string, error) {
	if c.key == nil {
		return "", errors.New("no private key to sign the client assertion")
	}
	claims := map[string]any{
		"iss": c.ID,
		"sub": c.ID,
		"aud": c.Issuer,
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": randomString(),
	}
	return signJWT(c.key, c.Alg, c.KeyID, "JWT", claims)
}

// signJWT signs claims as a compact JWS.
func signJWT(key crypto.Signer, alg, kid, typ string, claims map[string]any) (string, error) {
	h := map[string]any{"alg": alg}
	if typ != "" {
		h["typ"] = typ
	}
	if kid != "" {
		h["kid"] = kid
	}
	return signJWTHeader(key, alg, h, claims)
}

// signJWTHeader signs claims as a compact JWS with the JOSE header h,
// which names alg.
func signJWTHeader(key crypto.Signer, alg string, h, claims map[string]any) (string, error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sig, err := signJWS(key, alg, []byte(input))
	if err != nil {
		return "", fmt.Errorf("signing a JWT: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// hashFor is the digest of a JWS algorithm (RFC 7518 §3.1).
func hashFor(alg string) crypto.Hash {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

func signJWS(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	if !slices.Contains(keyAlgs(key), alg) {
		return nil, fmt.Errorf("the key cannot sign %q", alg)
	}
	if alg == "EdDSA" {
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	hf := hashFor(alg)
	h := hf.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		// RFC 7518 §3.4: R and S as fixed-size big-endian octets.
		n := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*n)
		r.FillBytes(out[:n])
		s.FillBytes(out[n:])
		return out, nil
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			return rsa.SignPSS(rand.Reader, k, hf, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, hf, digest)
	}
	return nil, fmt.Errorf("the key cannot sign %q", alg)
}

// jwtHeader is the part of a JOSE header Countersign reads.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

// jwtClaims are the claims Countersign reads from ID tokens and identity
// assertion grants. It never verifies their signature: the server that
// receives them does. It reads them to fail early and clearly.
type jwtClaims struct {
	Issuer   string      `json:"iss"`
	Subject  string      `json:"sub"`
	Audience audience    `json:"aud"`
	Expiry   json.Number `json:"exp"`
	Resource string      `json:"resource"`
	ClientID string      `json:"client_id"`
	Nonce    string      `json:"nonce"`
}

// audience is a JWT aud claim: one string or an array of them.
type audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// expiry is the exp claim as a time; zero when absent or invalid.
func (c jwtClaims) expiry() time.Time {
	f, err := c.Expiry.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// decodeJWT reads a compact JWS's header and claims without verifying
// it. Its input comes from the network or the person: it never panics,
// and its errors never quote the token.
func decodeJWT(tok string) (jwtHeader, jwtClaims, error) {
	var h jwtHeader
	var c jwtClaims
	if len(tok) > maxDocument {
		return h, c, errors.New("the token is too long")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return h, c, errors.New("the token is not a signed JWT")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &h) != nil {
		return h, c, errors.New("the token's header cannot be read")
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return h, c, errors.New("the token's claims cannot be read")
	}
	d := json.NewDecoder(strings.NewReader(string(cb)))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return h, c, errors.New("the token's claims cannot be read")
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return h, c, errors.New("the token is not signed")
	}
	return h, c, nil
}
