package redact

import (
	"math"
	"strings"
)

// keyClass says what a secret-like name implies about the value next to it.
type keyClass uint8

const (
	clsNone         keyClass = iota
	clsPassword              // password, passwd, pwd, passphrase: any real value
	clsGeneric               // token, secret, api_key...: a random-looking value
	clsAWSSecret             // aws_secret_access_key, SecretAccessKey
	clsAzureStorage          // AccountKey in a storage connection string
	clsConnSecret            // SharedAccessKey in a Service Bus / Event Hubs string
	clsSASSig                // sig in a shared access signature
	clsPrivateKey            // private_key
	clsAuth                  // Authorization: a scheme and a credential
	clsConnString            // connectionString (JSON only): secrets among its pairs
)

// kind names the finding for a value accepted under class c.
func (c keyClass) kind() string {
	switch c {
	case clsPassword:
		return KindPassword
	case clsAWSSecret:
		return KindAWSSecretKey
	case clsAzureStorage:
		return KindAzureStorageKey
	case clsConnSecret, clsConnString:
		return KindConnectionSecret
	case clsSASSig:
		return KindAzureSAS
	case clsPrivateKey:
		return KindPrivateKey
	}
	return KindSecret
}

// maxKeyLen bounds the names considered; longer runs are data, not names.
const maxKeyLen = 64

// segments splits a name into its last words, last first, on '_', '-', '.',
// spaces and camelCase boundaries: "nextPageToken" → token, page, next;
// "AWS_SECRET_ACCESS_KEY" → key, access, secret, aws.
func segments(key string, seg *[4]string) int {
	n := 0
	i := len(key)
	for n < len(seg) {
		for i > 0 && !isAlnum(key[i-1]) {
			i--
		}
		if i == 0 {
			break
		}
		end := i
		switch c := key[i-1]; {
		case isUpper(c):
			for i > 0 && (isUpper(key[i-1]) || isDigit(key[i-1])) {
				i--
			}
		default:
			for i > 0 && (isDigit(key[i-1]) || (isAlnum(key[i-1]) && !isUpper(key[i-1]))) {
				i--
			}
			if i > 0 && isUpper(key[i-1]) {
				i--
			}
		}
		seg[n] = key[i:end]
		n++
	}
	return n
}

// eq reports whether a equals the lower-case word b, ignoring case.
func eq(a, b string) bool { return len(a) == len(b) && strings.EqualFold(a, b) }

