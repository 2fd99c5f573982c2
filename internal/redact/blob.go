package redact

import (
	"encoding/base64"
	"strings"
)

// Base64 values are decoded and scanned when they are, as a whole, base64
// (an MCP resource's "blob", an image's "data", a file's content) or a
// data: URL of it, between minBlob and maxBlob characters long. One that
// decodes to a secret is redacted whole: a marker cannot be spliced into
// the encoding. A value nested in another is decoded too, up to
// maxBlobDepth levels.
const (
	minBlob      = 16
	maxBlob      = 8 << 20
	maxBlobDepth = 2
)

// blob redacts the whole of s (after a data: URL's ";base64," if there is
// one) when it decodes to text that holds a secret.
func (sc *scanner) blob() {
	s := sc.s
	start := 0
	if strings.HasPrefix(s, "data:") {
		c := strings.Index(s[:min(len(s), 256)], ";base64,")
		if c < 0 {
			return
		}
		start = c + len(";base64,")
	}
	if n := len(s) - start; n < minBlob || n > maxBlob {
		return
	}
	dec, ok := decodeBase64(s[start:])
	if !ok {
		return
	}
	inner := scanner{s: dec, depth: sc.depth + 1}
	inner.run()
	if hits := resolve(inner.hits); len(hits) > 0 {
		sc.hits = append(sc.hits, hit{start: start, end: len(s), kind: hits[0].kind, blob: true})
	}
}

// decodeBase64 decodes v if it is base64 in the standard or the URL
// alphabet, padded or not, maybe broken into lines, and reports whether
// it was.
func decodeBase64(v string) (string, bool) {
	var std, url, breaks bool
	pad := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\n' || c == '\r':
			breaks = true
			continue
		case c == '=':
			pad++
			continue
		case isAlnum(c):
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		default:
			return "", false
		}
		if pad > 0 {
			return "", false // padding only at the end
		}
	}
	if (std && url) || pad > 2 {
		return "", false
	}
	if breaks {
		v = strings.NewReplacer("\n", "", "\r", "").Replace(v)
	}
	v = v[:len(v)-pad]
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}
