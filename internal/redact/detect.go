package redact

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// hit is one detector match in a string. A weak hit comes from context (a
// value next to a secret-like name); where it overlaps a strong hit (a
// recognised token shape) the strong kind names the merged span.
type hit struct {
	start, end int
	kind       string
	weak       bool
	blob       bool // the whole of a base64 value whose decoding holds kind
}

// Character classes used by the detectors, all ASCII.
const (
	clDigit = 1 << iota
	clUpper
	clLower
	clWord   // [A-Za-z0-9_]
	clB64URL // [A-Za-z0-9_-]
	clB64    // [A-Za-z0-9+/]
	clKey    // characters of an unquoted key: [A-Za-z0-9_.-]
	clAnchor // a byte some detector starts from
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case b >= '0' && b <= '9':
			t[c] |= clDigit | clWord | clB64URL | clB64 | clKey | clAnchor
		case b >= 'A' && b <= 'Z':
			t[c] |= clUpper | clWord | clB64URL | clB64 | clKey | clAnchor
		case b >= 'a' && b <= 'z':
			t[c] |= clLower | clWord | clB64URL | clB64 | clKey
		}
	}
	t['_'] |= clWord | clB64URL | clKey
	t['-'] |= clB64URL | clKey | clAnchor
	t['+'] |= clB64
	t['/'] |= clB64
	t['.'] |= clKey
	for _, c := range "gxhebsrnp=:~" {
		t[c] |= clAnchor
	}
	return t
}()

func is(c byte, cl uint8) bool { return class[c]&cl != 0 }
func isDigit(c byte) bool      { return class[c]&clDigit != 0 }
func isUpper(c byte) bool      { return class[c]&clUpper != 0 }
func isAlnum(c byte) bool      { return class[c]&(clDigit|clUpper|clLower) != 0 }
func isWord(c byte) bool       { return class[c]&clWord != 0 }
func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanner runs every detector over one string.
type scanner struct {
	s    string
	hits []hit
	aws  bool // an AWS access key id was seen: look for a paired secret
	// kvEnd is how far the last value after a secret-like name was read;
	// separators before it belong to that value and are not re-read, which
	// keeps input such as "pwd=pwd=pwd=..." linear.
	kvEnd int
	// noFooter lists PEM labels whose END line does not occur in the rest
	// of s, so a run of unterminated BEGIN lines is not quadratic.
	noFooter []string
	// runs remembers the last run read per character class (vendors.go).
	runs []runMemo
	// depth counts the base64 decodings around s (blob.go).
	depth int
}

func (sc *scanner) add(start, end int, kind string, weak bool) {
	sc.hits = append(sc.hits, hit{start: start, end: end, kind: kind, weak: weak})
}

// scanText returns the resolved (sorted, non-overlapping) hits in s.
func scanText(s string) []hit {
	sc := scanner{s: s}
	sc.run()
	return resolve(sc.hits)
}

// run is the single pass over s. Every detector that starts with a letter
// or digit needs a word boundary before it, so detectors are tried only at
// the first byte of a word and the rest of the word is skipped in a tight
// loop; of the other bytes only the separators and markers that start a
// detector ('-', '~', '=', ':') are looked at. An anchor is rejected after
// a few comparisons unless it really starts a secret.
func (sc *scanner) run() {
	s := sc.s
	if sc.depth < maxBlobDepth {
		sc.blob()
	}
	for i := 0; i < len(s); {
		c := s[i]
		if class[c]&clAnchor != 0 {
			if end := sc.at(i, c); end > i {
				i = end
				continue
			}
		}
		i++
		if class[c]&clWord != 0 {
			ws := i - 1
			for i < len(s) && class[s[i]]&clWord != 0 {
				i++
			}
			// A word of one of the Azure DevOps token lengths, from its
			// real start (a detector may have skipped its first digits).
			if ws > 0 && isWord(s[ws-1]) {
				ws = runBack(s, ws, 85)
			}
			if n := i - ws; n == 52 || n == 84 {
				sc.adoPAT(ws, i)
			}
		}
	}
	if sc.aws {
		sc.awsSecrets()
	}
}

