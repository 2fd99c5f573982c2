package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/redact"
)

// CatalogChoice is one catalog server the person may add, as the settings
// window offers it.
type CatalogChoice struct {
	Kind        string // the catalog id, such as "github"
	Name        string
	Vendor      string
	Description string
	// SignIn says how Countersign signs in to it, in plain words.
	SignIn string
	Params []ParamField
	// Unavailable says why it cannot be added; empty when it can.
	Unavailable string
}

// ParamField is a value the person fills in when adding a server.
type ParamField struct {
	Name, Label, Help string
	Kind              string // "text", "choice", "bool" or "list"
	Choices           []string
	// ChoiceLabels name choices the way people know them, such as
	// "Europe (Ireland)" for eu-west-1.
	ChoiceLabels map[string]string
	Default      string
	Required     bool
	// Hint describes a valid text value, such as "letters, digits and dashes".
	Hint string
	// Locked says why the value is fixed and shows it in Value; empty when
	// the person chooses.
	Locked string
	Value  string
}

// maxNameLen bounds the display name the person gives a server.
const maxNameLen = 60

// Catalog lists the servers Countersign knows, each with what the person
// fills in and, when it cannot be added, why.
func (s *Settings) Catalog(ctx context.Context) ([]CatalogChoice, error) {
	eff := s.current()
	var fixed map[string]config.ServerPolicy
	if eff.Policy != nil {
		fixed = eff.Policy.Servers
	}
	var out []CatalogChoice
	for _, e := range catalog.All() {
		c := CatalogChoice{Kind: e.ID, Name: e.Name, Vendor: e.Vendor, Description: e.Description, SignIn: signInWords(e)}
		if !e.Supported {
			c.Unavailable = sentence(e.Unsupported)
		} else if ok, why := eff.CanAdd(e.ID); !ok {
			c.Unavailable = sentence(why)
		} else if name, added := addedAlready(eff, e); added {
			c.Unavailable = "Already added as " + name + "."
		}
		rules := fixed[e.ID]
		for _, p := range e.Params {
			if _, fixed := rules.Params[p.Name]; p.AfterSignIn && !fixed {
				continue // chosen after signing in, in the server's card
			}
			f := ParamField{Name: p.Name, Label: p.Label, Help: p.Help, Kind: string(p.Kind),
				Choices: slices.Clone(p.Choices), ChoiceLabels: maps.Clone(p.ChoiceLabels), Default: p.Default, Required: p.Required || p.RequiredToAdd, Hint: p.Hint}
			if v, ok := rules.Params[p.Name]; ok {
				f.Locked, f.Value = config.WhyPolicy+".", v
			}
			if p.Name == "write" && rules.ReadOnly {
				f.Locked, f.Value = "Your organisation's policy keeps this server read-only.", "false"
			}
			c.Params = append(c.Params, f)
		}
		out = append(out, c)
	}
	return out, nil
}

// addedAlready reports whether a server of catalog entry e is in the
// settings and a second one could not differ from it: e takes no
// organisation, site or other required value that tells two apart. It
// returns the name it was added as.
func addedAlready(eff *config.Effective, e catalog.Entry) (string, bool) {
	if slices.ContainsFunc(e.Params, func(p catalog.Param) bool { return p.Required || p.RequiredToAdd }) {
		return "", false
	}
	for _, es := range eff.Servers {
		if !es.Server.Custom() && es.Server.Kind == e.ID {
			return displayName(es.Server), true
		}
	}
	return "", false
}

// signInWords says how a catalog server is signed in to.
func signInWords(e catalog.Entry) string {
	switch e.Auth.Kind {
	case catalog.AuthOAuthPreregistered, catalog.AuthOAuthDynamic, catalog.AuthOAuthEntra:
		return "Sign in with your browser"
	case catalog.AuthBearerToken:
		return "Paste an access token from its website (your organisation is told, as it prefers browser sign-in)"
	case catalog.AuthSigV4:
		return "Signs in with your AWS account"
	case catalog.AuthNone:
		return "Runs on this computer and signs in by itself"
	}
	return ""
}

