package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
)

// dpopState is what testAS records of DPoP (RFC 9449) proofs.
type dpopState struct {
	bound       map[string]string // access token → the jkt it is bound to
	proofJTIs   map[string]bool   // proof IDs seen: a replay is refused
	tokenProofs []map[string]any  // claims of the token requests' proofs
	resProofs   []map[string]any  // claims of the resource requests' proofs
	asNonceAsks int               // use_dpop_nonce answers of the token endpoint
	rsNonceAsks int               // use_dpop_nonce answers of the resource
}

// jwkThumbprint is RFC 7638's SHA-256 thumbprint of an EC public JWK,
// computed here independently of the code under test.
func jwkThumbprint(jwk map[string]any) string {
	b, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{jwk["crv"].(string), jwk["kty"].(string), jwk["x"].(string), jwk["y"].(string)})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// verifyDPoP checks a DPoP proof the way a strict server does, with
// crypto/ecdsa alone: one proof, typ dpop+jwt, ES256 with a public P-256
// JWK in the header that verifies the signature, htm and htu those of the
// request, and ath the hash of accessToken when one is presented. It
// returns the claims and the key's thumbprint.
func verifyDPoP(r *http.Request, accessToken string) (map[string]any, string, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 || strings.Contains(vals[0], ",") {
		return nil, "", errors.New("not exactly one DPoP proof")
	}
	parts := strings.Split(vals[0], ".")
	var h map[string]any
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &h) != nil {
		return nil, "", errors.New("malformed proof header")
	}
	jwk, _ := h["jwk"].(map[string]any)
	if h["typ"] != "dpop+jwt" || h["alg"] != "ES256" || jwk == nil || jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk["d"] != nil {
		return nil, "", errors.New("bad proof header")
	}
	xb, err1 := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	yb, err2 := base64.RawURLEncoding.DecodeString(jwk["y"].(string))
	if err1 != nil || err2 != nil || len(xb) != 32 || len(yb) != 32 {
		return nil, "", errors.New("bad jwk")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(xb), Y: new(big.Int).SetBytes(yb)}
	_, c, err := verifyJWS(vals[0], pub)
	if err != nil {
		return nil, "", err
	}
	if _, ok := c["jti"].(string); !ok {
		return nil, "", errors.New("no jti")
	}
	if _, ok := c["iat"].(float64); !ok {
		return nil, "", errors.New("no iat")
	}
	if c["htm"] != r.Method || c["htu"] != "http://"+r.Host+r.URL.Path {
		return nil, "", errors.New("htm or htu do not match the request")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c["ath"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, "", errors.New("ath does not match the token")
		}
	} else if c["ath"] != nil {
		return nil, "", errors.New("ath on a token request")
	}
	return c, jwkThumbprint(jwk), nil
}

// freshProof records a proof's jti and says whether it carries the
// demanded nonce; a replayed proof is an error.
func (a *testAS) freshProof(c map[string]any) (nonced bool, err error) {
	jti := c["jti"].(string)
	if a.proofJTIs[jti] {
		return false, errors.New("replayed proof")
	}
	if a.proofJTIs == nil {
		a.proofJTIs = map[string]bool{}
	}
	a.proofJTIs[jti] = true
	return a.dpopNonce == "" || c["nonce"] == a.dpopNonce, nil
}

// tokenProof checks a token request's proof (RFC 9449 §5, §8) and returns
// the thumbprint to bind the token to; false means it answered.
func (a *testAS) tokenProof(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, jkt, err := verifyDPoP(r, "")
	var nonced bool
	if err == nil {
		nonced, err = a.freshProof(c)
	}
	if err != nil {
		oauthErr(w, 400, "invalid_dpop_proof")
		return "", false
	}
	a.tokenProofs = append(a.tokenProofs, c)
	if !nonced {
		a.asNonceAsks++
		w.Header().Set("DPoP-Nonce", a.dpopNonce)
		oauthErr(w, 400, errUseDPoPNonce)
		return "", false
	}
	return jkt, true
}

// resourceProof checks a resource request's DPoP token and proof (RFC
// 9449 §7, §9) and returns the token; false means it answered 401.
func (a *testAS) resourceProof(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	deny := func(code string) (string, bool) {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", algs="ES256", resource_metadata="`+a.res.URL+`/.well-known/oauth-protected-resource/mcp"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return "", false
	}
	if !ok || a.bound[tok] == "" {
		return deny("invalid_token")
	}
	c, jkt, err := verifyDPoP(r, tok)
	var nonced bool
	if err == nil {
		nonced, err = a.freshProof(c)
	}
	if err != nil || jkt != a.bound[tok] {
		return deny("invalid_dpop_proof")
	}
	a.resProofs = append(a.resProofs, c)
	if !nonced {
		a.rsNonceAsks++
		w.Header().Set("DPoP-Nonce", a.dpopNonce)
		return deny(errUseDPoPNonce)
	}
	return tok, true
}