// at tries the detectors that start with byte c at s[i]. It returns the end
// of a strong match, or -1 to continue with the next byte. The byte after c
// is checked first so that most anchors cost one comparison.
func (sc *scanner) at(i int, c byte) int {
	s := sc.s
	if i+1 >= len(s) {
		return -1 // every detector needs at least two bytes
	}
	n := s[i+1]
	if isDigit(c) {
		return sc.card(i)
	}
	if isUpper(c) {
		switch {
		case c == 'A' && n == 'I':
			if end := sc.googleKey(i); end > 0 {
				return end
			}
			return sc.niNumber(i)
		case c == 'S' && n == 'G':
			if end := sc.sendgrid(i); end > 0 {
				return end
			}
			return sc.niNumber(i)
		case c == 'A' && isUpper(n):
			if end := sc.awsKeyID(i); end > 0 {
				return end
			}
			if end := sc.atlassian(i); end > 0 {
				return end
			}
			return sc.niNumber(i)
		case c == 'B' && n == 'e':
			sc.bearer(i)
		case isUpper(n):
			return sc.niNumber(i)
		}
		return -1
	}
	switch {
	case c == 'g' && (n == 'h' || n == 'i'):
		return sc.github(i)
	case c == 'g' && n == 'l':
		return sc.gitlab(i)
	case c == 's' && n == 'k':
		return sc.skKey(i)
	case c == 'r' && n == 'k':
		return sc.rkLive(i)
	case c == 'n' && n == 'p':
		return sc.npmToken(i)
	case c == 'p' && n == 'y':
		return sc.pypi(i)
	case c == 'h' && n == 'f':
		return sc.huggingFace(i)
	case c == 'x' && (n == 'o' || n == 'a'):
		return sc.slack(i)
	case c == 'h' && n == 'o':
		return sc.slackWebhook(i)
	case c == 'e' && n == 'y':
		return sc.jwt(i)
	case c == 'b' && n == 'e':
		sc.bearer(i)
	case c == '-' && n == '-':
		return sc.pem(i)
	case c == '~':
		return sc.azureClientSecret(i)
	case c == ':' && n == '/':
		return sc.userinfo(i)
	case c == '=' || c == ':':
		sc.keyValue(i)
	}
	return -1
}

// runBack returns the start of the word that ends at i, looking back at
// most max bytes.
func runBack(s string, i, max int) int {
	j := i
	for j > 0 && i-j < max && isWord(s[j-1]) {
		j--
	}
	return j
}

// runOf returns the end of the run of bytes of class cl starting at i, or
// of max bytes if sooner.
func runOf(s string, i int, cl uint8, max int) int {
	j := i
	for j < len(s) && j-i < max && class[s[j]]&cl != 0 {
		j++
	}
	return j
}

// maxToken bounds the length of vendor tokens whose characters can also
// start another candidate, so that no byte is rescanned more than a
// constant number of times.
const maxToken = 256

// upperLowerDigit reports whether v has an upper-case letter, a lower-case
// letter and a digit, as any long random base64 value does.
func upperLowerDigit(v string) bool {
	var u, l, d bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		u = u || isUpper(c)
		l = l || (c >= 'a' && c <= 'z')
		d = d || isDigit(c)
	}
	return u && l && d
}

// distinct reports how many different bytes v holds, up to limit.
func distinct(v string, limit int) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(v) && n < limit; i++ {
		if !seen[v[i]] {
			seen[v[i]] = true
			n++
		}
	}
	return n
}

