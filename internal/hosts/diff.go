package hosts

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/countersign/countersign/internal/redact"
)

// maskText stands in for a secret in text shown to the person.
const maskText = "********"

var (
	bearerValue = regexp.MustCompile(`(?i)(bearer\s+)([^\s"\\]+)`)
	secretField = regexp.MustCompile(`(?i)("[^"]*(?:token|secret|password|passwd|api[-_]?key|authorization|credential|private[-_]?key)[^"]*"\s*:\s*")((?:[^"\\]|\\.)*)(")`)
)

// mask hides secrets in a line shown to the person: Countersign's tokens
// wherever they appear, bearer credentials, the values of members whose
// names say they hold a secret (unless they are ${...} references), and
// whatever the redaction detectors recognise.
func (c *Config) mask(line string) string {
	for _, s := range c.secrets {
		line = strings.ReplaceAll(line, s, maskText)
	}
	line = bearerValue.ReplaceAllString(line, "${1}"+maskText)
	line = secretField.ReplaceAllStringFunc(line, func(m string) string {
		sub := secretField.FindStringSubmatch(m)
		if strings.HasPrefix(sub[2], "${") || strings.HasSuffix(sub[2], maskText) {
			return m
		}
		return sub[1] + maskText + sub[3]
	})
	// Anything else that looks like a credential, such as a personal
	// access token passed in another entry's args.
	line, _ = redact.Redact(line)
	return line
}

// Diff is a unified diff of the file before and after the edits so far, with
// every secret masked, for the settings window to show. It is empty when
// nothing changed.
func (c *Config) Diff() string {
	before, _ := bytes.CutPrefix(c.orig, utf8BOM)
	from := c.path
	if !c.exists {
		from = "/dev/null"
	}
	return unifiedDiff(from, c.path, before, c.cur, 3, c.mask)
}

// op is one line of an edit script.
type op struct {
	kind byte // ' ', '-' or '+'
	line string
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// maxDiffCells bounds the LCS table; beyond it the changed middle is shown
// as one replacement.
const maxDiffCells = 1 << 20

// editScript returns a line edit script from a to b: the common prefix and
// suffix are kept, the middle is diffed by longest common subsequence.
func editScript(a, b []string) []op {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	var ops []op
	for _, l := range a[:p] {
		ops = append(ops, op{' ', l})
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	n, m := len(ma), len(mb)
	if (n+1)*(m+1) > maxDiffCells {
		for _, l := range ma {
			ops = append(ops, op{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, op{'+', l})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int, n+1)
		for i := range lcs {
			lcs[i] = make([]int, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, op{' ', ma[i]})
				i, j = i+1, j+1
			case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
				ops = append(ops, op{'-', ma[i]})
				i++
			default:
				ops = append(ops, op{'+', mb[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-s:] {
		ops = append(ops, op{' ', l})
	}
	return ops
}

// unifiedDiff formats the differences between a and b with ctx lines of
// context, passing every line through show.
func unifiedDiff(fromName, toName string, a, b []byte, ctx int, show func(string) string) string {
	if bytes.Equal(a, b) {
		return ""
	}
	ops := editScript(splitLines(a), splitLines(b))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	changed := false
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		changed = true
		// A hunk runs from ctx lines before the first change to ctx lines
		// after the last change that is within 2*ctx of the previous one.
		start := max(0, i-ctx)
		end := i
		for k := i; k < len(ops); k++ {
			if ops[k].kind != ' ' {
				end = k
			} else if k-end > 2*ctx {
				break
			}
		}
		stop := min(len(ops), end+ctx+1)
		aLine, bLine := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				aLine++
			}
			if o.kind != '-' {
				bLine++
			}
		}
		var aN, bN int
		for _, o := range ops[start:stop] {
			if o.kind != '+' {
				aN++
			}
			if o.kind != '-' {
				bN++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aLine, aN), hunkRange(bLine, bN))
		for _, o := range ops[start:stop] {
			out.WriteString(string(o.kind) + show(o.line) + "\n")
		}
		i = stop
	}
	if !changed {
		// Only line endings or a final newline differ.
		out.WriteString("@@ line endings or the final newline changed @@\n")
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start-1)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
