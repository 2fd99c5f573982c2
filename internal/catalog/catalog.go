// Package catalog is the embedded list of vendor MCP servers Countersign may
// connect to. Each entry says how to reach the server (endpoint or command,
// transport, headers), how to sign in, which parameters the person fills in
// and how they are validated, and — as data, not code — how to find the
// repository, project or space each tool call touches, which the policy
// package uses to enforce allowlists.
//
// The data lives in catalog.json, embedded at build time. Entries are decoded
// afresh on every [All] and [Lookup], so callers may keep or change what they
// get without affecting anyone else.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

//go:embed catalog.json
var catalogJSON []byte

// Transport is how Countersign talks to an upstream server.
type Transport string

// Transports a catalog entry can use.
const (
	TransportStreamableHTTP Transport = "streamable-http"
	TransportStdio          Transport = "stdio"
)

// AuthKind is how Countersign signs in to an upstream server.
type AuthKind string

// Ways of signing in.
const (
	// AuthOAuthPreregistered is OAuth with a client ID registered in advance
	// (supplied by admin policy); the server offers no dynamic registration.
	AuthOAuthPreregistered AuthKind = "oauth-preregistered"
	// AuthOAuthDynamic is OAuth 2.1 with dynamic client registration.
	AuthOAuthDynamic AuthKind = "oauth-dynamic"
	// AuthOAuthEntra is Microsoft Entra ID OAuth with a client registered in
	// the organisation's tenant (client ID and tenant from admin policy).
	AuthOAuthEntra AuthKind = "oauth-entra"
	// AuthBearerToken is a token the person pastes once, kept in the keychain.
	AuthBearerToken AuthKind = "bearer-token"
	// AuthSigV4 is AWS SigV4 request signing with short-lived role
	// credentials from IAM Identity Center (package awsauth).
	AuthSigV4 AuthKind = "sigv4"
	// AuthNone means Countersign holds no credential: a local server signs
	// in by itself.
	AuthNone AuthKind = "none"
)

// Auth describes how to sign in to a server.
type Auth struct {
	Kind AuthKind `json:"kind"`
	// Scopes are the least-privilege OAuth scopes to request, if the vendor
	// leaves the choice to the client.
	Scopes []string `json:"scopes,omitempty"`
	// Note explains the choice to a reader of the settings window.
	Note string `json:"note,omitempty"`
	// OfflineAccess asks for the offline_access scope whatever the
	// authorization server lists, for identity providers (Microsoft Entra
	// ID) that issue a refresh token only when it is asked for.
	OfflineAccess bool `json:"offlineAccess,omitempty"`
}

// Entry is one approved kind of vendor server.
type Entry struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Vendor      string `json:"vendor"`
	Description string `json:"description"`
	// Supported is false for servers listed so the person knows they exist
	// but that Countersign cannot connect to yet; Unsupported says why.
	Supported   bool      `json:"supported"`
	Unsupported string    `json:"unsupported,omitempty"`
	Transport   Transport `json:"transport"`
	// Endpoints are tried in order; the first whose When matches the
	// parameters gives the URL template. Streamable HTTP only.
	Endpoints []EndpointRule `json:"endpoints,omitempty"`
	// HeaderRules are the headers sent on every request to the server.
	HeaderRules []HeaderRule `json:"headers,omitempty"`
	// Command and Args start a stdio server.
	Command []string  `json:"command,omitempty"`
	Args    []ArgRule `json:"args,omitempty"`
	Auth    Auth      `json:"auth"`
	Params  []Param   `json:"params,omitempty"`
	Docs    []string  `json:"docs,omitempty"`
	// Direct says how to recognise the person's own connections to this
	// server in AI apps' configuration files, which bypass review.
	Direct Direct `json:"direct"`
	// Targets says how to find what each tool call touches; nil means the
	// server has no target rules and every call is "target unknown".
	Targets *Rules `json:"targets,omitempty"`
	// ReadOnlyHintWhen, when its parameters match, hides every tool the
	// server does not mark readOnlyHint: true and refuses calls to them,
	// as AWS's own mcp-proxy-for-aws does in its read-only mode.
	ReadOnlyHintWhen map[string]string `json:"readOnlyHintWhen,omitempty"`
}