// github finds ghp_/gho_/ghu_/ghs_/ghr_ tokens (36 base62 characters, of
// which the last six are a checksum, and up to 255 in all as GitHub
// reserves) and fine-grained github_pat_ tokens (22 + "_" + 59 characters).
func (sc *scanner) github(i int) int {
	s := sc.s
	if i > 0 && isWord(s[i-1]) {
		return -1
	}
	var p, min int
	switch {
	case strings.HasPrefix(s[i:], "github_pat_"):
		p, min = len("github_pat_"), 82
	case i+4 <= len(s) && s[i+1] == 'h' && strings.IndexByte("pousr", s[i+2]) >= 0 && s[i+3] == '_':
		p, min = 4, 36
	default:
		return -1
	}
	end := runOf(s, i+p, clWord, 255-p+1)
	n := end - (i + p)
	if n < min || n > 255-p || distinct(s[i+p:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, KindGitHubToken, false)
	return end
}

// awsKeyID finds AWS access key ids: a four-letter type prefix (AKIA
// long-term, ASIA STS temporary, ABIA STS bearer, ACCA context credential)
// and 16 more upper-case base32 characters. The documentation's
// "...EXAMPLE" keys are skipped.
func (sc *scanner) awsKeyID(i int) int {
	s := sc.s
	if i+20 > len(s) || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	switch s[i : i+4] {
	case "AKIA", "ASIA", "ABIA", "ACCA":
	default:
		return -1
	}
	for j := i + 4; j < i+20; j++ {
		if !isUpper(s[j]) && !isDigit(s[j]) {
			return -1
		}
	}
	if i+20 < len(s) && isWord(s[i+20]) {
		return -1
	}
	id := s[i : i+20]
	if strings.HasSuffix(id, "EXAMPLE") || distinct(id[4:], 6) < 6 {
		return -1
	}
	sc.add(i, i+20, KindAWSAccessKey, false)
	sc.aws = true
	return i + 20
}

// awsSecrets looks near each AWS access key id for a 40-character secret
// access key. Git SHAs (lower-case hex) never qualify: a secret must mix
// upper case, lower case and digits.
func (sc *scanner) awsSecrets() {
	s := sc.s
	const window = 300
	ids := []hit{}
	for _, h := range sc.hits {
		if h.kind == KindAWSAccessKey {
			ids = append(ids, h)
		}
	}
	done := 0 // windows overlap when ids are close: scan each byte once
	for _, id := range ids {
		lo, hi := max(0, id.start-window, done), min(len(s), id.end+window)
		done = hi
		for j := lo; j < hi; {
			if !is(s[j], clB64) {
				j++
				continue
			}
			end := runOf(s, j, clB64, 41)
			if end-j == 40 && (j == 0 || !is(s[j-1], clB64)) && (end == len(s) || !is(s[end], clB64)) &&
				upperLowerDigit(s[j:end]) && s[j:end] != "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" {
				sc.add(j, end, KindAWSSecretKey, false)
			}
			j = runOf(s, j, clB64, len(s))
		}
	}
}

// atlassian finds Atlassian API tokens: "ATATT3" and about 186 more
// characters ending in a CRC32 checksum.
func (sc *scanner) atlassian(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "ATATT3") || (i > 0 && isWord(s[i-1])) {
		return -1
	}
	// Real tokens are 192 characters; the bound keeps a run of
	// "ATATT3-ATATT3-..." from being rescanned at every word.
	end := i + 6
	for end < len(s) && end-i <= maxToken && (is(s[end], clB64URL) || s[end] == '=') {
		end++
	}
	if end-i < 100 || end-i > maxToken || distinct(s[i+6:end], 10) < 10 {
		return -1
	}
	sc.add(i, end, KindAtlassianToken, false)
	return end
}

// slack finds Slack tokens: xoxb- (bot), xoxp- (user), xoxa-/xoxr-
// (workspace access/refresh), xoxe-/xoxe.xoxp- (configuration and rotating
// tokens), xoxs-/xoxo- (legacy) and xapp- (app-level).
func (sc *scanner) slack(i int) int {
	s := sc.s
	if i > 0 && isWord(s[i-1]) {
		return -1
	}
	var p int
	switch {
	case strings.HasPrefix(s[i:], "xoxe.xoxb-"), strings.HasPrefix(s[i:], "xoxe.xoxp-"):
		p = 10
	case strings.HasPrefix(s[i:], "xapp-"):
		p = 5
	case strings.HasPrefix(s[i:], "xox") && i+4 < len(s) && strings.IndexByte("abposre", s[i+3]) >= 0 && s[i+4] == '-':
		p = 5
	default:
		return -1
	}
	end := runOf(s, i+p, clB64URL, maxToken)
	if end-i >= maxToken {
		return -1
	}
	for end > i+p && s[end-1] == '-' {
		end--
	}
	body := s[i+p : end]
	digits := 0
	for j := 0; j < len(body); j++ {
		if isDigit(body[j]) {
			digits++
		}
	}
	if len(body) < 15 || digits < 6 || distinct(body, 8) < 8 {
		return -1
	}
	sc.add(i, end, KindSlackToken, false)
	return end
}