// hasSuffixFold reports whether a ends with the lower-case word b, ignoring
// case.
func hasSuffixFold(a, b string) bool {
	return len(a) >= len(b) && strings.EqualFold(a[len(a)-len(b):], b)
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// notSecretTokens are words before "token" that name pagination and
// progress handles, not credentials (nextPageToken, progressToken).
var notSecretTokens = []string{
	"page", "next", "continuation", "sync", "cursor", "resume", "resumption",
	"cancellation", "progress", "pagination", "start", "delta", "max", "num", "count",
}

// classifyKey says whether a name is secret-like and what that implies.
func classifyKey(key string) keyClass {
	if len(key) == 0 || len(key) > maxKeyLen {
		return clsNone
	}
	var seg [4]string
	if segments(key, &seg) == 0 {
		return clsNone
	}
	last, prev, prev2 := seg[0], seg[1], seg[2]
	switch {
	case eq(last, "password"), eq(last, "passwd"), eq(last, "pwd"), eq(last, "passphrase"), eq(last, "pass"),
		hasSuffixFold(last, "password"), hasSuffixFold(last, "passwd"), hasSuffixFold(last, "passphrase"):
		return clsPassword
	case hasSuffixFold(last, "secret"):
		if containsFold(key, "aws") {
			return clsAWSSecret
		}
		return clsGeneric
	case hasSuffixFold(last, "token"):
		before := prev
		if len(last) > len("token") {
			before = last[:len(last)-len("token")]
		}
		for _, w := range notSecretTokens {
			if hasSuffixFold(before, w) {
				return clsNone
			}
		}
		return clsGeneric
	case eq(last, "key"):
		return classifyKeyWord(prev, prev2, key)
	case hasSuffixFold(last, "key") && len(last) > 3:
		return classifyKeyWord(last[:len(last)-3], "", key)
	case eq(last, "sig"):
		return clsSASSig
	case eq(last, "connectionstring"), eq(last, "string") && eq(prev, "connection"), eq(last, "connstr"):
		return clsConnString
	case eq(last, "authorization"), eq(last, "auth"):
		return clsAuth
	case eq(last, "credential"), eq(last, "credentials"), eq(last, "creds"):
		return clsGeneric
	}
	return clsNone
}

// classifyKeyWord classifies "<w> key" names such as api_key, AccountKey,
// SharedAccessKey and aws_secret_access_key; w2 is the word before w.
func classifyKeyWord(w, w2, key string) keyClass {
	switch {
	case eq(w, "account"):
		return clsAzureStorage
	case eq(w, "private"):
		return clsPrivateKey
	case eq(w, "sharedaccess"), eq(w, "access") && eq(w2, "shared"):
		return clsConnSecret
	case eq(w, "shared"):
		return clsAzureStorage
	case eq(w, "secretaccess"), eq(w, "access") && eq(w2, "secret"):
		return clsAWSSecret
	case eq(w, "secret"):
		if containsFold(key, "aws") {
			return clsAWSSecret
		}
		return clsGeneric
	case eq(w, "api"), eq(w, "access"), eq(w, "client"), eq(w, "master"), eq(w, "signing"),
		eq(w, "encryption"), eq(w, "subscription"), eq(w, "storage"), eq(w, "primary"),
		eq(w, "secondary"), eq(w, "app"), eq(w, "auth"), eq(w, "license"):
		return clsGeneric
	}
	return clsNone
}

// keyValue finds the value after a secret-like name at the separator
// s[i] ('=' or ':'), as in password=..., "api_key": "...", token: ...,
// $password := "...", :password => "...".
func (sc *scanner) keyValue(i int) {
	s := sc.s
	if i < sc.kvEnd {
		return
	}
	sep := s[i]
	vstart, keyEnd := i+1, i
	if sep == '=' {
		if i+1 < len(s) && s[i+1] == '=' {
			return
		}
		if i+1 < len(s) && s[i+1] == '>' {
			vstart = i + 2
		}
		if i > 0 {
			switch s[i-1] {
			case ':':
				keyEnd = i - 1
			case '=', '!', '<', '>', '+', '-', '*', '/', '|', '&', '^', '%', '?':
				return
			}
		}
	} else if (i+1 < len(s) && (s[i+1] == ':' || s[i+1] == '=')) || (i > 0 && s[i-1] == ':') {
		return
	}

	// The name: optional spaces, an optional closing quote (maybe escaped),
	// then name characters.
	k := keyEnd
	for k > 0 && keyEnd-k < 8 && (s[k-1] == ' ' || s[k-1] == '\t') {
		k--
	}
	spaced := k < keyEnd
	quotedKey := false
	if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
		quotedKey = true
		k--
		if k > 0 && s[k-1] == '\\' {
			k--
		}
	}
	ke := k
	for k > 0 && ke-k <= maxKeyLen && is(s[k-1], clKey) {
		k--
	}
	if k == ke || ke-k > maxKeyLen {
		return
	}
	cls := classifyKey(s[k:ke])
	if cls == clsNone || cls == clsConnString {
		return
	}
	if sep == ':' && !quotedKey {
		// YAML and HTTP headers put a space after the colon; without one
		// this is more likely a URN, ARN, time or ternary.
		if vstart >= len(s) || (s[vstart] != ' ' && s[vstart] != '\t') || (k > 0 && s[k-1] == ':') {
			return
		}
	}
	if cls == clsSASSig && k > 0 && strings.IndexByte("?&; \t\n\"'", s[k-1]) < 0 {
		return
	}

	vs, ve, quoted, ok := valueAt(s, vstart)
	sc.kvEnd = max(sc.kvEnd, ve, vstart)
	if !ok {
		return
	}
	if cls == clsAuth {
		if vs, ve, ok = skipScheme(s, vs, ve, quoted); !ok {
			return
		}
	}
	if !quoted {
		spaced = spaced || sep == ':'
		if proseFollows(s, ve) || codeLike(s[vs:ve], spaced) {
			return
		}
	}
	if acceptValue(cls, s[vs:ve], quoted) {
		sc.add(vs, ve, cls.kind(), true)
	}
}

