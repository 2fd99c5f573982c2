package policy

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads JQL (Jira) and CQL (Confluence) queries far enough to
// tell which projects or spaces they can reach. It follows Jira's own
// grammar (Jql.g in Jira's source: the lexer's STRINGSTOP, ESCAPE and WS
// fragments, and the orClause/andClause/notClause/terminalClause rules);
// CQL shares that query language. Anything outside the subset read here is
// reported as unreadable, so the call goes to the person flagged "target
// unknown" instead of being judged.
//
// A query is bounded (every issue it can match is in a project it names)
// only when its structure proves it:
//
//   - "project = K" and "project in (K1, K2)" are bounded by their keys;
//     so are the issue-key fields (key, issuekey, issue, id) by the
//     projects of their keys;
//   - A AND B is bounded when either side is;
//   - A OR B (also written | and ||) is bounded only when both sides are;
//   - NOT A (also written !) is never bounded: it reaches everything A does
//     not;
//   - every other clause (other fields, !=, not in, was, changed, is,
//     functions such as projectsWhereUserHasRole(), EMPTY) bounds nothing.
//
// Separately, every key a query names where it could add matches (=, in,
// was, was in, outside any NOT) is reported, so a query naming a project
// outside the allowlist is denied even when it is not bounded.

// queryScope is what a JQL or CQL query is limited to.
type queryScope struct {
	// values are the keys the query names in project or space clauses that
	// can add matches; for issue-key fields, the keys themselves.
	values []queryValue
	// bounded is true when every match is provably within values.
	bounded bool
	// why explains an unbounded result.
	why string
}

type queryValue struct {
	text     string
	issueKey bool // from a key/issuekey field: the project is its prefix
}

var (
	jqlFields = map[string]bool{"project": false, "key": true, "issuekey": true, "issue": true, "id": true}
	cqlFields = map[string]bool{"space": false, "space.key": false}
)

type jtokKind int

const (
	jWord    jtokKind = iota // an unquoted string or number
	jString                  // a quoted string
	jKeyword                 // and, or, not, in, is, was, ... (text is lower case)
	jLParen
	jRParen
	jComma
	jLBracket
	jRBracket
	jOp   // = != ~ !~ < > <= >=
	jBang // a lone !
	jAnd  // & or &&
	jOr   // | or ||
)

type jtok struct {
	kind jtokKind
	text string // decoded
}

// jqlKeywords are the words Jira's lexer makes into tokens of their own
// (matched without regard to case); anywhere else they are errors.
var jqlKeywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "is": true, "empty": true, "null": true,
	"was": true, "changed": true, "before": true, "after": true, "from": true, "to": true,
	"on": true, "during": true, "order": true, "by": true, "asc": true, "desc": true,
}

var errQuery = errors.New("the query could not be read")

// jqlStop reports whether c ends an unquoted string (Jira's STRINGSTOP and
// WS, plus the backslash that starts an escape).
func jqlStop(c rune) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '=', '!', '<', '>', '(', ')', '~', ',', '[', ']', '|', '&', '\\':
		return true
	}
	return jqlReserved(c) || jqlControl(c)
}

// jqlReserved are characters Jira reserves: an error outside quotes.
func jqlReserved(c rune) bool {
	return strings.ContainsRune("{}*/%+^$#@?;", c)
}

// jqlControl are Jira's CONTROLCHARS: never part of a string.
func jqlControl(c rune) bool {
	return (c <= 0x1f && c != '\t' && c != '\n' && c != '\r') ||
		(c >= 0x7f && c <= 0x9f) || (c >= 0xfdd0 && c <= 0xfdef) || c == 0xfffe || c == 0xffff
}

// jqlPunct maps the characters that are a token on their own to its kind.
var jqlPunct = map[rune]jtokKind{
	'(': jLParen, ')': jRParen, ',': jComma, '[': jLBracket, ']': jRBracket, '=': jOp, '~': jOp,
}