// slackWebhook finds incoming-webhook and workflow URLs, whose path is the
// credential.
func (sc *scanner) slackWebhook(i int) int {
	s := sc.s
	const host = "hooks.slack.com/"
	if !strings.HasPrefix(s[i:], host) {
		return -1
	}
	j := i + len(host)
	var p int
	for _, kind := range []string{"services/", "workflows/", "triggers/"} {
		if strings.HasPrefix(s[j:], kind) {
			p = len(kind)
		}
	}
	if p == 0 {
		return -1
	}
	end := j + p
	for end < len(s) && end-j < maxToken && (is(s[end], clB64URL) || s[end] == '/') {
		end++
	}
	if end-(j+p) < 20 || end-j >= maxToken {
		return -1
	}
	start := i
	if strings.HasSuffix(s[:i], "https://") {
		start = i - len("https://")
	}
	sc.add(start, end, KindSlackWebhook, false)
	return end
}

// jwt finds JSON Web Tokens (and five-part JWEs): base64url segments
// separated by dots whose first segment decodes to a JSON object with an
// "alg" member.
func (sc *scanner) jwt(i int) int {
	s := sc.s
	if !strings.HasPrefix(s[i:], "eyJ") || (i > 0 && (is(s[i-1], clB64URL) || s[i-1] == '.')) {
		return -1
	}
	hdrEnd := runOf(s, i, clB64URL, 4096)
	if hdrEnd-i < 10 || hdrEnd >= len(s) || s[hdrEnd] != '.' {
		return -1
	}
	hdr, err := base64.RawURLEncoding.DecodeString(s[i:hdrEnd])
	if err != nil {
		return -1
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(hdr, &fields) != nil {
		return -1
	}
	if _, ok := fields["alg"]; !ok {
		return -1
	}
	end, parts := hdrEnd, 1
	for parts < 5 && end < len(s) && s[end] == '.' {
		next := runOf(s, end+1, clB64URL, len(s))
		if parts == 1 && next-(end+1) < 2 {
			return -1 // an empty payload is not a token
		}
		end, parts = next, parts+1
	}
	if parts < 3 {
		return -1
	}
	sc.add(i, end, KindJWT, false)
	return end
}

// pem finds PEM private key blocks of any key type ("PRIVATE KEY", "RSA
// PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE
// KEY BLOCK"...), from BEGIN to the matching END line. A block cut off
// before its END line is redacted as far as its base64 body goes, if it has
// one.
func (sc *scanner) pem(i int) int {
	s := sc.s
	const begin = "-----BEGIN "
	if !strings.HasPrefix(s[i:], begin) {
		return -1
	}
	lstart := i + len(begin)
	lend := strings.Index(s[lstart:min(len(s), lstart+80)], "-----")
	if lend < 0 {
		return -1
	}
	label := s[lstart : lstart+lend]
	if !strings.Contains(label, "PRIVATE KEY") {
		return -1
	}
	body := lstart + lend + 5
	if !slices.Contains(sc.noFooter, label) {
		footer := "-----END " + label + "-----"
		if k := strings.Index(s[body:], footer); k >= 0 {
			end := body + k + len(footer)
			sc.add(i, end, KindPrivateKey, false)
			return end
		}
		sc.noFooter = append(sc.noFooter, label)
	}
	// No END line: take the lines that belong to a PEM body (base64, or
	// headers such as "Proc-Type: 4,ENCRYPTED"), up to the size of the
	// largest keys, and stop at the first line of anything else.
	end := body
	for end < len(s) && end-body < maxPEMBody {
		ls := end
		for ls < len(s) {
			if s[ls] == '\r' || s[ls] == '\n' {
				ls++
			} else if n := escapedBreak(s, ls); n > 0 {
				ls += n
			} else {
				break
			}
		}
		le := ls
		for le < len(s) && le-ls <= maxPEMLine && s[le] != '\r' && s[le] != '\n' && escapedBreak(s, le) == 0 {
			le++
		}
		if ls == le || le-ls > maxPEMLine || !pemLine(s[ls:le]) {
			break
		}
		end = le
	}
	if end-body < 32 {
		return -1 // a header alone, as in prose about key formats
	}
	sc.add(i, end, KindPrivateKey, false)
	return end
}

// maxPEMBody bounds an unterminated PEM body: an 8192-bit RSA key is about
// 6.5 KB of base64.
const maxPEMBody = 16 << 10

// maxPEMLine bounds a PEM body line (64 characters in PEM, 70 in OpenSSH,
// 76 in MIME); a longer line is text, and is not read to its end.
const maxPEMLine = 128

// escapedBreak reports the length of a "\n" or "\r" escape sequence at
// s[i] (a PEM block inside JSON or code text), or 0.
func escapedBreak(s string, i int) int {
	if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'n' || s[i+1] == 'r') {
		return 2
	}
	return 0
}

