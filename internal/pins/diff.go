package pins

import (
	"strconv"
	"strings"
)

// maxDiffCells bounds the work of a diff; definitions larger than this are
// reported as changed without the line detail.
const maxDiffCells = 4_000_000

// Diff returns a line diff of a → b: unchanged lines start with two
// spaces, removed ones with "- " and added ones with "+ ". Runs of more
// than two unchanged lines are shortened to "  …".
func Diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(x)*len(y) > maxDiffCells {
		return "- (previous definition, " + strconv.Itoa(len(x)) + " lines)\n+ (new definition, " + strconv.Itoa(len(y)) + " lines)\n"
	}
	// lcs[i][j] is the length of the longest common subsequence of x[i:]
	// and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', x[i]})
			i++
		default:
			lines = append(lines, line{'+', y[j]})
			j++
		}
	}
	var out strings.Builder
	for k := 0; k < len(lines); k++ {
		l := lines[k]
		if l.op == ' ' {
			// Keep one line of context on each side of a change.
			end := k
			for end < len(lines) && lines[end].op == ' ' {
				end++
			}
			if end-k > 2 {
				if k > 0 {
					out.WriteString("  " + lines[k].text + "\n")
				}
				out.WriteString("  …\n")
				if end < len(lines) {
					out.WriteString("  " + lines[end-1].text + "\n")
				}
				k = end - 1
				continue
			}
		}
		out.WriteByte(l.op)
		out.WriteString(" " + l.text + "\n")
	}
	return out.String()
}