// valueAt reads the value that starts at or after j: a quoted string
// (with ", ' or `, possibly backslash-escaped as in JSON inside text) or an
// unquoted run that ends at white space or punctuation. When there is no
// usable value, ve reports how far the next separator may safely be
// skipped: to the end of an unquoted run, or just past an unclosed quote
// (the closing quote of the same kind ends the next value that starts with
// one, so those scans stay short).
func valueAt(s string, j int) (vs, ve int, quoted, ok bool) {
	for n := 0; j < len(s) && n < 8 && (s[j] == ' ' || s[j] == '\t'); n++ {
		j++
	}
	if j >= len(s) {
		return 0, j, false, false
	}
	const maxValue = 4096
	var q byte
	esc := false
	switch c := s[j]; {
	case c == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\''):
		q, esc, j = s[j+1], true, j+2
	case c == '"' || c == '\'' || c == '`':
		q, j = c, j+1
	}
	if q != 0 {
		e := j
		for ; e < len(s) && e-j < maxValue; e++ {
			c := s[e]
			switch {
			case c == '\n':
				return 0, j, false, false
			case esc && c == '\\' && e+1 < len(s) && s[e+1] == q:
				return j, e, true, true
			case !esc && c == q:
				return j, e, true, true
			case !esc && c == '\\':
				e++
			}
		}
		return 0, j, false, false
	}
	e := j
	for e < len(s) && e-j < maxValue && !valueEnd[s[e]] {
		e++
	}
	if e == j || (e < len(s) && (s[e] == '(' || s[e] == '[')) {
		return 0, e, false, false
	}
	return j, e, false, true
}

// valueEnd marks the bytes that end an unquoted value.
var valueEnd = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n\"'`,;&<>()[]{}") {
		t[c] = true
	}
	return t
}()

// skipScheme moves past an authentication scheme ("Bearer", "Basic",
// "token"...) at the start of an Authorization value.
func skipScheme(s string, vs, ve int, quoted bool) (int, int, bool) {
	v := s[vs:ve]
	for _, scheme := range []string{"bearer", "basic", "token", "bot", "digest", "apikey", "sso-key"} {
		if !hasPrefixFold(v, scheme) {
			continue
		}
		if quoted {
			rest := vs + len(scheme)
			if rest < ve && s[rest] == ' ' {
				for rest < ve && s[rest] == ' ' {
					rest++
				}
				return rest, ve, rest < ve
			}
		} else if len(v) == len(scheme) && ve < len(s) && s[ve] == ' ' {
			nvs, nve, q, ok := valueAt(s, ve)
			return nvs, nve, ok && !q
		}
	}
	return vs, ve, true
}

func hasPrefixFold(a, b string) bool { return len(a) >= len(b) && strings.EqualFold(a[:len(b)], b) }

// proseFollows reports whether an unquoted value is followed on its line by
// another word, as in "Password: must be at least 8 characters".
func proseFollows(s string, e int) bool {
	return e+1 < len(s) && s[e] == ' ' && (isAlnum(s[e+1]))
}

// codeLike reports whether an unquoted value reads as a program reference
// rather than a literal: a dotted path (process.env.X, self.password), or,
// after "x = " or "x: ", a bare identifier without digits (user_input).
func codeLike(v string, spaced bool) bool {
	ident, dots, digits := true, 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.':
			if i == 0 || i == len(v)-1 || v[i-1] == '.' {
				ident = false
			}
			dots++
		case isDigit(c):
			digits = true
		case isWord(c) || c == '$':
		default:
			ident = false
		}
	}
	if !ident || isDigit(v[0]) {
		return false
	}
	if dots > 0 {
		return true
	}
	return spaced && !digits
}