// pemLine reports whether a line can belong to a PEM body: base64 (long
// enough, or padded, to be more than a word of text) or an RFC 1421
// header such as "DEK-Info: AES-128-CBC,...".
func pemLine(line string) bool {
	if c := strings.IndexByte(line, ':'); c > 0 {
		for j := 0; j < c; j++ {
			if !isAlnum(line[j]) && line[j] != '-' {
				return false
			}
		}
		return true
	}
	for j := 0; j < len(line); j++ {
		if !is(line[j], clB64) && line[j] != '=' {
			return false
		}
	}
	return len(line) >= 16 || strings.HasSuffix(line, "=")
}

// azureClientSecret finds Microsoft Entra (Azure AD) client secrets, whose
// fourth and fifth characters after a digit are "Q~", anchored on the "~".
func (sc *scanner) azureClientSecret(i int) int {
	s := sc.s
	start := i - 5
	if start < 0 || s[i-1] != 'Q' || !isDigit(s[i-2]) {
		return -1
	}
	isChar := func(c byte) bool { return isWord(c) || c == '~' || c == '.' }
	for j := start; j < i-2; j++ {
		if !isChar(s[j]) {
			return -1
		}
	}
	if start > 0 && (isChar(s[start-1]) || s[start-1] == '-') {
		return -1
	}
	end := i + 1
	for end < len(s) && end-i <= 35 && (isChar(s[end]) || s[end] == '-') {
		end++
	}
	n := end - (i + 1)
	if n < 31 || n > 34 || mixes(s[start:end]) < 3 {
		return -1
	}
	sc.add(start, end, KindAzureClientSecret, false)
	return end
}

// bearer finds "Bearer <token>" credentials whose token looks random.
func (sc *scanner) bearer(i int) {
	s := sc.s
	if i+7 >= len(s) || !strings.EqualFold(s[i:i+7], "bearer ") || (i > 0 && isWord(s[i-1])) {
		return
	}
	j := i + 7
	for j < len(s) && s[j] == ' ' {
		j++
	}
	end := j
	for end < len(s) && (is(s[end], clB64URL|clB64) || strings.IndexByte("._~=", s[end]) >= 0) {
		end++
	}
	if v := s[j:end]; !isPlaceholder(v) && highEntropy(v) {
		sc.add(j, end, KindSecret, true)
	}
}

// userinfo finds the password in a URL's userinfo
// (postgres://user:pass@host), anchored on "://".
func (sc *scanner) userinfo(i int) int {
	s := sc.s
	if i == 0 || !is(s[i-1], clWord) || !strings.HasPrefix(s[i:], "://") {
		return -1
	}
	a := i + 3
	end := a
	for end < len(s) && end-a < 512 {
		c := s[end]
		if c == '/' || c == '?' || c == '#' || isSpace(c) || strings.IndexByte("\"'`<>", c) >= 0 {
			break
		}
		end++
	}
	auth := s[a:end]
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return -1
	}
	colon := strings.IndexByte(auth[:at], ':')
	if colon < 0 {
		return -1
	}
	pw := auth[colon+1 : at]
	if isPlaceholder(pw) {
		return -1
	}
	sc.add(a+colon+1, a+at, KindPassword, false)
	return -1 // the user name may itself be a token: keep scanning
}

