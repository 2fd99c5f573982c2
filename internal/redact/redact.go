// Package redact finds credentials and sensitive personal data in text and in
// JSON documents, and replaces them with a plain-language marker such as
// "[redacted: github token]".
//
// Detection is deliberately conservative about what counts as a secret:
// vendor tokens with a recognisable shape (GitHub, GitLab, AWS, Azure and
// Azure DevOps, Atlassian, Slack, Google, Stripe, OpenAI, Anthropic, npm,
// PyPI, Hugging Face, SendGrid, JWTs, PEM private keys), passwords in
// key=value text and URLs,
// UK National Insurance numbers and Luhn-valid card numbers are found
// anywhere, and so is a base64 value (a resource's "blob", a data: URL)
// whose decoding holds any of them, but a merely random-looking value (a git SHA, a UUID, base64
// image data) is only treated as a secret when it sits next to a
// secret-like name such as "password", "client_secret" or "api_key".
//
// JSON is never re-encoded: [RedactJSON] splices markers into the string
// literals that held a secret, replaces a number that is a card number
// with a marker string, and leaves every other byte of the document
// (other numbers' spelling, key order, whitespace, unknown fields, other
// escapes) exactly as it was.
//
// The package is pure: no I/O, no logging, no mutable global state, and
// every function is safe for concurrent use. Scanning is linear in the
// input, including input built to slow a detector down, since tool
// results come from servers that are not trusted.
package redact

import (
	"errors"
	"strings"
)

// Kinds of finding. A Kind is a short plain-language name used in markers,
// in the reviewer's UI and as the key of redaction counts.
const (
	KindGitHubToken       = "github token"
	KindAWSAccessKey      = "aws access key"
	KindAWSSecretKey      = "aws secret key"
	KindAzureStorageKey   = "azure storage key"
	KindAzureSAS          = "azure sas signature"
	KindAzureClientSecret = "azure client secret"
	KindAtlassianToken    = "atlassian api token"
	KindSlackToken        = "slack token"
	KindSlackWebhook      = "slack webhook"
	KindJWT               = "jwt"
	KindPrivateKey        = "private key"
	KindPassword          = "password"
	KindConnectionSecret  = "connection string secret"
	KindSecret            = "secret"
	KindNINumber          = "national insurance number"
	KindCardNumber        = "card number"
	KindAzureDevOpsPAT    = "azure devops token"
	KindGitLabToken       = "gitlab token"
	KindGoogleAPIKey      = "google api key"
	KindStripeKey         = "stripe key"
	KindOpenAIKey         = "openai api key"
	KindAnthropicKey      = "anthropic api key"
	KindNPMToken          = "npm token"
	KindPyPIToken         = "pypi token"
	KindHuggingFaceToken  = "hugging face token"
	KindSendGridKey       = "sendgrid api key"
)

// ErrInvalidJSON is returned by [ScanJSON] and [RedactJSON] when their input
// is not a single valid JSON value.
var ErrInvalidJSON = errors.New("invalid JSON document")

// maxPasses bounds the redact-and-rescan loop that makes redaction
// idempotent; markers never match a detector, so one pass is the norm.
const maxPasses = 4

// Finding is one secret or piece of sensitive data.
type Finding struct {
	// Kind names what was found, one of the Kind constants.
	Kind string
	// Path locates the JSON string that holds the finding, such as
	// "arguments.body" or "content[0].text"; it is "" for plain text and
	// for a document that is itself a string. A finding in an object key
	// has the path of that member. Keys in a path are themselves redacted.
	Path string
	// Start and End are byte offsets of the finding in the decoded string.
	Start, End int
	// Preview is a masked hint that is safe to show and store, such as
	// "ghp_…Xz"; it never holds enough of the value to reuse it.
	Preview string
}

// Marker returns the text that replaces a finding of the given kind.
func Marker(kind string) string {
	return "[redacted: " + kind + "]"
}

