package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// serverSet is what effective settings make of the servers: endpoints for
// the relay, a policy each for the guard, sign-in settings for auth, and
// why any server is not connected.
type serverSet struct {
	relay    []relay.Server
	policies map[string]*policy.Policy
	auth     map[string]auth.ServerAuth
	problems map[string]string // server id → why it is not connected
}

// buildServers turns effective settings into a serverSet. clientFor gives
// the HTTP client that signs requests to a server (nil: plain client).
func buildServers(eff *config.Effective, clientFor func(id string) *http.Client, log *slog.Logger) serverSet {
	set := serverSet{policies: map[string]*policy.Policy{}, auth: map[string]auth.ServerAuth{}, problems: map[string]string{}}
	if eff.Err != nil {
		for _, es := range eff.Servers {
			set.problems[es.Server.ID] = "Countersign can't connect servers: " + eff.Err.Error()
		}
		return set
	}
	maxAnswer := LimitsFor(eff.Policy).MaxServerAnswer
	for _, es := range eff.Servers {
		id := es.Server.ID
		if !es.Connect {
			set.problems[id] = es.Why
			continue
		}
		var client *http.Client
		if clientFor != nil {
			client = clientFor(id)
		}
		srv, pol, sa, err := buildServer(es, maxAnswer, client, log)
		if err != nil {
			set.problems[id] = err.Error()
			continue
		}
		set.relay = append(set.relay, srv)
		set.policies[id] = pol
		if sa.Kind != auth.KindNone {
			set.auth[id] = sa
		}
	}
	return set
}

// buildServer makes one server's endpoint, policy and sign-in settings.
// maxAnswer bounds one message from the server, in bytes; it is part of
// the fingerprint, so a new limit reconnects the server's sessions.
func buildServer(es config.EffectiveServer, maxAnswer int, client *http.Client, log *slog.Logger) (relay.Server, *policy.Policy, auth.ServerAuth, error) {
	s := es.Server
	name := displayName(s)
	allow := map[catalog.Kind][]string{}
	for k, v := range es.Patterns() {
		allow[catalog.Kind(k)] = v
	}
	pc := policy.Config{Name: name, Allowlist: allow, Hidden: es.HiddenToolNames()}
	if s.Custom() {
		pol, err := policy.New(pc)
		if err != nil {
			return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
		}
		return relay.Server{ID: s.ID, Name: name, Dial: Dialer(s, maxAnswer, log), Fingerprint: fingerprint(s, maxAnswer)}, pol, auth.ServerAuth{}, nil
	}

	entry, ok := catalog.Lookup(s.Kind)
	if !ok {
		return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %q is not in Countersign's catalog", name, s.Kind)
	}
	if !entry.Supported {
		return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %s", name, entry.Unsupported)
	}
	params := es.ParamValues()
	if slices.ContainsFunc(entry.Params, func(p catalog.Param) bool { return p.Name == "write" }) {
		params["write"] = strconv.FormatBool(es.AllowWrite)
	}
	params, err := entry.Normalize(params)
	if err != nil {
		return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
	}
	pc.CatalogID, pc.Params = entry.ID, params
	pol, err := policy.New(pc)
	if err != nil {
		return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
	}

	var dial relay.Dialer
	var sa auth.ServerAuth
	var endpoint any
	switch entry.Transport {
	case catalog.TransportStreamableHTTP:
		url, err := entry.Endpoint(params)
		if err != nil {
			return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
		}
		header, err := entry.Headers(params)
		if err != nil {
			return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
		}
		opts := transport.HTTPOptions{URL: url, Header: header, Client: client, MaxMessage: maxAnswer, Logger: log}
		dial = func(context.Context) (transport.Conn, error) { return transport.NewStreamableHTTP(opts), nil }
		sa = serverAuth(entry, es, name, url, params)
		endpoint = []any{url, header}
	case catalog.TransportStdio:
		argv, err := entry.CommandLine(params)
		if err != nil {
			return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: %w", name, err)
		}
		dial = func(ctx context.Context) (transport.Conn, error) {
			return transport.StartStdio(ctx, transport.StdioOptions{Command: argv[0], Args: argv[1:], MaxMessage: maxAnswer, Logger: log})
		}
		endpoint = argv
	default:
		return relay.Server{}, nil, auth.ServerAuth{}, fmt.Errorf("%s: unknown transport %q", name, entry.Transport)
	}
	return relay.Server{ID: s.ID, Name: name, Dial: dial, Fingerprint: fingerprint(endpoint, sa, maxAnswer)}, pol, sa, nil
}

// serverAuth says how to sign in to a catalog server at url.
func serverAuth(entry catalog.Entry, es config.EffectiveServer, name, url string, params map[string]string) auth.ServerAuth {
	sa := auth.ServerAuth{Name: name, ResourceURL: url, ClientID: es.ClientID, Scopes: entry.Auth.Scopes, OfflineAccess: entry.Auth.OfflineAccess}
	switch entry.Auth.Kind {
	case catalog.AuthOAuthPreregistered, catalog.AuthOAuthDynamic:
		sa.Kind = auth.KindOAuth
	case catalog.AuthOAuthEntra:
		sa.Kind = auth.KindOAuth
		if es.Tenant != "" {
			sa.AuthorizationServer = "https://login.microsoftonline.com/" + es.Tenant + "/v2.0"
		}
	case catalog.AuthBearerToken:
		sa.Kind = auth.KindBearer
	case catalog.AuthSigV4:
		sa.Kind, sa.Scopes = auth.KindAWS, nil
		sa.AWS = &auth.AWSSettings{StartURL: params["ssoStartUrl"], Region: params["ssoRegion"], AccountID: params["account"], Role: params["role"]}
	default:
		sa.Kind = auth.KindNone
	}
	return sa
}

// fingerprint hashes connection settings, so the relay can tell when a
// server's settings changed.
func fingerprint(v ...any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
