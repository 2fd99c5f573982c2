package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"
)

// MaxArgumentBytes bounds the arguments (and edited arguments) an event
// keeps. Larger ones are stored as an [OmittedArguments] object: their
// size, SHA-256 hash and first ArgumentPrefixBytes, so the log does not
// grow with whatever an AI app sends, yet still identifies what was sent.
const MaxArgumentBytes = 64 << 10

// ArgumentPrefixBytes is how much of omitted arguments is kept.
const ArgumentPrefixBytes = 4 << 10

// omittedNote marks an omitted-arguments object; it says in words what the
// object is, for anyone reading an export.
const omittedNote = "arguments too large to keep: stored as their size, SHA-256 hash and beginning"

// OmittedArguments is what the log stores in place of arguments larger than
// MaxArgumentBytes.
type OmittedArguments struct {
	Note   string `json:"countersign_omitted"` // says what this object is
	Bytes  int    `json:"bytes"`               // size of the compact JSON arguments
	SHA256 string `json:"sha256"`              // hex SHA-256 of the compact JSON arguments
	Prefix string `json:"prefix"`              // their first ArgumentPrefixBytes or fewer, cut at a character boundary
}

// boundArguments returns b, compact valid JSON, unchanged when it is small
// enough, or else the OmittedArguments object that stands for it.
func boundArguments(b json.RawMessage) json.RawMessage {
	if len(b) <= MaxArgumentBytes {
		return b
	}
	sum := sha256.Sum256(b)
	n := ArgumentPrefixBytes
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	out, err := json.Marshal(OmittedArguments{Note: omittedNote, Bytes: len(b), SHA256: hex.EncodeToString(sum[:]), Prefix: string(b[:n])})
	if err != nil { // a struct of strings and an int always marshals
		panic("audit: encoding omitted arguments: " + err.Error())
	}
	return out
}

// Omitted reports whether stored arguments are an OmittedArguments object
// standing for arguments too large to keep, and returns it.
func Omitted(stored json.RawMessage) (OmittedArguments, bool) {
	if len(stored) == 0 || stored[0] != '{' {
		return OmittedArguments{}, false
	}
	var o OmittedArguments
	if json.Unmarshal(stored, &o) != nil || o.Note != omittedNote || len(o.SHA256) != 2*sha256.Size {
		return OmittedArguments{}, false
	}
	return o, true
}
