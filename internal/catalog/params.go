package catalog

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// ParamKind is the type of a parameter the person fills in.
type ParamKind string

// Parameter types.
const (
	// ParamText is free text checked against Pattern.
	ParamText ParamKind = "text"
	// ParamChoice is one of Choices.
	ParamChoice ParamKind = "choice"
	// ParamBool is "true" or "false".
	ParamBool ParamKind = "bool"
	// ParamList is a comma-separated list whose items are in Choices or
	// match Pattern.
	ParamList ParamKind = "list"
)

// Param is a value the person fills in when adding a server, such as the
// organisation or the region.
type Param struct {
	Name     string    `json:"name"`
	Label    string    `json:"label"`
	Help     string    `json:"help,omitempty"`
	Kind     ParamKind `json:"kind"`
	Required bool      `json:"required,omitempty"`
	// RequiredToAdd is required of a server being added, but not of one
	// saved before the parameter existed: such a server keeps working with
	// the value empty, and the catalog entry says what that means.
	RequiredToAdd bool `json:"requiredToAdd,omitempty"`
	// RequiredWithout names another parameter: this one is required when
	// that one is empty, such as SonarQube Cloud's organisation when no
	// SonarQube Server address is given.
	RequiredWithout string `json:"requiredWithout,omitempty"`
	Default         string `json:"default,omitempty"`
	// Pattern is a regular expression a text value, or each list item, must
	// match in full; Hint describes it in words for error messages.
	Pattern string   `json:"pattern,omitempty"`
	Hint    string   `json:"hint,omitempty"`
	Choices []string `json:"choices,omitempty"`
	// ChoiceLabels are the names people know the choices by, such as
	// "Europe (Ireland)" for eu-west-1. A value may be given by its label.
	ChoiceLabels map[string]string `json:"choiceLabels,omitempty"`
	// AfterSignIn marks a value chosen after signing in (the AWS account
	// and role), not when the server is added.
	AfterSignIn bool `json:"afterSignIn,omitempty"`

	re *regexp.Regexp
}

var paramNamePattern = regexp.MustCompile(`^[a-z][A-Za-z0-9]{0,31}$`)

// maxParamLen bounds every parameter value.
const maxParamLen = 1024

var errRequired = errors.New("is required")

func (p *Param) compile() error {
	if p.Pattern == "" {
		return nil
	}
	re, err := regexp.Compile(`^(?:` + p.Pattern + `)$`)
	if err != nil {
		return fmt.Errorf("pattern: %w", err)
	}
	p.re = re
	return nil
}