// lexQuery splits JQL or CQL into tokens. It refuses what Jira refuses
// (reserved and control characters, bad escapes, an unclosed quote) and
// anything that is not valid UTF-8.
func lexQuery(q string) ([]jtok, error) {
	if !utf8.ValidString(q) {
		return nil, errQuery
	}
	var out []jtok
	i := 0
	for i < len(q) {
		c, _ := utf8.DecodeRuneInString(q[i:])
		if kind, ok := jqlPunct[c]; ok {
			out = append(out, jtok{kind, string(c)})
			i++
			continue
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '!':
			if i+1 < len(q) && (q[i+1] == '=' || q[i+1] == '~') {
				out = append(out, jtok{jOp, q[i : i+2]})
				i += 2
			} else {
				out = append(out, jtok{jBang, "!"})
				i++
			}
		case c == '<' || c == '>':
			if i+1 < len(q) && q[i+1] == '=' {
				out = append(out, jtok{jOp, q[i : i+2]})
				i += 2
			} else {
				out = append(out, jtok{jOp, q[i : i+1]})
				i++
			}
		case c == '|' || c == '&':
			kind := jOr
			if c == '&' {
				kind = jAnd
			}
			n := 1
			if i+1 < len(q) && q[i+1] == q[i] {
				n = 2
			}
			out = append(out, jtok{kind, q[i : i+n]})
			i += n
		case c == '"' || c == '\'':
			s, n, err := lexQuoted(q[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, jtok{jString, s})
			i += n
		case jqlReserved(c) || jqlControl(c):
			return nil, errQuery
		default:
			var b strings.Builder
			escaped := false
			j := i
			for j < len(q) {
				r, rs := utf8.DecodeRuneInString(q[j:])
				if r == '\\' {
					e, n, err := lexEscape(q[j:])
					if err != nil {
						return nil, err
					}
					b.WriteRune(e)
					escaped = true
					j += n
					continue
				}
				if jqlStop(r) {
					if jqlReserved(r) || jqlControl(r) {
						return nil, errQuery
					}
					break
				}
				b.WriteRune(r)
				j += rs
			}
			if j == i {
				return nil, errQuery
			}
			text := b.String()
			switch lower := asciiLower(text); {
			case jqlKeywords[lower] && escaped:
				// Jira decodes the escapes and then refuses a reserved word.
				return nil, errQuery
			case jqlKeywords[lower]:
				out = append(out, jtok{jKeyword, lower})
			default:
				out = append(out, jtok{jWord, text})
			}
			i = j
		}
	}
	return out, nil
}

// lexQuoted reads a quoted string at the start of s and returns its decoded
// text and its length in s.
func lexQuoted(s string) (string, int, error) {
	quote := s[0]
	var b strings.Builder
	j := 1
	for j < len(s) {
		r, rs := utf8.DecodeRuneInString(s[j:])
		switch {
		case r == rune(quote):
			return b.String(), j + 1, nil
		case r == '\\':
			e, n, err := lexEscape(s[j:])
			if err != nil {
				return "", 0, err
			}
			b.WriteRune(e)
			j += n
		case jqlControl(r) || r == '\t':
			// Jira's quoted strings exclude CONTROLCHARS, which include tab.
			return "", 0, errQuery
		default:
			b.WriteRune(r)
			j += rs
		}
	}
	return "", 0, errQuery
}

// lexEscape decodes one of Jira's escapes (\t \n \r \" \' \\ \space
// \uXXXX) at the start of s.
func lexEscape(s string) (rune, int, error) {
	if len(s) < 2 {
		return 0, 0, errQuery
	}
	switch s[1] {
	case 't':
		return '\t', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case '"', '\'', '\\', ' ':
		return rune(s[1]), 2, nil
	case 'u':
		if len(s) < 6 {
			return 0, 0, errQuery
		}
		for _, h := range s[2:6] {
			if !strings.ContainsRune("0123456789abcdefABCDEF", h) {
				return 0, 0, errQuery
			}
		}
		v, err := strconv.ParseUint(s[2:6], 16, 32)
		if err != nil {
			return 0, 0, errQuery
		}
		return rune(v), 6, nil
	}
	return 0, 0, errQuery
}

// maxQueryDepth bounds nesting of parentheses and NOT, so a hostile query
// cannot exhaust the stack.
const maxQueryDepth = 64

// bound is what one part of a query is limited to.
type bound struct {
	bounded bool
	why     string // for an unbounded part: the most telling reason
}

const (
	whyOr   = "the query uses OR with a part that is not limited to a %s, so it can reach beyond the %ss it names"
	whyNot  = "the query uses NOT, which reaches everything it does not name"
	whyRead = "the query could not be read, so Countersign cannot tell which %ss it reaches"
)

type queryParser struct {
	toks   []jtok
	pos    int
	fields map[string]bool
	depth  int
	values []queryValue
}

func (p *queryParser) peek() (jtok, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return jtok{}, false
}

func (p *queryParser) is(kind jtokKind, text string) bool {
	t, ok := p.peek()
	return ok && t.kind == kind && (text == "" || t.text == text)
}

func (p *queryParser) expect(kind jtokKind, text string) error {
	if !p.is(kind, text) {
		return errQuery
	}
	p.pos++
	return nil
}

// parseScopeQuery finds what a JQL or CQL query is limited to. fields maps
// a field name (lower case) that limits the query to a project or space to
// whether its values are issue keys.
func parseScopeQuery(q string, fields map[string]bool) queryScope {
	noun := "project"
	if _, ok := fields["space"]; ok {
		noun = "space"
	}
	unread := queryScope{why: strings.ReplaceAll(whyRead, "%s", noun)}
	toks, err := lexQuery(q)
	if err != nil {
		return unread
	}
	p := &queryParser{toks: toks, fields: fields}
	b := bound{why: ""}
	if !p.is(jKeyword, "order") && p.pos < len(p.toks) {
		if b, err = p.or(true); err != nil {
			return unread
		}
	}
	if p.is(jKeyword, "order") {
		if err := p.orderBy(); err != nil {
			return unread
		}
	}
	if p.pos != len(p.toks) {
		return unread
	}
	sc := queryScope{values: p.values, bounded: b.bounded}
	if !b.bounded {
		sc.why = b.why
		if sc.why == "" {
			sc.why = "the query does not limit itself with " + fieldList(noun)
		}
		sc.why = strings.ReplaceAll(sc.why, "%s", noun)
	}
	return sc
}

func fieldList(noun string) string {
	return noun + " = KEY or " + noun + " in (KEY, ...)"
}

// or parses orClause; positive is false under an odd number of NOTs.
func (p *queryParser) or(positive bool) (bound, error) {
	b, err := p.and(positive)
	if err != nil {
		return b, err
	}
	for p.is(jOr, "") || p.is(jKeyword, "or") {
		p.pos++
		next, err := p.and(positive)
		if err != nil {
			return next, err
		}
		if !b.bounded || !next.bounded {
			why := whyOr
			// A NOT inside says more than the OR around it.
			if b.why == whyNot || next.why == whyNot {
				why = whyNot
			}
			b = bound{why: why}
		}
	}
	return b, nil
}

func (p *queryParser) and(positive bool) (bound, error) {
	b, err := p.not(positive)
	if err != nil {
		return b, err
	}
	for p.is(jAnd, "") || p.is(jKeyword, "and") {
		p.pos++
		next, err := p.not(positive)
		if err != nil {
			return next, err
		}
		switch {
		case b.bounded || next.bounded:
			b = bound{bounded: true}
		case b.why == "":
			b = next
		}
	}
	return b, nil
}

func (p *queryParser) not(positive bool) (bound, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxQueryDepth {
		return bound{}, errQuery
	}
	switch {
	case p.is(jBang, "") || p.is(jKeyword, "not"):
		p.pos++
		if _, err := p.not(!positive); err != nil {
			return bound{}, err
		}
		return bound{why: whyNot}, nil
	case p.is(jLParen, ""):
		p.pos++
		b, err := p.or(positive)
		if err != nil {
			return b, err
		}
		return b, p.expect(jRParen, "")
	}
	return p.terminal(positive)
}

// operand kinds.
const (
	opValue = iota // a string or number
	opEmpty        // EMPTY or NULL
	opFunc         // a function call
	opList         // a list of plain values
	opMixed        // a list holding a function, EMPTY or another list
)

type operand struct {
	kind   int
	values []string
}

func (p *queryParser) terminal(positive bool) (bound, error) {
	name, simple, err := p.field()
	if err != nil {
		return bound{}, err
	}
	op, err := p.operator()
	if err != nil {
		return bound{}, err
	}
	var opnd operand
	hasOperand := false
	if p.startsOperand() {
		if opnd, err = p.operand(0); err != nil {
			return bound{}, err
		}
		hasOperand = true
	}
	if (op == "changed") == hasOperand {
		return bound{}, errQuery
	}
	for p.isHistoryWord() {
		p.pos++
		if _, err := p.operand(0); err != nil {
			return bound{}, err
		}
	}
	issueKey, scoped := p.fields[asciiLower(name)]
	if !scoped || !simple {
		return bound{}, nil
	}
	adds := false // the operator matches issues whose field has the values
	switch op {
	case "=", "in", "was", "was in":
		adds = true
	case "!=", "not in", "was not", "was not in":
	default:
		return bound{}, nil
	}
	if adds == positive {
		for _, v := range opnd.values {
			p.values = append(p.values, queryValue{text: v, issueKey: issueKey})
		}
	}
	switch {
	case op == "=" && opnd.kind == opValue, op == "in" && opnd.kind == opList:
		return bound{bounded: true}, nil
	}
	return bound{}, nil
}

// field parses a field name: a string or number, optionally followed by
// [argument] and .property parts (custom fields cf[10010], entity
// properties issue.property[x].y). simple is false when it has such parts.
func (p *queryParser) field() (string, bool, error) {
	t, ok := p.peek()
	if !ok || (t.kind != jWord && t.kind != jString) {
		return "", false, errQuery
	}
	p.pos++
	simple := true
	for p.is(jLBracket, "") {
		simple = false
		p.pos++
		if a, ok := p.peek(); !ok || (a.kind != jWord && a.kind != jString) {
			return "", false, errQuery
		}
		p.pos++
		if err := p.expect(jRBracket, ""); err != nil {
			return "", false, err
		}
		for {
			a, ok := p.peek()
			if !ok || (a.kind != jWord && a.kind != jString) || !strings.HasPrefix(a.text, ".") {
				break
			}
			p.pos++
		}
	}
	return t.text, simple, nil
}

// operator parses a clause operator and returns it in lower case with
// single spaces ("not in", "is not", "was not in").
func (p *queryParser) operator() (string, error) {
	t, ok := p.peek()
	if !ok {
		return "", errQuery
	}
	p.pos++
	if t.kind == jOp {
		return t.text, nil
	}
	if t.kind != jKeyword {
		return "", errQuery
	}
	switch t.text {
	case "in", "changed":
		return t.text, nil
	case "is":
		if p.is(jKeyword, "not") {
			p.pos++
			return "is not", nil
		}
		return "is", nil
	case "not":
		if err := p.expect(jKeyword, "in"); err != nil {
			return "", err
		}
		return "not in", nil
	case "was":
		op := "was"
		if p.is(jKeyword, "not") {
			p.pos++
			op = "was not"
		}
		if p.is(jKeyword, "in") {
			p.pos++
			op += " in"
		}
		return op, nil
	}
	return "", errQuery
}

func (p *queryParser) startsOperand() bool {
	t, ok := p.peek()
	if !ok {
		return false
	}
	return t.kind == jWord || t.kind == jString || t.kind == jLParen ||
		(t.kind == jKeyword && (t.text == "empty" || t.text == "null"))
}

func (p *queryParser) isHistoryWord() bool {
	t, ok := p.peek()
	if !ok || t.kind != jKeyword {
		return false
	}
	switch t.text {
	case "from", "to", "by", "before", "after", "on", "during":
		return true
	}
	return false
}

// operand parses EMPTY, a value, a function call or a list.
func (p *queryParser) operand(depth int) (operand, error) {
	if depth > maxQueryDepth {
		return operand{}, errQuery
	}
	t, ok := p.peek()
	if !ok {
		return operand{}, errQuery
	}
	switch {
	case t.kind == jKeyword && (t.text == "empty" || t.text == "null"):
		p.pos++
		return operand{kind: opEmpty}, nil
	case t.kind == jWord || t.kind == jString:
		p.pos++
		if !p.is(jLParen, "") {
			return operand{kind: opValue, values: []string{t.text}}, nil
		}
		p.pos++
		if !p.is(jRParen, "") {
			for {
				a, ok := p.peek()
				if !ok || (a.kind != jWord && a.kind != jString) {
					return operand{}, errQuery
				}
				p.pos++
				if !p.is(jComma, "") {
					break
				}
				p.pos++
			}
		}
		return operand{kind: opFunc}, p.expect(jRParen, "")
	case t.kind == jLParen:
		p.pos++
		list := operand{kind: opList}
		for {
			item, err := p.operand(depth + 1)
			if err != nil {
				return operand{}, err
			}
			if item.kind != opValue {
				list.kind = opMixed
			}
			list.values = append(list.values, item.values...)
			if !p.is(jComma, "") {
				break
			}
			p.pos++
		}
		return list, p.expect(jRParen, "")
	}
	return operand{}, errQuery
}

// orderBy parses ORDER BY field [ASC|DESC] (, field [ASC|DESC])*.
func (p *queryParser) orderBy() error {
	if err := p.expect(jKeyword, "order"); err != nil {
		return err
	}
	if err := p.expect(jKeyword, "by"); err != nil {
		return err
	}
	for {
		if _, _, err := p.field(); err != nil {
			return err
		}
		if p.is(jKeyword, "asc") || p.is(jKeyword, "desc") {
			p.pos++
		}
		if !p.is(jComma, "") {
			return nil
		}
		p.pos++
	}
}

// asciiLower folds only ASCII letters: a field name that needs Unicode
// folding to read "project" is some other field to Countersign.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