// CheckServerParam says what is wrong with one value typed for a catalog
// server's parameter, or nil. It is fast enough for every keystroke.
func (s *Settings) CheckServerParam(kind, name, value string) error {
	if strings.TrimSpace(value) == "" {
		return nil // whether it is required is AddServer's question
	}
	return checkParam(kind, name, forgiveParam(kind, name, value))
}

// AddServer adds a catalog server with the person's parameters and an
// optional display name, saves it and connects it at once. It returns the
// new server's id. Values the admin policy fixes win over the person's.
func (s *Settings) AddServer(ctx context.Context, kind, name string, params map[string]string) (string, error) {
	entry, err := catalogEntry(kind)
	if err != nil {
		return "", err
	}
	if !entry.Supported {
		return "", unavailable(sentence(entry.Unsupported))
	}
	eff := s.current()
	if ok, why := eff.CanAdd(kind); !ok {
		return "", unavailable(sentence(why))
	}
	name = strings.TrimSpace(name)
	if err := checkDisplayName(name); err != nil {
		return "", err
	}
	given := map[string]string{}
	for k, v := range params {
		if v = forgiveParam(kind, k, v); v != "" {
			given[k] = v
		}
	}
	var rules config.ServerPolicy
	if eff.Policy != nil {
		rules = eff.Policy.Servers[kind]
	}
	maps.Copy(given, rules.Params)
	if rules.ReadOnly && given["write"] == "true" {
		return "", unavailable("Your organisation's policy keeps this server read-only.")
	}
	norm, err := entry.NormalizeNew(given)
	if err != nil {
		return "", err
	}
	if err := checkParams(kind, norm); err != nil {
		return "", err
	}
	write := norm["write"] == "true"
	kept := map[string]string{}
	for k, v := range norm {
		_, fixed := rules.Params[k]
		if k == "write" || fixed || v == "" || v == defaultOf(entry, k) {
			continue
		}
		kept[k] = v
	}
	if len(kept) == 0 {
		kept = nil
	}
	var id string
	if _, err := s.update(func(c *config.Config) error {
		id = freeID(c, kind)
		c.Servers = append(c.Servers, config.Server{ID: id, Name: name, Kind: kind, Params: kept, AllowWrite: write})
		return nil
	}); err != nil {
		return "", err
	}
	shown := name
	if shown == "" {
		shown = entry.Name
	}
	s.record(ctx, audit.Event{
		Kind: audit.KindSettingsChanged, Server: id,
		Reason: "added server " + shown,
		Detail: jsonDetail(map[string]any{"setting": "servers", "added": id, "kind": kind, "params": kept, "allowWrite": write}),
	})
	s.log.Info("server added", "server", id, "kind", kind)
	return id, nil
}

func defaultOf(e catalog.Entry, name string) string {
	for _, p := range e.Params {
		if p.Name == name {
			return p.Default
		}
	}
	return ""
}

// checkDisplayName checks the name the person gives a server; empty means
// the catalog's name.
func checkDisplayName(name string) error {
	if len([]rune(name)) > maxNameLen {
		return fmt.Errorf("the name is longer than %d characters", maxNameLen)
	}
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0 {
		return errors.New("the name holds characters that can't be shown")
	}
	return nil
}

// freeID is an id for a new server of the catalog kind that the settings
// do not use yet: the kind itself, then kind-2, kind-3…
func freeID(c *config.Config, kind string) string {
	taken := func(id string) bool { _, ok := c.Server(id); return ok }
	if !taken(kind) {
		return kind
	}
	for n := 2; ; n++ {
		id := kind + "-" + strconv.Itoa(n)
		if !taken(id) {
			return id
		}
	}
}