// ReadOnlyByHint reports whether, with these normalized parameters, only
// tools the server marks read-only are offered.
func (e Entry) ReadOnlyByHint(params map[string]string) bool {
	if len(e.ReadOnlyHintWhen) == 0 {
		return false
	}
	for k, v := range e.ReadOnlyHintWhen {
		if params[k] != v {
			return false
		}
	}
	return true
}

// EndpointRule is a URL template with {param} placeholders, used when every
// parameter named in When has the given value.
type EndpointRule struct {
	When map[string]string `json:"when,omitempty"`
	URL  string            `json:"url"`
}

// HeaderRule is a header sent when When matches. A value with a {param}
// placeholder is sent only when that parameter is not empty.
type HeaderRule struct {
	Name  string            `json:"name"`
	Value string            `json:"value"`
	When  map[string]string `json:"when,omitempty"`
}

// ArgRule adds command-line arguments for a stdio server: once when When
// matches, or once per item of the list parameter named by Each, with
// {item} replaced by the item.
type ArgRule struct {
	When map[string]string `json:"when,omitempty"`
	Each string            `json:"each,omitempty"`
	Args []string          `json:"args"`
}

type file struct {
	Kinds   []KindInfo        `json:"kinds"`
	Servers []json.RawMessage `json:"servers"`
}

var (
	kinds   = map[Kind]KindInfo{}
	servers []json.RawMessage
	ids     []string
)

func init() {
	if err := load(catalogJSON); err != nil {
		panic("catalog: embedded catalog.json is invalid: " + err.Error())
	}
}

func load(b []byte) error {
	var f file
	if err := strictDecode(b, &f); err != nil {
		return err
	}
	for i := range f.Kinds {
		k := &f.Kinds[i]
		if err := k.compile(); err != nil {
			return fmt.Errorf("kinds[%d] (%s): %w", i, k.Kind, err)
		}
		if _, dup := kinds[k.Kind]; dup {
			return fmt.Errorf("kinds[%d]: %s is listed twice", i, k.Kind)
		}
		kinds[k.Kind] = *k
	}
	seen := map[string]bool{}
	for i, raw := range f.Servers {
		e, err := decodeEntry(raw)
		if err != nil {
			return fmt.Errorf("servers[%d]: %w", i, err)
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("servers[%d] (%s): %w", i, e.ID, err)
		}
		if seen[e.ID] {
			return fmt.Errorf("servers[%d]: id %q is used twice", i, e.ID)
		}
		seen[e.ID] = true
		servers = append(servers, raw)
		ids = append(ids, e.ID)
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the top-level value")
	}
	return nil
}

func decodeEntry(raw []byte) (Entry, error) {
	var e Entry
	if err := strictDecode(raw, &e); err != nil {
		return Entry{}, err
	}
	for i := range e.Params {
		if err := e.Params[i].compile(); err != nil {
			return Entry{}, fmt.Errorf("params[%d] (%s): %w", i, e.Params[i].Name, err)
		}
	}
	return e, nil
}

// All returns every catalog entry, in catalog order.
func All() []Entry {
	out := make([]Entry, 0, len(servers))
	for _, raw := range servers {
		e, err := decodeEntry(raw)
		if err != nil {
			panic("catalog: " + err.Error()) // validated in init
		}
		out = append(out, e)
	}
	return out
}

// Lookup returns the entry with the given id.
func Lookup(id string) (Entry, bool) {
	for i, x := range ids {
		if x == id {
			e, err := decodeEntry(servers[i])
			if err != nil {
				panic("catalog: " + err.Error()) // validated in init
			}
			return e, true
		}
	}
	return Entry{}, false
}

// IDs returns the ids of all entries, in catalog order.
func IDs() []string { return append([]string(nil), ids...) }

// LookupKind returns what the catalog knows about a target kind.
func LookupKind(k Kind) (KindInfo, bool) {
	info, ok := kinds[k]
	return info, ok
}

