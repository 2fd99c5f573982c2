package redact

import "strings"

// Vendor tokens recognised by a fixed prefix or signature, found anywhere
// without a secret-like name beside them. Each detector rejects a
// candidate after a few comparisons unless it starts with its prefix, and
// reads a token's body through runFrom, so no byte is read more than once
// per character class however the input repeats a prefix.

const (
	clAlnum   = clDigit | clUpper | clLower
	clLetters = clUpper | clLower
)

// runMemo remembers, per character class, the last run the scanner read:
// a run that starts anywhere inside it ends where it ended.
type runMemo struct {
	cl         uint8
	start, end int
}

// runFrom returns the end of the run of bytes of class cl starting at i,
// reading bytes already read for the same class only once.
func (sc *scanner) runFrom(i int, cl uint8) int {
	for k := range sc.runs {
		m := &sc.runs[k]
		if m.cl == cl {
			if i >= m.start && i <= m.end {
				return m.end
			}
			m.start, m.end = i, runOf(sc.s, i, cl, len(sc.s))
			return m.end
		}
	}
	end := runOf(sc.s, i, cl, len(sc.s))
	sc.runs = append(sc.runs, runMemo{cl: cl, start: i, end: end})
	return end
}

// token checks for prefix at s[i] followed by a body of class cl of
// min to max bytes (trailing '.' and '-' trimmed, as in a sentence) with
// at least ten different bytes, and records it as kind. It returns the
// token's end, or -1.
func (sc *scanner) token(i int, prefix string, cl uint8, min, max int, kind string) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], prefix) || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	b := i + len(prefix)
	end := sc.runFrom(b, cl)
	for end > b && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	if n := end - b; n < min || n > max || distinct(s[b:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, kind, false)
	return end
}

// gitlab finds GitLab tokens: personal, project and group access tokens
// (glpat-), deploy tokens (gldt-), runner tokens (glrt-), pipeline
// trigger tokens (glptt-), OAuth application secrets (gloas-), CI/CD job
// tokens (glcbt-), incoming mail tokens (glimt-), feed tokens (glft-),
// SCIM tokens (glsoat-) and feature flag client tokens (glffct-); 20
// characters in the classic format, longer with ".01." routing parts in
// the newer one.
func (sc *scanner) gitlab(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "gl") {
		return -1
	}
	dash := strings.IndexByte(s[i:min(len(s), i+9)], '-')
	if dash < 0 {
		return -1
	}
	switch s[i : i+dash+1] {
	case "glpat-", "gldt-", "glrt-", "glptt-", "gloas-", "glcbt-", "glimt-", "glft-", "glsoat-", "glffct-":
		return sc.token(i, s[i:i+dash+1], clKey, 20, 300, KindGitLabToken)
	}
	return -1
}

// googleKey finds Google API keys: "AIza" and 35 more characters.
func (sc *scanner) googleKey(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "AIza") || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	end := sc.runFrom(i+4, clB64URL)
	if end-(i+4) != 35 || distinct(s[i+4:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, KindGoogleAPIKey, false)
	return end
}

// sendgrid finds SendGrid API keys: "SG.", 22 characters, ".", 43
// characters.
func (sc *scanner) sendgrid(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "SG.") || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	dot := runOf(s, i+3, clB64URL, 23)
	if dot-(i+3) != 22 || dot >= len(s) || s[dot] != '.' {
		return -1
	}
	end := sc.runFrom(dot+1, clB64URL)
	if end-(dot+1) != 43 || distinct(s[i+3:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, KindSendGridKey, false)
	return end
}

