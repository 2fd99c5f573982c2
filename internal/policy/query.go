package policy

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// searchScope is what a GitHub search query is limited to.
type searchScope struct {
	repos  []string // owner/name from repo: qualifiers
	owners []string // owners from org: and user: qualifiers
	// exact is false when the query could reach further than the
	// qualifiers say: OR or NOT, a negated scope qualifier, a qualifier
	// that could not be read, or an unbalanced quote.
	exact bool
}

// scopeMention finds every place GitHub, or github-mcp-server's own
// hasFilter, could read a scope qualifier: the name after the start or a
// non-word character. Comparing the count with the qualifiers parsed
// catches any the tokenizer did not see (inside quotes, after punctuation).
var scopeMention = regexp.MustCompile(`(?i)(?:^|\W)(?:repo|org|user):`)

// serverRepoFilter is github-mcp-server's hasRepoFilter: when it matches,
// search_issues and search_pull_requests do not add repo:owner/repo.
var serverRepoFilter = regexp.MustCompile(`(?:^|\s|\W)repo:\S+`)

// parseGitHubSearch reads the scope of a GitHub search query. Qualifier
// names are matched case-insensitively. GitHub documents the operators OR
// and NOT in upper case, with parentheses for grouping (code search and
// issue search), and - before a qualifier; it does not say that other
// spellings are plain words, so OR and NOT in any case, also touching a
// parenthesis, count as operators. A backslash (code search escapes quotes
// with it, other searches may not) and white space other than ASCII make
// the query's structure uncertain, so they make it inexact too.
func parseGitHubSearch(q string) searchScope {
	sc := searchScope{exact: true}
	found := 0
	tokens, ok := splitSearch(q)
	if !ok || strings.ContainsRune(q, '\\') || hasOddSpace(q) {
		sc.exact = false
	}
	for _, t := range tokens {
		if t.quoted {
			continue
		}
		w := t.text
		if hasSearchOperator(w) {
			sc.exact = false
			continue
		}
		w = strings.TrimLeft(w, "(")
		w = strings.TrimRight(w, ")")
		neg := strings.HasPrefix(w, "-")
		w = strings.TrimPrefix(w, "-")
		name, val, has := strings.Cut(w, ":")
		if !has {
			continue
		}
		switch strings.ToLower(name) {
		case "repo", "org", "user":
		default:
			continue
		}
		found++
		if neg {
			sc.exact = false
			continue
		}
		val = strings.Trim(val, `"`)
		switch strings.ToLower(name) {
		case "repo":
			owner, repo, ok := strings.Cut(val, "/")
			if !ok || !githubOwner.MatchString(owner) || !githubRepo.MatchString(repo) {
				sc.exact = false
				continue
			}
			sc.repos = append(sc.repos, val)
		default:
			if !githubOwner.MatchString(val) {
				sc.exact = false
				continue
			}
			sc.owners = append(sc.owners, val)
		}
	}
	if len(scopeMention.FindAllStringIndex(q, -1)) != found {
		sc.exact = false
	}
	return sc
}

// hasSearchOperator reports whether an unquoted search word is, or holds
// between parentheses, OR or NOT in any case.
func hasSearchOperator(w string) bool {
	for _, part := range strings.FieldsFunc(w, func(r rune) bool { return r == '(' || r == ')' }) {
		if strings.EqualFold(part, "OR") || strings.EqualFold(part, "NOT") {
			return true
		}
	}
	return false
}

// hasOddSpace reports white space, control or format characters other than
// ASCII white space: a search engine may split words at them where
// splitSearch does not.
func hasOddSpace(q string) bool {
	for _, r := range q {
		switch r {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			continue
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

var (
	githubOwner = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	githubRepo  = regexp.MustCompile(`^[A-Za-z0-9._-]{0,99}[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)
)

type searchToken struct {
	text   string
	quoted bool
}

// splitSearch splits a query at white space, keeping "quoted phrases" as
// single tokens. It reports false for an unbalanced quote.
func splitSearch(q string) ([]searchToken, bool) {
	var out []searchToken
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '"':
			j := strings.IndexByte(q[i+1:], '"')
			if j < 0 {
				return append(out, searchToken{text: q[i+1:], quoted: true}), false
			}
			out = append(out, searchToken{text: q[i+1 : i+1+j], quoted: true})
			i += j + 2
		default:
			j := i
			for j < len(q) && !strings.ContainsRune(" \t\n\r\f\v", rune(q[j])) {
				if q[j] == '"' {
					// A quote inside a word (repo:"a/b"): take it to the
					// closing quote as part of the word.
					k := strings.IndexByte(q[j+1:], '"')
					if k < 0 {
						return append(out, searchToken{text: q[i:]}), false
					}
					j += k + 2
					continue
				}
				j++
			}
			out = append(out, searchToken{text: q[i:j]})
			i = j
		}
	}
	return out, true
}
