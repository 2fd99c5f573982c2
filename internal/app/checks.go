package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/policy"
)

// appChecks are the catalog's and the policy engine's validators, which the
// config package cannot import itself: the settings store, the watcher and
// the admin policy check kinds, parameters, allowlist entries and hidden
// tools with them.
func appChecks() config.Checks {
	return config.Checks{
		Kind:    checkKind,
		Param:   checkParam,
		Params:  checkParams,
		Pattern: checkPattern,
		Tool:    policy.ValidateToolPattern,
	}
}

// PolicyChecks are the validators the app checks the admin policy with,
// for commands that report the policy as the app would apply it.
func PolicyChecks() config.Checks { return appChecks() }

// catalogEntry looks up a catalog server kind, with an error a person can
// read when it is not there.
func catalogEntry(kind string) (catalog.Entry, error) {
	e, ok := catalog.Lookup(kind)
	if !ok {
		return catalog.Entry{}, fmt.Errorf("%q is not a server in Countersign's catalog", kind)
	}
	return e, nil
}

func checkKind(kind string) error {
	_, err := catalogEntry(kind)
	return err
}

// checkParam checks one parameter on its own: that the catalog server has
// it and that the value is acceptable. Whether the parameters are complete
// is checkParams's question.
func checkParam(kind, name, value string) error {
	e, err := catalogEntry(kind)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(e.Params, func(p catalog.Param) bool { return p.Name == name })
	if i < 0 {
		return fmt.Errorf("%s has no parameter %q", e.Name, name)
	}
	one := catalog.Entry{Name: e.Name, Params: []catalog.Param{e.Params[i]}}
	_, err = one.Normalize(map[string]string{name: value})
	return err
}

// checkParams checks a server's complete parameters: every value valid,
// every required one given, and for a remote server an endpoint that can be
// built from them.
func checkParams(kind string, params map[string]string) error {
	e, err := catalogEntry(kind)
	if err != nil {
		return err
	}
	if _, err := e.Normalize(params); err != nil {
		return err
	}
	if e.Transport == catalog.TransportStreamableHTTP {
		if _, err := e.Endpoint(params); err != nil {
			return err
		}
	}
	return nil
}

// noRulesError says that a server has no allowlist because the catalog has
// no rules for finding what its calls touch.
type noRulesError struct {
	server string // the catalog server's name; "" for a custom server
}

func (e noRulesError) Error() string {
	const why = "Countersign can't tell which repositories or projects its calls touch"
	if e.server == "" {
		return "a server outside the catalog has no allowlist: " + why
	}
	return e.server + " has no allowlist: " + why
}

// checkPattern checks an allowlist entry: the target kind must be one the
// catalog server's allowlist holds, and the pattern valid for that kind.
func checkPattern(kind, target, pattern string) error {
	kinds, err := targetKinds(kind)
	if err != nil {
		return err
	}
	if !slices.Contains(kinds, catalog.Kind(target)) {
		e, _ := catalog.Lookup(kind)
		return fmt.Errorf("%s's allowlist holds %s, not %q", e.Name, kindList(kinds), target)
	}
	return policy.ValidatePattern(catalog.Kind(target), pattern)
}

// targetKinds returns the target kinds the allowlist of a server of the
// catalog kind ("" for a custom server) holds, or why it has none.
func targetKinds(kind string) ([]catalog.Kind, error) {
	if kind == "" {
		return nil, noRulesError{}
	}
	e, err := catalogEntry(kind)
	if err != nil {
		return nil, err
	}
	if e.Targets == nil || len(e.Targets.Kinds) == 0 {
		return nil, noRulesError{server: e.Name}
	}
	return e.Targets.Kinds, nil
}

// kindList names target kinds for people: "Jira projects or Confluence
// spaces".
func kindList(kinds []catalog.Kind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
		if info, ok := catalog.LookupKind(k); ok {
			names[i] = info.Plural
		}
	}
	return strings.Join(names, " or ")
}