// RemoveServer takes a server out of the settings: its calls stop at once,
// and its sign-in (tokens, registration, an entered token) is forgotten.
func (s *Settings) RemoveServer(ctx context.Context, serverID string) error {
	es, err := s.server(serverID)
	if err != nil {
		return err
	}
	name := displayName(es.Server)
	changed, err := s.update(func(c *config.Config) error {
		i := slices.IndexFunc(c.Servers, func(x config.Server) bool { return x.ID == serverID })
		if i < 0 {
			return errUnchanged
		}
		c.Servers = slices.Delete(c.Servers, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	var signOutErr error
	if s.auth != nil {
		if _, serr := s.auth.Status(serverID); serr == nil {
			signOutErr = s.auth.SignOut(ctx, serverID)
		}
	}
	if s.pins != nil {
		if err := s.pins.Forget(serverID); err != nil {
			s.log.Warn("forgetting the removed server's tools", "server", serverID, "err", err)
		}
	}
	if changed {
		ev := audit.Event{
			Kind: audit.KindSettingsChanged, Server: serverID,
			Reason: "removed server " + name,
			Detail: jsonDetail(map[string]any{"setting": "servers", "removed": serverID, "kind": es.Server.Kind}),
		}
		s.record(ctx, ev)
		s.log.Info("server removed", "server", serverID)
	}
	if signOutErr != nil {
		return fmt.Errorf("%s was removed, but its sign-in could not be forgotten: %w", name, signOutErr)
	}
	return nil
}

// SetToken keeps an access token the person pasted for a server that takes
// one (SonarQube Cloud) in the keychain. The token is never written to the
// settings, the logs or the audit log; the audit records that one was set,
// as a policy exception.
func (s *Settings) SetToken(ctx context.Context, serverID, token string) error {
	es, err := s.server(serverID)
	if err != nil {
		return err
	}
	if !s.takesToken(es) {
		return unavailable(displayName(es.Server) + " signs in with the browser, not with a pasted token.")
	}
	if s.problems(serverID) != "" || !es.Connect {
		return unavailable("A token can be entered once the server can be connected: " + lowerFirst(s.status(es).State) + ".")
	}
	token = strings.TrimSpace(token)
	if err := s.auth.CheckBearerToken(ctx, serverID, token); err != nil {
		name := displayName(es.Server)
		if as, serr := s.auth.Status(serverID); serr == nil && as.Name != "" {
			name = as.Name
		}
		detail, _ := redact.Redact(err.Error())
		s.log.Warn("the token was not accepted", "server", serverID, "err", detail)
		return &Problem{Message: auth.Explain(name, err), Detail: detail, err: err}
	}
	if err := s.auth.SetBearerToken(serverID, token); err != nil {
		return err
	}
	s.record(ctx, audit.Event{Kind: audit.KindSignIn, Server: serverID,
		Reason: "access token entered (a policy exception)",
		Detail: jsonDetail(map[string]any{"method": "token", "policyException": true})})
	s.log.Info("token entered", "server", serverID)
	return nil
}

// takesToken reports whether the server signs in with a pasted token.
func (s *Settings) takesToken(es config.EffectiveServer) bool {
	if s.auth == nil || es.Server.Custom() {
		return false
	}
	as, err := s.auth.Status(es.Server.ID)
	return err == nil && as.Kind == auth.KindBearer
}

// Changes delivers a value whenever a server's sign-in state may have
// changed, such as a refresh the server refused; stop ends the delivery.
// Values coalesce: a slow reader misses only intermediate states.
func (s *Settings) Changes() (changes <-chan struct{}, stop func()) {
	if s.auth == nil {
		return make(chan struct{}), func() {}
	}
	return s.auth.Subscribe()
}

// AcceptTool trusts the definition of a tool the person was shown (its
// hash, from the call's warning) in place of the one first seen: later
// calls to it no longer warn that it changed or is new. If the tool changed
// again since, nothing is trusted (pins.ErrChangedAgain). The acceptance
// is audited.
func (s *Settings) AcceptTool(ctx context.Context, serverID, tool, definition string) error {
	if s.pins == nil {
		return unavailable("Tool definitions are not being tracked right now.")
	}
	if err := s.pins.Accept(serverID, tool, definition); err != nil {
		return err
	}
	s.record(ctx, audit.Event{Kind: audit.KindSettingsChanged, Server: serverID, Tool: tool,
		Reason: "trusted the current definition of " + tool,
		Detail: jsonDetail(map[string]any{"setting": "toolPin", "server": serverID, "tool": tool, "definition": definition})})
	s.log.Info("tool definition trusted", "server", serverID, "tool", tool)
	return nil
}