// Scan returns the findings in plain text, ordered by Start and never
// overlapping.
func Scan(s string) []Finding {
	return findings(scanText(s), s, "")
}

// Redact returns s with every finding replaced by its [Marker], and how many
// findings of each kind were replaced. When nothing is found it returns s
// itself and a nil map.
func Redact(s string) (string, map[string]int) {
	var counts map[string]int
	for range maxPasses {
		hits := scanText(s)
		if len(hits) == 0 {
			break
		}
		if counts == nil {
			counts = make(map[string]int)
		}
		var b strings.Builder
		b.Grow(len(s))
		last := 0
		for _, h := range hits {
			b.WriteString(s[last:h.start])
			b.WriteString(Marker(h.kind))
			last = h.end
			counts[h.kind]++
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s, counts
}

// findings turns internal hits on s into Findings at path.
func findings(hits []hit, s, path string) []Finding {
	if len(hits) == 0 {
		return nil
	}
	out := make([]Finding, len(hits))
	for i, h := range hits {
		out[i] = Finding{
			Kind:    h.kind,
			Path:    path,
			Start:   h.start,
			End:     h.end,
			Preview: preview(h.kind, s[h.start:h.end]),
		}
		if h.blob {
			out[i].Preview = "base64…"
		}
	}
	return out
}

// preview masks a found value: at most a public prefix that names the token
// type and the last characters of a long value.
func preview(kind, v string) string {
	const ell = "…"
	switch kind {
	case KindPrivateKey:
		if strings.HasPrefix(v, "-----BEGIN ") {
			if end := strings.Index(v[11:], "-----"); end >= 0 {
				return "BEGIN " + v[11:11+end] + ell
			}
		}
		return ell
	case KindCardNumber:
		digits := make([]byte, 0, 4)
		for i := len(v) - 1; i >= 0 && len(digits) < 4; i-- {
			if isDigit(v[i]) {
				digits = append(digits, v[i])
			}
		}
		for i, j := 0, len(digits)-1; i < j; i, j = i+1, j-1 {
			digits[i], digits[j] = digits[j], digits[i]
		}
		return ell + string(digits)
	case KindNINumber:
		return ell
	}
	prefix := ""
	for _, p := range publicPrefixes[kind] {
		if strings.HasPrefix(v, p) {
			prefix = p
			break
		}
	}
	switch kind {
	case KindGitHubToken:
		if strings.HasPrefix(v, "github_pat_") {
			prefix = "github_pat_"
		} else {
			prefix = v[:4]
		}
	case KindAWSAccessKey:
		prefix = v[:4]
	case KindAtlassianToken:
		prefix = v[:6]
	case KindJWT:
		prefix = "eyJ"
	case KindSlackToken:
		if i := strings.IndexByte(v, '-'); i > 0 && i < 10 {
			prefix = v[:i+1]
		}
	case KindSlackWebhook:
		if i := strings.Index(v, "hooks.slack.com/"); i >= 0 {
			prefix = v[:i+len("hooks.slack.com/")]
		}
	}
	if len(v) < 16 {
		return prefix + ell
	}
	return prefix + ell + v[len(v)-2:]
}

// publicPrefixes are the parts of a vendor token that name its type and
// carry no secret, which a preview may show.
var publicPrefixes = map[string][]string{
	KindGitLabToken:      {"glpat-", "gldt-", "glrt-", "glptt-", "gloas-", "glcbt-", "glimt-", "glft-", "glsoat-", "glffct-"},
	KindGoogleAPIKey:     {"AIza"},
	KindStripeKey:        {"sk_live_", "rk_live_"},
	KindOpenAIKey:        {"sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"},
	KindAnthropicKey:     {"sk-ant-"},
	KindNPMToken:         {"npm_"},
	KindPyPIToken:        {"pypi-"},
	KindHuggingFaceToken: {"hf_"},
	KindSendGridKey:      {"SG."},
}
