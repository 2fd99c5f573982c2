package redact

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// fakes builds real-shaped but worthless credentials at run time, from a
// fixed seed, so that the repository itself holds no string a secret
// scanner would flag and test output is reproducible.
type fakes struct{ r *rand.Rand }

func newFakes(seed uint64) *fakes { return &fakes{rand.New(rand.NewPCG(seed, 0x5eed))} }

const (
	base62  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base32  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	digits  = "0123456789"
	b64std  = base62 + "+/"
	b64url  = base62 + "-_"
	atlChrs = base62 + "-_="
)

func (f *fakes) from(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[f.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (f *fakes) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.r.UintN(256))
	}
	return b
}

// github returns a token with the given three-letter type ("ghp", "gho"...).
func (f *fakes) github(typ string) string { return typ + "_" + f.from(base62, 36) }

func (f *fakes) githubPAT() string {
	return "github" + "_pat_" + f.from(base62, 22) + "_" + f.from(base62, 59)
}

func (f *fakes) awsID() string { return "AK" + "IA" + f.from(base32, 16) }

func (f *fakes) awsSTSID() string { return "AS" + "IA" + f.from(base32, 16) }

// awsSecret returns 40 base64 characters with every class present.
func (f *fakes) awsSecret() string {
	for {
		s := f.from(b64std, 40)
		if mixes(s) == 4 || (strings.ContainsAny(s, digits) && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") &&
			strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
			return s
		}
	}
}

func (f *fakes) azureKey() string { return base64.StdEncoding.EncodeToString(f.bytes(64)) }

func (f *fakes) sasSig() string {
	return url.QueryEscape(base64.StdEncoding.EncodeToString(f.bytes(32)))
}

func (f *fakes) atlassian() string {
	return "ATA" + "TT3" + f.from(atlChrs, 178) + "=" + f.from("0123456789ABCDEF", 8)[:7]
}

func (f *fakes) slackBot() string {
	return "xo" + "xb-" + f.from(digits, 13) + "-" + f.from(digits, 13) + "-" + f.from(base62, 24)
}

func (f *fakes) slackUser() string {
	return "xo" + "xp-" + f.from(digits, 12) + "-" + f.from(digits, 12) + "-" + f.from(digits, 12) + "-" + f.from("0123456789abcdef", 32)
}

func (f *fakes) slackApp() string {
	return "xa" + "pp-1-A" + f.from(base32, 10) + "-" + f.from(digits, 13) + "-" + f.from("0123456789abcdef", 64)
}

func (f *fakes) slackWebhook() string {
	return "https://hooks.slack.com/" + "services/T" + f.from(base32, 10) + "/B" + f.from(base32, 10) + "/" + f.from(base62, 24)
}

func (f *fakes) entraSecret() string {
	return f.from(base62, 3) + f.from(digits, 1) + "Q~" + f.from(base62+"_.~-", 30) + f.from(base62, 4)
}

// jwt returns a signed-looking token whose header names an algorithm.
func (f *fakes) jwt() string {
	enc := base64.RawURLEncoding
	hdr := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"` + f.from(base62, 8) + `"}`))
	body := enc.EncodeToString([]byte(`{"sub":"` + f.from(digits, 10) + `","aud":"api://default","exp":1893456000}`))
	return hdr + "." + body + "." + enc.EncodeToString(f.bytes(64))
}

func (f *fakes) password() string { return f.from(base62, 10) + "!" + f.from(digits, 2) }

func (f *fakes) apiKey() string { return f.from(base62, 32) }

// card returns a Luhn-valid number with the given issuer prefix and length.
func (f *fakes) card(prefix string, n int) string {
	d := prefix + f.from(digits, n-len(prefix)-1)
	for c := '0'; c <= '9'; c++ {
		if luhn(d + string(c)) {
			return d + string(c)
		}
	}
	panic("unreachable")
}

// pemKey returns a freshly generated private key of the given PEM type
// ("PRIVATE KEY" is PKCS#8, "EC PRIVATE KEY" is SEC 1; the OpenSSH one only
// has the right label and a key-shaped body).
func pemKey(t testing.TB, typ string) string {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "EC PRIVATE KEY":
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		der, err = x509.MarshalECPrivateKey(key)
	case "OPENSSH PRIVATE KEY":
		_, key, kerr := ed25519.GenerateKey(cryptorand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		der = append([]byte("openssh-key-v1\x00"), key...)
	default:
		t.Fatalf("unknown key type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// pngBase64 returns a base64 PNG of random pixels, as an MCP image content
// block carries it.
func pngBase64(t testing.TB, side int, seed uint64) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			img.Set(x, y, color.NRGBA{uint8(r.UintN(256)), uint8(r.UintN(256)), uint8(r.UintN(256)), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

const (
	letters  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b32lower = "abcdefghijklmnopqrstuvwxyz234567"
)

// body returns n characters of alphabet ending in a letter or digit, as
// the tokens whose alphabet has '-' or '.' do.
func (f *fakes) body(alphabet string, n int) string {
	return f.from(alphabet, n-1) + f.from(base62, 1)
}

// adoPAT returns an Azure DevOps PAT in the 84-character format: 52
// random characters, the "JQQJ99" signature, a date and flags, "AZDO" at
// 76 and a checksum.
func (f *fakes) adoPAT() string {
	return f.from(base62, 52) + "JQQJ" + "99" + f.from(base62, 1) + f.from("ABCDEFGHIJKL", 1) +
		f.from(base62, 16) + "AZ" + "DO" + f.from(base62, 4)
}

// adoLegacyPAT returns an older Azure DevOps PAT: 52 lower-case base32.
func (f *fakes) adoLegacyPAT() string {
	for {
		s := f.from(b32lower, 52)
		if strings.ContainsAny(s, "234567") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") {
			return s
		}
	}
}

func (f *fakes) gitlabPAT() string { return "gl" + "pat-" + f.body(b64url, 20) }
func (f *fakes) gitlabRouted() string {
	return "gl" + "pat-" + f.body(b64url, 27) + ".01." + f.from(base62, 9)
}
func (f *fakes) googleKey() string  { return "AI" + "zaSy" + f.from(b64url, 33) }
func (f *fakes) stripeLive() string { return "sk" + "_live_" + f.from(base62, 99) }
func (f *fakes) stripeRK() string   { return "rk" + "_live_" + f.from(base62, 99) }
func (f *fakes) openAIProject() string {
	return "sk-" + "proj-" + f.from(b64url, 74) + "T3Blbk" + "FJ" + f.body(b64url, 74)
}
func (f *fakes) openAILegacy() string {
	return "sk-" + f.from(base62, 20) + "T3Blbk" + "FJ" + f.from(base62, 20)
}
func (f *fakes) anthropicKey() string { return "sk-" + "ant-api03-" + f.from(b64url, 93) + "AA" }
func (f *fakes) npmToken() string     { return "np" + "m_" + f.from(base62, 36) }
func (f *fakes) pypiToken() string {
	return "py" + "pi-AgEIcHlwaS5vcmc" + f.body(b64url, 150)
}
func (f *fakes) hfToken() string { return "h" + "f_" + f.from(letters, 34) }
func (f *fakes) sendgridKey() string {
	return "S" + "G." + f.body(b64url, 22) + "." + f.body(b64url, 43)
}