// skKey finds the keys that start "sk": Stripe live secret keys
// (sk_live_), Anthropic keys (sk-ant-api03-, sk-ant-admin01-...) and
// OpenAI keys (sk-proj-, sk-svcacct-, sk-admin-, and the older sk- keys
// with the "T3BlbkFJ" marker in the middle).
func (sc *scanner) skKey(i int) int {
	s := sc.s
	switch {
	case strings.HasPrefix(s[i:], "sk_live_"):
		return sc.token(i, "sk_live_", clAlnum, 20, 255, KindStripeKey)
	case strings.HasPrefix(s[i:], "sk-ant-"):
		// sk-ant-<purpose><two digits>-<body>
		p := i + len("sk-ant-")
		j := runOf(s, p, clLower, 12)
		k := runOf(s, j, clDigit, 3)
		if j == p || k-j != 2 || k >= len(s) || s[k] != '-' {
			return -1
		}
		return sc.token(i, s[i:k+1], clB64URL, 32, 300, KindAnthropicKey)
	case strings.HasPrefix(s[i:], "sk-proj-"):
		return sc.token(i, "sk-proj-", clB64URL, 40, 300, KindOpenAIKey)
	case strings.HasPrefix(s[i:], "sk-svcacct-"):
		return sc.token(i, "sk-svcacct-", clB64URL, 40, 300, KindOpenAIKey)
	case strings.HasPrefix(s[i:], "sk-admin-"):
		return sc.token(i, "sk-admin-", clB64URL, 40, 300, KindOpenAIKey)
	case strings.HasPrefix(s[i:], "sk-"):
		if i > 0 && isWord(s[i-1]) {
			return -1
		}
		end := sc.runFrom(i+3, clB64URL)
		if n := end - (i + 3); n < 40 || n > 300 || !strings.Contains(s[i+3:end], "T3BlbkFJ") {
			return -1
		}
		sc.add(i, end, KindOpenAIKey, false)
		return end
	}
	return -1
}

// npmToken finds npm access tokens: "npm_" and 36 base62 characters.
func (sc *scanner) npmToken(i int) int {
	return sc.exact(i, "npm_", clAlnum, 36, KindNPMToken)
}

// huggingFace finds Hugging Face access tokens: "hf_" and 34 letters.
func (sc *scanner) huggingFace(i int) int {
	return sc.exact(i, "hf_", clLetters, 34, KindHuggingFaceToken)
}

// exact checks for prefix at s[i] and a body of exactly n bytes of class
// cl, not followed by another word character, with at least ten
// different bytes.
func (sc *scanner) exact(i int, prefix string, cl uint8, n int, kind string) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], prefix) || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	b := i + len(prefix)
	end := sc.runFrom(b, cl)
	if end-b != n || (end < len(s) && isWord(s[end])) || distinct(s[b:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, kind, false)
	return end
}

// pypi finds PyPI API tokens: "pypi-" and a macaroon whose first bytes
// name pypi.org (or test.pypi.org), which base64 spells as
// "AgEIcHlwaS5vcmc" (or "AgENdGVzdC5weXBpLm9yZw").
func (sc *scanner) pypi(i int) int {
	s := sc.s
	for _, p := range []string{"pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"} {
		if strings.HasPrefix(s[i:], p) {
			return sc.token(i, p, clB64URL, 50, 4096, KindPyPIToken)
		}
	}
	return -1
}

// rkLive finds Stripe restricted keys: "rk_live_" and base62.
func (sc *scanner) rkLive(i int) int {
	return sc.token(i, "rk_live_", clAlnum, 20, 255, KindStripeKey)
}

// adoPAT checks a whole word s[ws:we] for the two shapes of Azure DevOps
// personal access tokens: 84 letters and digits with the "JQQJ" signature
// at 52 and "AZDO" at 76 (the format since 2024), or 52 characters of
// lower-case base32 (the older one, a 256-bit key).
func (sc *scanner) adoPAT(ws, we int) {
	w := sc.s[ws:we]
	switch len(w) {
	case 84:
		if w[52:56] != "JQQJ" || w[76:80] != "AZDO" {
			return
		}
		for i := 0; i < len(w); i++ {
			if !isAlnum(w[i]) {
				return
			}
		}
	case 52:
		digits := 0
		for i := 0; i < len(w); i++ {
			switch c := w[i]; {
			case c >= '2' && c <= '7':
				digits++
			case c >= 'a' && c <= 'z':
			default:
				return
			}
		}
		if digits < 2 || digits > 40 || distinct(w, 16) < 16 {
			return
		}
	default:
		return
	}
	sc.add(ws, we, KindAzureDevOpsPAT, false)
}
