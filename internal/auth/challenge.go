package auth

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
)

// challenge is what a server's Bearer or DPoP WWW-Authenticate challenge
// asks for (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).
type challenge struct {
	Error            string   // "invalid_token", "insufficient_scope", …
	Scopes           []string // scopes the server wants, if it said
	ResourceMetadata string   // RFC 9728 protected resource metadata URL
	// DPoP is set when the server (also) challenged with the DPoP scheme
	// for ES256 proofs: it accepts DPoP-bound tokens (RFC 9449 §7.1).
	DPoP bool
}

// bearerChallenge reads the Bearer challenge, or failing that the DPoP
// one (same parameters), from a 401 or 403 answer's WWW-Authenticate
// headers. ok is false when there is none.
func bearerChallenge(h http.Header) (c challenge, ok bool) {
	chs := parseChallenges(h.Values("WWW-Authenticate"))
	slices.SortStableFunc(chs, func(a, b rawChallenge) int {
		return cmp.Compare(rank(a.scheme), rank(b.scheme))
	})
	for _, ch := range chs {
		if rank(ch.scheme) == 1 {
			algs, listed := ch.params["algs"]
			c.DPoP = c.DPoP || !listed || slices.Contains(strings.Fields(algs), dpopAlg)
		}
	}
	for _, ch := range chs {
		if rank(ch.scheme) > 1 {
			continue
		}
		c.Error = ch.params["error"]
		c.Scopes = strings.Fields(ch.params["scope"])
		c.ResourceMetadata = ch.params["resource_metadata"]
		return c, true
	}
	return challenge{}, false
}

// wantsDPoPNonce reports whether a 401's DPoP challenge asks for a proof
// with the server's nonce (RFC 9449 §9).
func wantsDPoPNonce(h http.Header) bool {
	for _, ch := range parseChallenges(h.Values("WWW-Authenticate")) {
		if strings.EqualFold(ch.scheme, "DPoP") && ch.params["error"] == errUseDPoPNonce {
			return true
		}
	}
	return false
}

// rank orders the schemes bearerChallenge reads: Bearer, then DPoP.
func rank(scheme string) int {
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return 0
	case strings.EqualFold(scheme, "DPoP"):
		return 1
	}
	return 2
}

// rawChallenge is one challenge of a WWW-Authenticate header (RFC 9110
// §11.6.1): a scheme and its parameters, names lowercased. A token68
// credential is ignored: no scheme we use has one.
type rawChallenge struct {
	scheme string
	params map[string]string
}

// parseChallenges parses WWW-Authenticate header values. Its input comes
// from the network: it never panics, and malformed parts are skipped.
func parseChallenges(values []string) []rawChallenge {
	var out []rawChallenge
	for _, v := range values {
		p := &challengeParser{s: v}
		for {
			p.skip(" \t,")
			if p.done() {
				break
			}
			scheme := p.token()
			if scheme == "" {
				p.skipPast(',') // not a token: drop up to the next comma
				continue
			}
			ch := rawChallenge{scheme: scheme, params: map[string]string{}}
			p.params(ch.params)
			out = append(out, ch)
		}
	}
	return out
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) skipPast(c byte) {
	for p.i < len(p.s) && p.s[p.i] != c {
		p.i++
	}
	if p.i < len(p.s) {
		p.i++
	}
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads "name=value" pairs separated by commas until the next
// challenge starts (a token not followed by "=") or the input ends.
func (p *challengeParser) params(into map[string]string) {
	for {
		p.skip(" \t")
		save := p.i
		name := p.token()
		p.skip(" \t")
		if name == "" || p.done() || p.s[p.i] != '=' {
			// A token68, or the next challenge's scheme.
			p.i = save
			if name != "" && !p.nextIsScheme() {
				p.skipToken68()
				continue
			}
			return
		}
		p.i++ // '='
		p.skip(" \t")
		var val string
		if !p.done() && p.s[p.i] == '"' {
			val = p.quoted()
		} else {
			val = p.token()
		}
		name = strings.ToLower(name)
		if _, dup := into[name]; !dup {
			into[name] = val
		}
		p.skip(" \t")
		if p.done() {
			return
		}
		if p.s[p.i] != ',' {
			p.skipPast(',') // junk after a value
		} else {
			p.i++
		}
	}
}

// nextIsScheme reports whether the input at p.i is a token followed by
// whitespace and another token, or by a comma or the end: the start of
// another challenge rather than a token68 value.
func (p *challengeParser) nextIsScheme() bool {
	q := challengeParser{s: p.s, i: p.i}
	if q.token() == "" {
		return false
	}
	if q.done() || q.s[q.i] == ',' {
		return true
	}
	if q.s[q.i] != ' ' && q.s[q.i] != '\t' {
		return false // "abc==" and the like: token68
	}
	q.skip(" \t")
	return q.done() || isTokenChar(q.s[q.i])
}

func (p *challengeParser) skipToken68() {
	for p.i < len(p.s) && p.s[p.i] != ',' {
		p.i++
	}
	if p.i < len(p.s) {
		p.i++
	}
}

// quoted reads a quoted-string starting at p.i, undoing backslash escapes.
func (p *challengeParser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String() // unterminated: take what there is
}