// Kinds returns every target kind, sorted by name.
func Kinds() []KindInfo {
	out := make([]KindInfo, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

var entryIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks that the entry is complete and consistent. Every embedded
// entry passes; a test walks [All] to keep it so.
func (e Entry) Validate() error {
	if !entryIDPattern.MatchString(e.ID) {
		return fmt.Errorf("id %q must be lower-case letters, digits and dashes", e.ID)
	}
	if e.Name == "" || e.Vendor == "" || e.Description == "" {
		return errors.New("name, vendor and description are required")
	}
	if !e.Supported && e.Unsupported == "" {
		return errors.New("an unsupported entry must say why (unsupported)")
	}
	if e.Supported && e.Unsupported != "" {
		return errors.New("a supported entry has no unsupported reason")
	}
	if len(e.Docs) == 0 {
		return errors.New("docs: at least one vendor documentation link is required")
	}
	for _, d := range e.Docs {
		if !strings.HasPrefix(d, "https://") {
			return fmt.Errorf("docs: %q is not an https link", d)
		}
	}
	switch e.Auth.Kind {
	case AuthOAuthPreregistered, AuthOAuthDynamic, AuthOAuthEntra, AuthBearerToken, AuthSigV4, AuthNone:
	default:
		return fmt.Errorf("auth.kind %q is unknown", e.Auth.Kind)
	}
	params := map[string]bool{}
	for _, p := range e.Params {
		if params[p.Name] {
			return fmt.Errorf("params: %q is listed twice", p.Name)
		}
		params[p.Name] = true
		if err := p.validateDefinition(); err != nil {
			return fmt.Errorf("params.%s: %w", p.Name, err)
		}
	}
	for _, p := range e.Params {
		if w := p.RequiredWithout; w != "" && (!params[w] || w == p.Name) {
			return fmt.Errorf("params.%s: requiredWithout names no other parameter", p.Name)
		}
	}
	checkWhen := func(field string, when map[string]string) error {
		for name := range when {
			if !params[name] {
				return fmt.Errorf("%s: when names unknown parameter %q", field, name)
			}
		}
		return nil
	}
	switch e.Transport {
	case TransportStreamableHTTP:
		if len(e.Command) > 0 || len(e.Args) > 0 {
			return errors.New("a streamable-http entry has no command")
		}
		if len(e.Endpoints) == 0 || len(e.Endpoints[len(e.Endpoints)-1].When) != 0 {
			return errors.New("endpoints must end with one that has no condition")
		}
		for i, ep := range e.Endpoints {
			field := fmt.Sprintf("endpoints[%d]", i)
			if err := checkWhen(field, ep.When); err != nil {
				return err
			}
			if err := validateURLTemplate(ep.URL, params); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		}
	case TransportStdio:
		if len(e.Endpoints) > 0 || len(e.HeaderRules) > 0 {
			return errors.New("a stdio entry has no endpoints or headers")
		}
		if len(e.Command) == 0 {
			return errors.New("a stdio entry needs a command")
		}
		for i, a := range e.Args {
			field := fmt.Sprintf("args[%d]", i)
			if err := checkWhen(field, a.When); err != nil {
				return err
			}
			if a.Each != "" && !params[a.Each] {
				return fmt.Errorf("%s: each names unknown parameter %q", field, a.Each)
			}
			for _, s := range a.Args {
				for _, ph := range placeholders(s) {
					if ph != "item" || a.Each == "" {
						return fmt.Errorf("%s: placeholder {%s} is not allowed here", field, ph)
					}
				}
			}
		}
	default:
		return fmt.Errorf("transport %q is not streamable-http or stdio", e.Transport)
	}
	for i, h := range e.HeaderRules {
		field := fmt.Sprintf("headers[%d]", i)
		if err := checkWhen(field, h.When); err != nil {
			return err
		}
		if !headerNamePattern.MatchString(h.Name) {
			return fmt.Errorf("%s: %q is not a header name", field, h.Name)
		}
		for _, ph := range placeholders(h.Value) {
			if !params[ph] {
				return fmt.Errorf("%s: placeholder {%s} is not a parameter", field, ph)
			}
		}
	}
	if err := e.Direct.validate(); err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	if err := e.coversSelf(); err != nil {
		return err
	}
	if err := checkWhen("readOnlyHintWhen", e.ReadOnlyHintWhen); err != nil {
		return err
	}
	if e.Targets != nil {
		if err := e.Targets.validate(params); err != nil {
			return fmt.Errorf("targets: %w", err)
		}
	}
	// Every parameter's default must produce a working configuration.
	if _, err := e.Normalize(nil); err != nil && !errors.Is(err, errRequired) {
		return fmt.Errorf("defaults: %w", err)
	}
	return nil
}

var headerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var placeholderPattern = regexp.MustCompile(`\{([^{}]*)\}`)

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholderPattern.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