// niNumber finds UK National Insurance numbers: two prefix letters (neither
// D, F, I, Q, U or V, the second not O, and not BG, GB, KN, NK, NT, TN or
// ZZ), six digits, and a suffix A to D, with or without single spaces.
func (sc *scanner) niNumber(i int) int {
	s := sc.s
	if i+9 > len(s) || (i > 0 && isAlnum(s[i-1])) {
		return -1
	}
	a, b := s[i], s[i+1]
	if !isUpper(b) || strings.IndexByte("DFIQUV", a) >= 0 || strings.IndexByte("DFIQUVO", b) >= 0 {
		return -1
	}
	switch s[i : i+2] {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return -1
	}
	j := i + 2
	for range 3 {
		if j < len(s) && s[j] == ' ' {
			j++
		}
		if j+2 > len(s) || !isDigit(s[j]) || !isDigit(s[j+1]) {
			return -1
		}
		j += 2
	}
	if j < len(s) && s[j] == ' ' {
		j++
	}
	if j >= len(s) || s[j] < 'A' || s[j] > 'D' {
		return -1
	}
	j++
	if j < len(s) && isAlnum(s[j]) {
		return -1
	}
	sc.add(i, j, KindNINumber, false)
	return j
}

// card finds payment card numbers: 13 to 19 digits, either unbroken or in
// groups (first of four) split by single spaces or dashes, with a known
// issuer prefix and length, that pass the Luhn check.
func (sc *scanner) card(i int) int {
	s := sc.s
	if i > 0 {
		p := s[i-1]
		if isAlnum(p) || p == '_' || p == '.' || p == '+' || p == '/' || p == '$' || p == '#' {
			return sc.skipDigits(i)
		}
		if p == '-' && i > 1 && isAlnum(s[i-2]) {
			return sc.skipDigits(i)
		}
	}
	var digits [19]byte
	n := 0
	j := i
	var sep byte
	groups := 0
	for {
		g := j
		for j < len(s) && isDigit(s[j]) {
			if n < len(digits) {
				digits[n] = s[j]
			}
			n++
			j++
		}
		glen := j - g
		groups++
		if groups > 1 && (glen < 3 || glen > 6) {
			return sc.skipDigits(i)
		}
		if n > 19 {
			return sc.skipDigits(i)
		}
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) && (sep == 0 || sep == s[j]) {
			if groups == 1 && glen != 4 {
				break
			}
			sep = s[j]
			j++
			continue
		}
		break
	}
	if groups == 1 && j-i != n {
		return sc.skipDigits(i)
	}
	if n < 13 || n > 19 {
		return sc.skipDigits(i)
	}
	if j < len(s) {
		c := s[j]
		if isAlnum(c) || c == '_' || ((c == '.' || c == ',' || c == '-') && j+1 < len(s) && isDigit(s[j+1])) {
			return sc.skipDigits(i)
		}
	}
	d := string(digits[:n])
	if !issuerOK(d) || !luhn(d) {
		return sc.skipDigits(i)
	}
	sc.add(i, j, KindCardNumber, false)
	return j
}

// skipDigits returns the end of the digit run at i so that the scanner does
// not retry the card check at every digit of a long number.
func (sc *scanner) skipDigits(i int) int {
	return runOf(sc.s, i, clDigit, len(sc.s))
}

// issuerOK reports whether d has a card scheme's issuer prefix and one of
// its lengths: Visa, Mastercard, American Express, Discover, JCB, Diners
// Club, UnionPay and Maestro.
func issuerOK(d string) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p2 == 65, p3 >= 644 && p3 <= 649: // Discover
		return n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p2 == 62: // UnionPay
		return n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro
		return n >= 13
	}
	return false
}

// luhn reports whether the digit string passes the Luhn checksum.
func luhn(d string) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// generic reports whether a kind says less than a vendor-specific one found
// at the same place (a URL password that is also a GitHub token).
func generic(kind string) bool {
	return kind == KindPassword || kind == KindSecret || kind == KindConnectionSecret
}

// resolve sorts hits and merges overlapping ones into a single span, named
// by the strong hit where one is involved (failing closed: the merged span
// covers everything either hit covered).
func resolve(hits []hit) []hit {
	if len(hits) <= 1 {
		return hits
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.weak != b.weak {
			if a.weak {
				return 1
			}
			return -1
		}
		if ra, rb := generic(a.kind), generic(b.kind); ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		if a.end != b.end {
			return b.end - a.end
		}
		return strings.Compare(a.kind, b.kind)
	})
	out := hits[:1]
	for _, h := range hits[1:] {
		last := &out[len(out)-1]
		if h.start >= last.end {
			out = append(out, h)
			continue
		}
		if last.weak && !h.weak {
			last.kind, last.weak = h.kind, false
		}
		last.end = max(last.end, h.end)
	}
	return out
}