func (p Param) validateDefinition() error {
	if !paramNamePattern.MatchString(p.Name) {
		return fmt.Errorf("name %q is not a simple identifier", p.Name)
	}
	if p.Label == "" {
		return errors.New("label is required")
	}
	switch p.Kind {
	case ParamText:
		if p.re == nil || p.Hint == "" {
			return errors.New("a text parameter needs a pattern and a hint")
		}
	case ParamChoice:
		if len(p.Choices) == 0 {
			return errors.New("a choice parameter needs choices")
		}
	case ParamBool:
		if p.Default != "true" && p.Default != "false" {
			return errors.New(`a bool parameter needs a default of "true" or "false"`)
		}
	case ParamList:
		if (len(p.Choices) == 0) == (p.re == nil) {
			return errors.New("a list parameter needs either choices or a pattern")
		}
		if p.re != nil && p.Hint == "" {
			return errors.New("a list parameter with a pattern needs a hint")
		}
	default:
		return fmt.Errorf("kind %q is unknown", p.Kind)
	}
	for _, c := range p.Choices {
		if c == "" || strings.ContainsAny(c, ", ") || !plainASCII(c) {
			return fmt.Errorf("choice %q must be plain text without commas or spaces", c)
		}
	}
	for c, label := range p.ChoiceLabels {
		if !slices.Contains(p.Choices, c) {
			return fmt.Errorf("choiceLabels: %q is not a choice", c)
		}
		if label == "" || !plainASCII(label) {
			return fmt.Errorf("choiceLabels: %q needs a plain label", c)
		}
	}
	if (p.Required || p.RequiredToAdd || p.RequiredWithout != "") && p.Default != "" {
		return errors.New("a required parameter has no default")
	}
	if p.Required && p.RequiredToAdd {
		return errors.New("required and requiredToAdd exclude each other")
	}
	if p.Default != "" {
		if _, err := p.normalize(p.Default); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	return nil
}

// plainASCII reports whether s has only printable ASCII characters, so
// look-alike Unicode letters, invisible characters and control characters
// never reach a URL, header or command line.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// normalize checks one value and returns its canonical form.
func (p Param) normalize(v string) (string, error) {
	if len(v) > maxParamLen {
		return "", fmt.Errorf("is longer than %d characters", maxParamLen)
	}
	if !plainASCII(v) {
		return "", errors.New("must use plain ASCII characters only")
	}
	switch p.Kind {
	case ParamText:
		if !p.re.MatchString(v) {
			return "", fmt.Errorf("%q is not valid: %s", v, p.Hint)
		}
		return v, nil
	case ParamChoice:
		if slices.Contains(p.Choices, v) {
			return v, nil
		}
		for c, label := range p.ChoiceLabels {
			if strings.EqualFold(strings.TrimSpace(v), label) {
				return c, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", v, strings.Join(p.Choices, ", "))
	case ParamBool:
		if v != "true" && v != "false" {
			return "", fmt.Errorf(`%q is not "true" or "false"`, v)
		}
		return v, nil
	case ParamList:
		if strings.TrimSpace(v) == "" {
			return "", nil
		}
		var items []string
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			switch {
			case item == "":
				return "", errors.New("has an empty item")
			case p.re != nil && !p.re.MatchString(item):
				return "", fmt.Errorf("item %q is not valid: %s", item, p.Hint)
			case p.re == nil && !slices.Contains(p.Choices, item):
				return "", fmt.Errorf("item %q is not one of %s", item, strings.Join(p.Choices, ", "))
			case slices.Contains(items, item):
				return "", fmt.Errorf("item %q is listed twice", item)
			}
			items = append(items, item)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("kind %q is unknown", p.Kind)
}

// Normalize validates the person's parameters and returns them complete:
// every parameter of the entry, defaults filled in, lists in canonical form
// ("a,b"). Unknown names, missing required values and invalid values are
// errors naming the parameter's label.
func (e Entry) Normalize(params map[string]string) (map[string]string, error) {
	for name := range params {
		if !slices.ContainsFunc(e.Params, func(p Param) bool { return p.Name == name }) {
			return nil, fmt.Errorf("%s has no parameter %q", e.Name, name)
		}
	}
	out := make(map[string]string, len(e.Params))
	for _, p := range e.Params {
		v, given := params[p.Name]
		if !given || v == "" {
			if p.Required {
				return nil, fmt.Errorf("%s %w", p.Label, errRequired)
			}
			v = p.Default
		}
		if v == "" {
			out[p.Name] = ""
			continue
		}
		n, err := p.normalize(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Label, err)
		}
		out[p.Name] = n
	}
	for _, p := range e.Params {
		if p.RequiredWithout != "" && out[p.Name] == "" && out[p.RequiredWithout] == "" {
			return nil, fmt.Errorf("%s %w", p.Label, errRequired)
		}
	}
	return out, nil
}

// NormalizeNew is Normalize for a server being added: parameters that
// are RequiredToAdd must be given as well.
func (e Entry) NormalizeNew(params map[string]string) (map[string]string, error) {
	out, err := e.Normalize(params)
	if err != nil {
		return nil, err
	}
	for _, p := range e.Params {
		if p.RequiredToAdd && out[p.Name] == "" {
			return nil, fmt.Errorf("%s %w", p.Label, errRequired)
		}
	}
	return out, nil
}

func matches(when map[string]string, params map[string]string) bool {
	for k, v := range when {
		if params[k] != v {
			return false
		}
	}
	return true
}

// Endpoint returns the server URL for the given parameters. Values are
// validated first, so nothing the person types can change the host, add a
// path, a query or a fragment. Entries that are not Supported still have an
// endpoint, for display; connecting to them is the caller's refusal to make.
func (e Entry) Endpoint(params map[string]string) (string, error) {
	if e.Transport != TransportStreamableHTTP {
		return "", fmt.Errorf("%s runs on this computer over %s and has no endpoint", e.Name, e.Transport)
	}
	p, err := e.Normalize(params)
	if err != nil {
		return "", err
	}
	for _, ep := range e.Endpoints {
		if !matches(ep.When, p) {
			continue
		}
		return buildURL(ep.URL, p)
	}
	return "", fmt.Errorf("%s: no endpoint matches the parameters", e.Name)
}

// buildURL fills a URL template and checks that the result has the shape of
// the template: same scheme, no user info, query or fragment, no dot
// segments, and the template's literal text around each placeholder intact.
func buildURL(tmpl string, params map[string]string) (string, error) {
	var missing, unsafe string
	s := placeholderPattern.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[1 : len(m)-1]
		v := params[name]
		if v == "" && missing == "" {
			missing = name
		}
		// Validated values never need escaping; one that does is refused
		// rather than escaped, so no server can decode it into something
		// else.
		if url.PathEscape(v) != v && unsafe == "" {
			unsafe = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("the endpoint needs parameter %q", missing)
	}
	if unsafe != "" {
		return "", fmt.Errorf("parameter %q has characters a URL cannot carry as they are", unsafe)
	}
	if err := checkURL(s); err != nil {
		return "", fmt.Errorf("building the endpoint: %w", err)
	}
	// The literal parts of the template must appear in order.
	rest := s
	for _, lit := range placeholderPattern.Split(tmpl, -1) {
		i := strings.Index(rest, lit)
		if i < 0 {
			return "", errors.New("building the endpoint: a parameter changed the URL's structure")
		}
		rest = rest[i+len(lit):]
	}
	return s, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%q is not an https URL", s)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("%q has user info, a query or a fragment", s)
	case u.Host == "" || strings.ContainsAny(u.Host, "%@ ") || u.Port() != "":
		return fmt.Errorf("%q has an unexpected host", s)
	case u.String() != s:
		return fmt.Errorf("%q does not survive parsing unchanged", s)
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." || strings.Contains(strings.ToLower(seg), "%2e") || strings.Contains(strings.ToLower(seg), "%2f") {
			return fmt.Errorf("%q has a dot or encoded slash segment", s)
		}
	}
	return nil
}

func validateURLTemplate(tmpl string, params map[string]bool) error {
	sample := map[string]string{}
	for _, ph := range placeholders(tmpl) {
		if !params[ph] {
			return fmt.Errorf("placeholder {%s} is not a parameter", ph)
		}
		sample[ph] = "x"
	}
	_, err := buildURL(tmpl, sample)
	return err
}

// Headers returns the headers to send on every request to the server. A
// header whose value names an empty parameter is left out.
func (e Entry) Headers(params map[string]string) (http.Header, error) {
	p, err := e.Normalize(params)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for _, hr := range e.HeaderRules {
		if !matches(hr.When, p) {
			continue
		}
		empty := false
		v := placeholderPattern.ReplaceAllStringFunc(hr.Value, func(m string) string {
			x := p[m[1:len(m)-1]]
			if x == "" {
				empty = true
			}
			return x
		})
		if empty {
			continue
		}
		if !plainASCII(v) {
			return nil, fmt.Errorf("header %s: value has characters a header cannot carry", hr.Name)
		}
		h.Add(hr.Name, v)
	}
	return h, nil
}

// CommandLine returns the program and arguments that start a stdio server.
func (e Entry) CommandLine(params map[string]string) ([]string, error) {
	if e.Transport != TransportStdio {
		return nil, fmt.Errorf("%s is a remote server and has no command line", e.Name)
	}
	p, err := e.Normalize(params)
	if err != nil {
		return nil, err
	}
	argv := append([]string(nil), e.Command...)
	for _, a := range e.Args {
		if !matches(a.When, p) {
			continue
		}
		if a.Each == "" {
			argv = append(argv, a.Args...)
			continue
		}
		if p[a.Each] == "" {
			continue
		}
		for _, item := range strings.Split(p[a.Each], ",") {
			for _, s := range a.Args {
				argv = append(argv, strings.ReplaceAll(s, "{item}", item))
			}
		}
	}
	return argv, nil
}
