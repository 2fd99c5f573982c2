package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/catalog"
)

// pattern is a compiled allowlist entry: one glob per segment, in the
// kind's comparison form.
type pattern struct {
	raw  string
	segs []string
}

// ValidatePattern checks an allowlist pattern for the given kind and returns
// an error the settings editor can show as is. A pattern is an exact name
// or a simple glob: "*" matches any run of characters within one segment
// (never across "/"), so DEFRA/ffc-* matches DEFRA/ffc-pay but not
// DEFRA/ffc/pay, and DEFRA/* covers every repository of DEFRA.
func ValidatePattern(kind catalog.Kind, p string) error {
	info, ok := catalog.LookupKind(kind)
	if !ok {
		return fmt.Errorf("%q is not a kind of allowlist entry", kind)
	}
	_, err := compilePattern(info, p)
	return err
}

func compilePattern(info catalog.KindInfo, p string) (pattern, error) {
	switch {
	case p == "":
		return pattern{}, errors.New("the pattern is empty")
	case !utf8.ValidString(p):
		return pattern{}, errors.New("the pattern is not valid text")
	case strings.TrimSpace(p) != p:
		return pattern{}, errors.New("the pattern starts or ends with a space")
	case len(p) > info.MaxLen*info.Segments+info.Segments-1:
		return pattern{}, fmt.Errorf("the pattern is longer than a %s name can be", info.Noun)
	}
	segs := strings.Split(p, "/")
	if len(segs) != info.Segments {
		return pattern{}, fmt.Errorf("%q does not have the shape of a %s: %s", p, info.Noun, info.Hint)
	}
	for i, s := range segs {
		if s == "" {
			return pattern{}, fmt.Errorf("%q has an empty part: %s", p, info.Hint)
		}
		if len(s) > info.MaxLen {
			return pattern{}, fmt.Errorf("%q has a part longer than a %s name can be", p, info.Noun)
		}
		if strings.Contains(s, "**") {
			return pattern{}, fmt.Errorf("%q has ** in it; a single * already matches any characters", p)
		}
		for _, r := range s {
			if r == '*' {
				continue
			}
			if !patternRuneAllowed(info, i, r) {
				return pattern{}, fmt.Errorf("%q has %q, which a %s name cannot contain: %s", p, r, info.Noun, info.Hint)
			}
		}
		segs[i] = info.Fold(s)
	}
	return pattern{raw: p, segs: segs}, nil
}

func patternRuneAllowed(info catalog.KindInfo, seg int, r rune) bool {
	if chars := info.PatternChars[seg]; chars != "" {
		return strings.ContainsRune(chars, r)
	}
	if r == utf8.RuneError || !unicode.IsPrint(r) || r == '/' {
		return false
	}
	return info.PatternForbidden == nil || !strings.ContainsRune(info.PatternForbidden[seg], r)
}

// match reports whether the pattern matches a value already in comparison
// form and with the kind's number of segments.
func (p pattern) match(value []string) bool {
	if len(value) != len(p.segs) {
		return false
	}
	for i, s := range p.segs {
		if !glob(s, value[i]) {
			return false
		}
	}
	return true
}

// coversOwner reports whether the pattern allows every repository of owner:
// its owner part matches and its name part is exactly "*".
func (p pattern) coversOwner(owner string) bool {
	return len(p.segs) == 2 && p.segs[1] == "*" && glob(p.segs[0], owner)
}

// glob matches s against a pattern in which "*" matches any run of bytes,
// including none, and every other byte matches itself. It runs in
// O(len(pat)·len(s)) at worst, without recursion.
func glob(pat, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pat) && pat[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pat) && pat[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			// Let the last star swallow one more byte and retry.
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	return px == len(pat)
}

// toolPattern matches tool names exactly, or as a glob with "*".
type toolPattern string

// ValidateToolPattern checks a hidden-tool entry: an exact tool name or a
// glob such as "delete_*". Tool names are case-sensitive.
func ValidateToolPattern(p string) error {
	switch {
	case p == "":
		return errors.New("the tool name is empty")
	case len(p) > 256:
		return errors.New("the tool name is longer than 256 characters")
	case !utf8.ValidString(p):
		return errors.New("the tool name is not valid text")
	case strings.Contains(p, "**"):
		return fmt.Errorf("%q has ** in it; a single * already matches any characters", p)
	}
	for _, r := range p {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%q has a space or an invisible character", p)
		}
	}
	return nil
}

func (t toolPattern) match(name string) bool { return glob(string(t), name) }