// acceptValue reports whether v, found next to a name of class c, is a
// real secret rather than a placeholder, a type name or ordinary text.
func acceptValue(c keyClass, v string, quoted bool) bool {
	if isPlaceholder(v) {
		return false
	}
	switch c {
	case clsPassword:
		if len(v) < 3 {
			return false
		}
		for i := 0; i < len(v); i++ {
			if isSpace(v[i]) {
				return false
			}
		}
		return true
	case clsAWSSecret, clsAzureStorage, clsConnSecret:
		if len(v) >= 20 && base64ish(v) && mixes(v) >= 2 {
			return true
		}
	case clsSASSig:
		if len(v) < 20 {
			return false
		}
		for i := 0; i < len(v); i++ {
			if !is(v[i], clB64) && v[i] != '%' && v[i] != '=' {
				return false
			}
		}
		return true
	}
	return highEntropy(v)
}

// base64ish reports whether v uses only base64 (standard or URL) characters.
func base64ish(v string) bool {
	for i := 0; i < len(v); i++ {
		if !is(v[i], clB64|clB64URL) && v[i] != '=' {
			return false
		}
	}
	return true
}

// placeholderWords are values that stand for a secret without being one.
var placeholderWords = map[string]bool{
	"null": true, "nil": true, "none": true, "undefined": true, "true": true, "false": true,
	"string": true, "str": true, "required": true, "optional": true, "redacted": true,
	"hidden": true, "masked": true, "secret": true, "password": true, "passwd": true,
	"pwd": true, "pass": true, "token": true, "value": true, "empty": true, "dummy": true,
	"sample": true, "bearer": true, "basic": true, "text": true,
	"boolean": true, "number": true, "integer": true, "object": true, "any": true,
}

// isPlaceholder reports whether a value is a stand-in: empty, masked
// ("****"), a template or variable ("<password>", "${DB_PASS}", "%s",
// "{{token}}"), an earlier marker, or a word such as "null" or "string".
func isPlaceholder(v string) bool {
	if v == "" {
		return true
	}
	switch v[0] {
	case '<', '{', '[':
		return true
	case '$':
		return len(v) == 1 || v[1] == '{' || v[1] == '(' || identifier(v[1:])
	case '%':
		if v == "%s" || strings.HasPrefix(v, "%(") || (len(v) > 2 && v[len(v)-1] == '%') {
			return true
		}
	}
	if strings.Trim(v, "*xX•.#_-?0 ") == "" {
		return true
	}
	if len(v) <= 16 {
		var buf [16]byte
		lv := buf[:len(v)]
		for i := 0; i < len(v); i++ {
			c := v[i]
			if isUpper(c) {
				c += 'a' - 'A'
			}
			lv[i] = c
		}
		if placeholderWords[string(lv)] {
			return true
		}
	}
	return hasPrefixFold(v, "your") || containsFold(v, "example") || containsFold(v, "placeholder") ||
		containsFold(v, "redacted") || strings.Contains(v, "xxxx") || strings.Contains(v, "XXXX") ||
		strings.Contains(v, "****") || strings.Contains(v, "...") || strings.Contains(v, "…")
}

// identifier reports whether v is a bare environment or shell variable name.
func identifier(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isWord(v[i]) && !(v[i] == ':' && i > 0) {
			return false
		}
	}
	return true
}

// mixes counts the character classes in v: lower case, upper case, digits
// and anything else.
func mixes(v string) int {
	var lo, up, di, ot int
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case isDigit(c):
			di = 1
		case isUpper(c):
			up = 1
		case c >= 'a' && c <= 'z':
			lo = 1
		default:
			ot = 1
		}
	}
	return lo + up + di + ot
}

// highEntropy reports whether v looks like a random credential: at least 12
// printable non-space characters mixing character classes, with enough
// Shannon entropy per character, and not a URL.
func highEntropy(v string) bool {
	if len(v) < 12 || len(v) > 8192 {
		return false
	}
	digits := false
	var counts [256]int
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c == 0x7f {
			return false
		}
		if isDigit(c) {
			digits = true
		}
		counts[c]++
	}
	if mixes(v) < 2 || strings.Contains(v, "://") {
		return false
	}
	e := 0.0
	n := float64(len(v))
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			e -= p * math.Log2(p)
		}
	}
	if !digits {
		return len(v) >= 20 && e >= 3.5
	}
	return e >= 3.0
}
