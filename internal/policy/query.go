package policy

import (
	"errors"
	"regexp"
	"strings"
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
// names are matched case-insensitively; boolean operators are the
// upper-case OR and NOT GitHub documents.
func parseGitHubSearch(q string) searchScope {
	sc := searchScope{exact: true}
	found := 0
	tokens, ok := splitSearch(q)
	if !ok {
		sc.exact = false
	}
	for _, t := range tokens {
		if t.quoted {
			continue
		}
		w := t.text
		if w == "OR" || w == "NOT" {
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

// queryScope is what a JQL or CQL query is limited to.
type queryScope struct {
	// values are the keys named by bounding clauses (project = X,
	// project in (X, Y)); for issue-key fields, the keys themselves.
	values []queryValue
	// bounded is true when at least one bounding clause limits the whole
	// query and nothing (OR, NOT) could widen it again.
	bounded bool
	// why explains an unbounded result.
	why string
}

type queryValue struct {
	text     string
	issueKey bool // from a key/issuekey field: the project is its prefix
}

type qtokKind int

const (
	qWord qtokKind = iota
	qString
	qLParen
	qRParen
	qComma
	qOp  // = != ~ !~ > >= < <=
	qNot // a lone !
)

type qtok struct {
	kind qtokKind
	text string
}

var errQuery = errors.New("the query could not be read")

// lexQuery splits JQL or CQL into tokens.
func lexQuery(q string) ([]qtok, error) {
	var out []qtok
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '(':
			out = append(out, qtok{qLParen, "("})
			i++
		case c == ')':
			out = append(out, qtok{qRParen, ")"})
			i++
		case c == ',':
			out = append(out, qtok{qComma, ","})
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(q) && q[j] != c; j++ {
				if q[j] == '\\' && j+1 < len(q) {
					j++
				}
				b.WriteByte(q[j])
			}
			if j >= len(q) {
				return nil, errQuery
			}
			out = append(out, qtok{qString, b.String()})
			i = j + 1
		case c == '=' || c == '~':
			out = append(out, qtok{qOp, string(c)})
			i++
		case c == '!' || c == '<' || c == '>':
			if i+1 < len(q) && (q[i+1] == '=' || (c == '!' && q[i+1] == '~')) {
				out = append(out, qtok{qOp, q[i : i+2]})
				i += 2
			} else if c == '!' {
				out = append(out, qtok{qNot, "!"})
				i++
			} else {
				out = append(out, qtok{qOp, string(c)})
				i++
			}
		default:
			j := i
			for j < len(q) && !strings.ContainsRune(" \t\n\r\f\v()\"',=~!<>", rune(q[j])) {
				j++
			}
			out = append(out, qtok{qWord, q[i:j]})
			i = j
		}
	}
	return out, nil
}

// parseScopeQuery finds the clauses that limit a JQL or CQL query. fields
// maps a field name (lower case) to whether its values are issue keys.
//
// The analysis is deliberately small. A query that uses OR, or NOT as a
// boolean operator, is unbounded: either could widen it beyond any project
// clause. Without them the query is a conjunction, so any clause
// "field = value" or "field in (values)" at any depth limits all of it.
// Functions (project in projectsLeadByUser()), EMPTY and NULL limit nothing.
func parseScopeQuery(q string, fields map[string]bool) queryScope {
	toks, err := lexQuery(q)
	if err != nil {
		return queryScope{why: "the query could not be read"}
	}
	// Drop ORDER BY and what follows.
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind == qWord && strings.EqualFold(toks[i].text, "order") &&
			toks[i+1].kind == qWord && strings.EqualFold(toks[i+1].text, "by") {
			toks = toks[:i]
			break
		}
	}
	clauseStart := func(i int) bool {
		if i == 0 {
			return true
		}
		p := toks[i-1]
		return p.kind == qLParen || p.kind == qNot ||
			(p.kind == qWord && (strings.EqualFold(p.text, "and") || strings.EqualFold(p.text, "or") || strings.EqualFold(p.text, "not")))
	}
	var sc queryScope
	for i, t := range toks {
		switch {
		case t.kind == qWord && strings.EqualFold(t.text, "or"):
			return queryScope{why: "the query uses OR, which can reach beyond the projects it names"}
		case (t.kind == qWord && strings.EqualFold(t.text, "not") && clauseStart(i)) || t.kind == qNot:
			return queryScope{why: "the query uses NOT, which reaches everything it does not name"}
		}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if (t.kind != qWord && t.kind != qString) || !clauseStart(i) {
			continue
		}
		issueKey, ok := fields[strings.ToLower(t.text)]
		if !ok || i+2 >= len(toks) {
			continue
		}
		op := toks[i+1]
		switch {
		case op.kind == qOp && op.text == "=":
			v := toks[i+2]
			if (v.kind != qWord && v.kind != qString) || reservedValue(v) ||
				(i+3 < len(toks) && toks[i+3].kind == qLParen) {
				continue
			}
			sc.values = append(sc.values, queryValue{text: v.text, issueKey: issueKey})
			sc.bounded = true
		case op.kind == qWord && strings.EqualFold(op.text, "in") && toks[i+2].kind == qLParen:
			var vals []queryValue
			j := i + 3
			good := false
			for j < len(toks) {
				v := toks[j]
				if (v.kind != qWord && v.kind != qString) || reservedValue(v) ||
					(j+1 < len(toks) && toks[j+1].kind == qLParen) {
					break
				}
				vals = append(vals, queryValue{text: v.text, issueKey: issueKey})
				if j+1 < len(toks) && toks[j+1].kind == qRParen {
					good = true
					break
				}
				if j+1 >= len(toks) || toks[j+1].kind != qComma {
					break
				}
				j += 2
			}
			if good {
				sc.values = append(sc.values, vals...)
				sc.bounded = true
			}
		}
	}
	if !sc.bounded {
		sc.why = "the query does not limit itself with " + fieldList(fields)
	}
	return sc
}

func reservedValue(t qtok) bool {
	return t.kind == qWord && (strings.EqualFold(t.text, "empty") || strings.EqualFold(t.text, "null"))
}

func fieldList(fields map[string]bool) string {
	switch {
	case fields["project"]:
		return "project = KEY or project in (KEY, ...)"
	case fields["space"]:
		return "space = KEY or space in (KEY, ...)"
	}
	return "a project or space clause"
}

var (
	jqlFields = map[string]bool{"project": false, "key": true, "issuekey": true, "issue": true}
	cqlFields = map[string]bool{"space": false, "space.key": false}
)
