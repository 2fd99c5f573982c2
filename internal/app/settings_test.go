package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// settingsEnv is a Settings on real files in a temporary directory: the
// settings file through a config.Store, the admin policy read by a
// config.Watcher, an audit log and an autostart entry.
type settingsEnv struct {
	s          *Settings
	q          *gate.Queue
	path       string // the settings file
	policyPath string
	audit      *audit.Log
	problems   map[string]string
}

type envOption func(*settingsDeps)

func withAuth(a *auth.Service) envOption { return func(d *settingsDeps) { d.auth = a } }

func newSettingsEnv(t *testing.T, settings, policy string, opts ...envOption) *settingsEnv {
	t.Helper()
	dir := t.TempDir()
	env := &settingsEnv{
		path:       filepath.Join(dir, "Countersign", "settings.json"),
		policyPath: filepath.Join(dir, "policy.json"),
		problems:   map[string]string{},
	}
	if settings != "" {
		if err := os.MkdirAll(filepath.Dir(env.path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(env.path, []byte(settings), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if policy != "" {
		if err := os.WriteFile(env.policyPath, []byte(policy), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checks := appChecks()
	w := config.NewWatcher(config.WatcherOptions{SettingsPath: env.path, PolicyPath: env.policyPath, Checks: checks, Interval: time.Hour, Logger: discardLog()})
	store := config.NewStore(env.path, config.StoreOptions{Checks: checks, Logger: discardLog(), Saved: w.Saved,
		Guard: func(old, next *config.Config) error { return w.Current().CheckEdit(old, next) }})
	env.q = gate.New(gate.Options{Timeout: w.Current().ApprovalTimeout})
	t.Cleanup(env.q.Close)
	al, err := audit.Open(filepath.Join(dir, "data", "audit.db"), audit.Options{Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	env.audit = al
	d := settingsDeps{
		store:    store,
		current:  w.Current,
		reload:   w.Reload,
		queue:    env.q,
		audit:    al,
		problems: func(id string) string { return env.problems[id] },
		outside:  w,
		login:    autostart{file: filepath.Join(dir, "autostart", "countersign.desktop"), command: []string{"/opt/Count ersign/countersign", `-config`, `/tmp/a "b"$c\d%e`}},
		log:      discardLog(),
	}
	for _, o := range opts {
		o(&d)
	}
	env.s = newSettings(d)
	return env
}

// events returns the audit events of the given kinds, oldest first.
func (env *settingsEnv) events(t *testing.T, kinds ...audit.Kind) []audit.Record {
	t.Helper()
	page, err := env.audit.Query(context.Background(), audit.Filter{Kinds: kinds}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]audit.Record, len(page.Records))
	for i, r := range page.Records {
		out[len(out)-1-i] = r
	}
	return out
}

// file returns the settings file as generic JSON.
func (env *settingsEnv) file(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(env.path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the settings file is not JSON: %v\n%s", err, b)
	}
	return m
}

// serverInFile returns one server of the settings file as generic JSON.
func (env *settingsEnv) serverInFile(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, s := range env.file(t)["servers"].([]any) {
		if m := s.(map[string]any); m["id"] == id {
			return m
		}
	}
	t.Fatalf("no server %q in the settings file", id)
	return nil
}

func detail(t *testing.T, r audit.Record) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Detail, &m); err != nil {
		t.Fatalf("detail %s: %v", r.Detail, err)
	}
	return m
}

const fakePAT = "ghp_" + "R2d2C3poBb8Luke5kywalkerLeia4Organa0"

const manyServers = `{
  "version": 2,
  "port": 40000,
  "allowedOrigins": ["https://claude.ai"],
  "servers": [
    {"id": "github", "name": "GitHub", "kind": "github", "params": {"toolsets": "repos"}},
    {"id": "atlassian", "kind": "atlassian"},
    {"id": "ado", "kind": "azure-devops"},
    {"id": "azure", "kind": "azure"},
    {"id": "aws", "kind": "aws"},
    {"id": "local", "transport": "stdio", "command": "node", "args": ["server.js", "--token", "` + fakePAT + `"]},
    {"id": "remote", "transport": "streamable-http", "url": "https://mcp.example.com/mcp?key=abc#frag"}
  ]
}`

func TestServersWithoutSignIn(t *testing.T) {
	env := newSettingsEnv(t, manyServers, "")
	got, err := env.s.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const local = "This server runs on this computer, so there is nothing to sign in to."
	want := []ServerStatus{
		{ID: "github", Name: "GitHub", Transport: "streamable-http", Endpoint: "https://api.githubcopilot.com/mcp/readonly",
			State: "Not signed in", SignInUnavailable: "Signing in to this server is not available right now."},
		{ID: "atlassian", Name: "Atlassian (Jira and Confluence)", Transport: "streamable-http", Endpoint: "https://mcp.atlassian.com/v1/mcp/authv2",
			State:             "Not signed in. Not tied to an Atlassian site yet, so calls naming a site are flagged for you: remove this server and add it again with its site",
			SignInUnavailable: "Signing in to this server is not available right now."},
		{ID: "ado", Name: "Azure DevOps", Transport: "streamable-http", Endpoint: "https://mcp.dev.azure.com/{organization}",
			State: "Not connected: Organisation is required", SignInUnavailable: "Organisation is required."},
		{ID: "azure", Name: "Azure", Transport: "stdio", Endpoint: "npx -y @azure/mcp@2.0.5 server start --read-only",
			State: "No sign-in needed", SignInUnavailable: local},
		{ID: "aws", Name: "AWS", Transport: "streamable-http", Endpoint: "https://aws-mcp.{region}.api.aws/mcp",
			State: "Not connected: AWS access portal is required", SignInUnavailable: "AWS access portal is required."},
		{ID: "local", Name: "local", Transport: "stdio", Endpoint: "node server.js --token [redacted: github token]",
			State: "No sign-in needed", SignInUnavailable: local},
		{ID: "remote", Name: "remote", Transport: "streamable-http", Endpoint: "https://mcp.example.com/mcp",
			State: "No sign-in needed", SignInUnavailable: "Countersign signs in only to servers from its catalog; this one is used without signing in."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	for _, st := range got {
		if strings.Contains(st.Endpoint, fakePAT) || strings.Contains(st.Endpoint, "key=abc") {
			t.Errorf("%s: the endpoint shows a credential: %s", st.ID, st.Endpoint)
		}
	}
}

func TestServersUnderAPolicy(t *testing.T) {
	t.Run("what the policy fixes is locked", func(t *testing.T) {
		env := newSettingsEnv(t, manyServers, `{"version": 1, "allowCustomServers": true,
			"servers": {"github": {"params": {"toolsets": "repos,issues"}, "readOnly": true}}}`)
		got, _ := env.s.Servers(context.Background())
		if got[0].ID != "github" || got[0].Locked != "Set by your organisation's policy: Toolsets. Your organisation's policy keeps this server read-only." {
			t.Errorf("github: Locked = %q", got[0].Locked)
		}
		if got[1].Locked != "" {
			t.Errorf("atlassian: Locked = %q, want none", got[1].Locked)
		}
	})
	t.Run("a server the policy does not approve is not connected", func(t *testing.T) {
		env := newSettingsEnv(t, manyServers, `{"version": 1, "approvedServers": ["github"]}`)
		got, _ := env.s.Servers(context.Background())
		const why = "Your organisation's policy does not approve atlassian servers"
		if got[1].State != "Not connected: "+why || got[1].SignInUnavailable != why+"." {
			t.Errorf("atlassian: %+v", got[1])
		}
		if got[6].State != "Not connected: Your organisation's policy allows only approved servers from the catalog" {
			t.Errorf("custom server: %+v", got[6])
		}
	})
	t.Run("a policy error shows on every server", func(t *testing.T) {
		env := newSettingsEnv(t, manyServers, `{"version": 1, "approvedServers": ["github"], "nonsense": true}`)
		got, _ := env.s.Servers(context.Background())
		if len(got) != 7 {
			t.Fatalf("%d servers, want 7", len(got))
		}
		prefix := "Countersign can't connect servers: the organisation policy at " + env.policyPath + " is invalid: "
		for _, st := range got {
			if !strings.HasPrefix(st.State, "Not connected: "+prefix) || !strings.HasPrefix(st.SignInUnavailable, prefix) {
				t.Errorf("%s: State %q, SignInUnavailable %q; want the policy error", st.ID, st.State, st.SignInUnavailable)
			}
		}
	})
}

// describe turns each sign-in state into words and buttons.
func TestDescribeSignIn(t *testing.T) {
	user, err := config.Parse([]byte(`{"version": 2, "servers": [{"id": "jira", "name": "Jira", "kind": "atlassian", "params": {"site": "defra.atlassian.net"}}, {"id": "sonar", "kind": "sonarqube-cloud", "params": {"organization": "defra"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	eff := config.Resolve(user, nil, appChecks())
	jira, sonar := eff.Servers[0], eff.Servers[1]
	oauth := func(st auth.State, reason string, scopes ...string) auth.Status {
		return auth.Status{Server: "jira", Kind: auth.KindOAuth, State: st, Reason: reason, Scopes: scopes}
	}
	type want struct {
		state, unavailable string
		signedIn           bool
		scopes             []string
		token, again       bool
	}
	tests := []struct {
		name    string
		es      config.EffectiveServer
		as      auth.Status
		asErr   error
		problem string
		want    want
	}{
		{"signed out", jira, oauth(auth.StateSignedOut, ""), nil, "", want{state: "Not signed in"}},
		{"signed out after a failed sign-in", jira, oauth(auth.StateSignedOut, "the browser was closed"), nil, "",
			want{state: "Not signed in: the browser was closed"}},
		{"signing in", jira, oauth(auth.StateSigningIn, ""), nil, "", want{state: "Signing in…"}},
		{"signed in", jira, oauth(auth.StateSignedIn, "", "read:jira-work", "offline_access"), nil, "",
			want{state: "Signed in", signedIn: true, scopes: []string{"read:jira-work", "offline_access"}}},
		{"refresh failed for good", jira, oauth(auth.StateSignInAgain, "the refresh token was revoked"), nil, "",
			want{state: "Sign in again: the refresh token was revoked", again: true}},
		{"not connected, so not registered for sign-in", jira, auth.Status{}, auth.ErrUnknownServer, "Jira: the endpoint is down",
			want{state: "Not connected: Jira: the endpoint is down", unavailable: "Signing in is possible once the server can be connected."}},
		{"a problem outranks the sign-in state", jira, oauth(auth.StateSignedIn, ""), nil, "the upstream refused",
			want{state: "Not connected: the upstream refused", signedIn: true}},
		{"a token not yet entered", sonar, auth.Status{Kind: auth.KindBearer, State: auth.StateSignedOut, PolicyException: true}, nil, "",
			want{state: "Not signed in", token: true}},
		{"an entered token can be signed out of", sonar, auth.Status{Kind: auth.KindBearer, State: auth.StateSignedIn, PolicyException: true}, nil, "",
			want{state: "Signed in with a token you pasted", signedIn: true, token: true}},
		{"a token server that can't connect takes no token", sonar, auth.Status{Kind: auth.KindBearer, State: auth.StateSignedOut}, auth.ErrUnknownServer, "no organisation",
			want{state: "Not connected: no organisation", unavailable: "Signing in is possible once the server can be connected."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := describe(tt.es, tt.as, tt.asErr, tt.problem)
			got := want{state: st.State, unavailable: st.SignInUnavailable, signedIn: st.SignedIn, scopes: st.Scopes, token: st.TakesToken, again: st.NeedsSignIn}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// fakeOAuth is an MCP server that is its own authorization server at the
// 2025-03-26 default endpoints (/register, /authorize, /token) and approves
// every sign-in; refuse makes its token endpoint refuse.
type fakeOAuth struct {
	*httptest.Server
	token  string
	refuse atomic.Bool
}

func newFakeOAuth(t *testing.T, token string) *fakeOAuth {
	f := &fakeOAuth{token: token}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"client_id": "countersign-test"}`))
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil {
			http.Error(w, "bad redirect", http.StatusBadRequest)
			return
		}
		back.RawQuery = url.Values{"code": {"the-code"}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if f.refuse.Load() {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error": "access_denied", "error_description": "the person said no"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": f.token, "token_type": "Bearer", "expires_in": 3600, "scope": "read:jira-work"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// browser follows authorization requests like a person who approves at
// once, unless stalled, when it only reports that it was opened.
type browser struct {
	stall  atomic.Bool
	opened chan struct{}
	wg     sync.WaitGroup
}

func (b *browser) open(u *url.URL) error {
	select {
	case b.opened <- struct{}{}:
	default:
	}
	if b.stall.Load() {
		return nil
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if resp, err := http.Get(u.String()); err == nil {
			resp.Body.Close()
		}
	}()
	return nil
}

func TestSignInAndOut(t *testing.T) {
	const token = "at-5f0e1d2c3b4a59687766554433221100"
	as := newFakeOAuth(t, token)
	br := &browser{opened: make(chan struct{}, 1)}
	vaultDir := t.TempDir()
	svc := auth.New(auth.Options{
		Vault:         vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: vaultDir}),
		OpenURL:       br.open,
		Logger:        discardLog(),
		SignInTimeout: 30 * time.Second,
	})
	t.Cleanup(func() { svc.Close(); br.wg.Wait() })
	if err := svc.Register("atlassian", auth.ServerAuth{Kind: auth.KindOAuth, Name: "Atlassian", ResourceURL: as.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	env := newSettingsEnv(t, manyServers, "", withAuth(svc))
	ctx := context.Background()
	state := func() ServerStatus {
		t.Helper()
		got, err := env.s.Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got[1]
	}
	if st := state(); !strings.HasPrefix(st.State, "Not signed in.") || st.SignInUnavailable != "" || st.SignedIn {
		t.Fatalf("before signing in: %+v", st)
	}

	if err := env.s.SignIn(ctx, "atlassian"); err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	if st := state(); !strings.HasPrefix(st.State, "Signed in.") || !st.SignedIn || !cmp.Equal(st.Scopes, []string{"read:jira-work"}) {
		t.Errorf("after signing in: %+v", st)
	}
	if err := env.s.SignOut(ctx, "atlassian"); err != nil {
		t.Fatalf("SignOut: %v", err)
	}
	if st := state(); !strings.HasPrefix(st.State, "Not signed in.") || st.SignedIn {
		t.Errorf("after signing out: %+v", st)
	}

	as.refuse.Store(true)
	err := env.s.SignIn(ctx, "atlassian")
	var p *Problem
	if !errors.As(err, &p) || !strings.Contains(p.Message, "was declined in the browser") || strings.Contains(p.Message, "access_denied") ||
		!strings.Contains(p.Detail, "access_denied") {
		t.Errorf("a refused sign-in: %v (%#v)", err, p)
	} else if st := state(); st.SignedIn || !strings.Contains(st.State, p.Message) {
		t.Errorf("after a refused sign-in the state %q does not agree with the error %q", st.State, p.Message)
	}

	br.stall.Store(true)
	cctx, cancel := context.WithCancel(ctx)
	<-br.opened // the earlier sign-ins' signal
	go func() { <-br.opened; cancel() }()
	if err := env.s.SignIn(cctx, "atlassian"); !errors.Is(err, auth.ErrSignInCanceled) {
		t.Errorf("a sign-in whose caller went away: %v, want it cancelled", err)
	}
	for deadline := time.Now().Add(5 * time.Second); state().State == "Signing in…"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned sign-in is still under way")
		}
	}

	var got []string
	for _, r := range env.events(t, audit.KindSignIn, audit.KindSignOut, audit.KindSignInFailed) {
		if r.Server != "atlassian" || r.Actor != audit.ActorPerson {
			t.Errorf("event %s: server %q, actor %q", r.Kind, r.Server, r.Actor)
		}
		got = append(got, string(r.Kind)+" "+r.Reason+" "+string(r.Detail))
	}
	want := []string{
		`sign_in  {"scopes":["read:jira-work"]}`,
		`sign_out  `,
		`sign_in_failed exchanging the authorization code: the authorization server answered access_denied: the person said no `,
		`sign_in_failed sign-in canceled `,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit events (-want +got)\n%s", diff)
	}

	// The token went to the keychain and nowhere else.
	for _, dir := range []string{filepath.Dir(env.path), filepath.Dir(env.policyPath)} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(token)) {
				t.Errorf("%s holds the access token", p)
			}
			return nil
		})
	}
}

func TestSignInRefusals(t *testing.T) {
	svc := auth.New(auth.Options{Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()}), Logger: discardLog()})
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		auth *auth.Service
		call func(*Settings) error
		want string
		na   bool // ErrNotAvailable
	}{
		{"an unknown server", svc, func(s *Settings) error { return s.SignIn(ctx, "nope") }, `there is no server "nope" in the settings`, false},
		{"sign out of an unknown server", svc, func(s *Settings) error { return s.SignOut(ctx, "nope") }, `there is no server "nope"`, false},
		{"a server on this computer", svc, func(s *Settings) error { return s.SignIn(ctx, "local") }, "runs on this computer", true},
		{"a server without a sign-in", svc, func(s *Settings) error { return s.SignIn(ctx, "remote") }, "only to servers from its catalog", true},
		{"a server that can't connect", svc, func(s *Settings) error { return s.SignIn(ctx, "ado") }, "Organisation is required", true},
		{"a server not registered for sign-in", svc, func(s *Settings) error { return s.SignIn(ctx, "github") }, "not available right now", true},
		{"sign out of a server not registered", svc, func(s *Settings) error { return s.SignOut(ctx, "github") }, "GitHub has no sign-in to sign out of", true},
		{"no sign-in service", nil, func(s *Settings) error { return s.SignIn(ctx, "atlassian") }, "not available right now", true},
		{"sign out without a sign-in service", nil, func(s *Settings) error { return s.SignOut(ctx, "atlassian") }, "nothing to sign out of", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSettingsEnv(t, manyServers, "", withAuth(tt.auth))
			err := tt.call(env.s)
			wantErr(t, err, tt.want)
			if errors.Is(err, ErrNotAvailable) != tt.na {
				t.Errorf("errors.Is(%v, ErrNotAvailable) = %v, want %v", err, !tt.na, tt.na)
			}
			if evs := env.events(t); len(evs) != 0 {
				t.Errorf("a refusal was audited: %+v", evs)
			}
		})
	}
}

const allowSettings = `{
  "version": 2,
  "servers": [
    {"id": "github", "name": "GitHub", "kind": "github", "allowlist": {"github-repository": ["DEFRA/*", "mine/old"]}},
    {"id": "atlassian", "kind": "atlassian", "params": {"site": "defra.atlassian.net"}},
    {"id": "azure", "kind": "azure"},
    {"id": "local", "transport": "stdio", "command": "node"}
  ]
}`

const allowPolicy = `{
  "version": 1,
  "allowCustomServers": true,
  "servers": {
    "github": {"allowlist": {"github-repository": ["DEFRA/*", "DEFRA/ffc-pay"]}},
    "atlassian": {"allowlist": {"jira-project": ["FFC"]}}
  }
}`

func TestAllowlistRoundTrip(t *testing.T) {
	env := newSettingsEnv(t, allowSettings, allowPolicy)
	ctx := context.Background()
	al, err := env.s.Allowlist(ctx, "github")
	if err != nil {
		t.Fatal(err)
	}
	want := Allowlist{Kind: "repositories", Example: "DEFRA/ffc-*", Entries: []AllowEntry{
		{Pattern: "DEFRA/*", Locked: true}, {Pattern: "DEFRA/ffc-pay", Locked: true}, {Pattern: "mine/old"},
	}}
	if diff := cmp.Diff(want, al); diff != "" {
		t.Errorf("before (-want +got)\n%s", diff)
	}

	// The window sends back the person's entries, plus whatever it got:
	// locked and repeated entries are left out of the file.
	if err := env.s.SetAllowlist(ctx, "github", []string{"mine/old", "DEFRA/ffc-pay", " other/x ", "mine/old", "Mine/New-*"}); err != nil {
		t.Fatal(err)
	}
	wantFile := map[string]any{"github-repository": []any{"mine/old", "other/x", "Mine/New-*"}}
	if diff := cmp.Diff(wantFile, env.serverInFile(t, "github")["allowlist"]); diff != "" {
		t.Errorf("file (-want +got)\n%s", diff)
	}
	al, _ = env.s.Allowlist(ctx, "github")
	want.Entries = []AllowEntry{{Pattern: "DEFRA/*", Locked: true}, {Pattern: "DEFRA/ffc-pay", Locked: true}, {Pattern: "mine/old"}, {Pattern: "other/x"}, {Pattern: "Mine/New-*"}}
	if diff := cmp.Diff(want, al); diff != "" {
		t.Errorf("after (-want +got)\n%s", diff)
	}

	// Atlassian's list holds Jira projects and Confluence spaces, told
	// apart by a prefix.
	if err := env.s.SetAllowlist(ctx, "atlassian", []string{"Jira:ABC*", "confluence:DOCS", "jira:FFC", "confluence:~me"}); err != nil {
		t.Fatal(err)
	}
	wantFile = map[string]any{"jira-project": []any{"ABC*"}, "confluence-space": []any{"DOCS", "~me"}}
	if diff := cmp.Diff(wantFile, env.serverInFile(t, "atlassian")["allowlist"]); diff != "" {
		t.Errorf("atlassian file (-want +got)\n%s", diff)
	}
	al, _ = env.s.Allowlist(ctx, "atlassian")
	wantAtl := Allowlist{Kind: "Jira projects or Confluence spaces", Example: "jira:FFC* or confluence:ENG", Entries: []AllowEntry{
		{Pattern: "jira:FFC", Locked: true}, {Pattern: "jira:ABC*"}, {Pattern: "confluence:DOCS"}, {Pattern: "confluence:~me"},
	}, Kinds: []AllowKind{{Prefix: "jira", Noun: "Jira project", Example: "FFC*"}, {Prefix: "confluence", Noun: "Confluence space", Example: "ENG"}}}
	if diff := cmp.Diff(wantAtl, al); diff != "" {
		t.Errorf("atlassian (-want +got)\n%s", diff)
	}

	// Removing every entry of the person's leaves only the policy's.
	if err := env.s.SetAllowlist(ctx, "github", nil); err != nil {
		t.Fatal(err)
	}
	if got, ok := env.serverInFile(t, "github")["allowlist"]; ok {
		t.Errorf("file still has an allowlist: %v", got)
	}
	al, _ = env.s.Allowlist(ctx, "github")
	if len(al.Entries) != 2 || !al.Entries[0].Locked || !al.Entries[1].Locked {
		t.Errorf("after removing everything: %+v", al.Entries)
	}

	// Saving the same list again writes and audits nothing.
	before, _ := os.ReadFile(env.path)
	if err := env.s.SetAllowlist(ctx, "github", []string{"DEFRA/*"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(env.path); !bytes.Equal(before, after) {
		t.Error("an unchanged list rewrote the file")
	}

	var got []map[string]any
	for _, r := range env.events(t, audit.KindSettingsChanged) {
		got = append(got, map[string]any{"server": r.Server, "reason": r.Reason, "detail": detail(t, r)})
	}
	wantEvents := []map[string]any{
		{"server": "github", "reason": "GitHub allowlist: 3 entries of your own", "detail": map[string]any{
			"setting": "allowlist", "server": "github", "entries": 3.0,
			"allowlist": map[string]any{"github-repository": []any{"mine/old", "other/x", "Mine/New-*"}},
			"changes":   []any{"GitHub: allowlist added other/x", "GitHub: allowlist added Mine/New-*"}}},
		{"server": "atlassian", "reason": "Atlassian (Jira and Confluence) (defra.atlassian.net) allowlist: 3 entries of your own", "detail": map[string]any{
			"setting": "allowlist", "server": "atlassian", "entries": 3.0,
			"allowlist": map[string]any{"jira-project": []any{"ABC*"}, "confluence-space": []any{"DOCS", "~me"}},
			"changes":   []any{"atlassian: allowlist added DOCS", "atlassian: allowlist added ~me", "atlassian: allowlist added ABC*"}}},
		{"server": "github", "reason": "GitHub allowlist: 0 entries of your own", "detail": map[string]any{
			"setting": "allowlist", "server": "github", "entries": 0.0, "allowlist": map[string]any{},
			"changes": []any{"GitHub: allowlist removed mine/old", "GitHub: allowlist removed other/x", "GitHub: allowlist removed Mine/New-*"}}},
	}
	if diff := cmp.Diff(wantEvents, got); diff != "" {
		t.Errorf("audit (-want +got)\n%s", diff)
	}
}

func TestLockedEntriesAreNeverWritten(t *testing.T) {
	env := newSettingsEnv(t, `{"version": 2, "servers": [{"id": "github", "kind": "github"}]}`, allowPolicy)
	if err := env.s.SetAllowlist(context.Background(), "github", []string{"DEFRA/*", "DEFRA/ffc-pay", "me/x"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(env.path)
	if bytes.Contains(b, []byte("DEFRA")) {
		t.Errorf("the policy's entries were written to the settings file:\n%s", b)
	}
	if !bytes.Contains(b, []byte(`"me/x"`)) {
		t.Errorf("the person's entry was not written:\n%s", b)
	}
}

func TestAllowlistUnavailable(t *testing.T) {
	locked := `{"version": 1, "allowCustomServers": true, "servers": {"github": {"allowlist": {"github-repository": ["DEFRA/*"]}, "lockAllowlist": true}}}`
	for _, tt := range []struct {
		name, policy, server string
		want                 Allowlist
	}{
		{"a list the policy sets", locked, "github", Allowlist{Kind: "repositories", Example: "DEFRA/ffc-*",
			Entries:     []AllowEntry{{Pattern: "DEFRA/*", Locked: true}},
			Unavailable: "Your organisation's policy sets this list. Your own entries are not applied: mine/old."}},
		{"a custom server", "", "local", Allowlist{Kind: "repositories or projects",
			Unavailable: "A server outside the catalog has no allowlist: Countersign can't tell which repositories or projects its calls touch, so every call waits for your review."}},
		{"a catalog server without target rules", "", "azure", Allowlist{Kind: "repositories or projects",
			Unavailable: "Azure has no allowlist: Countersign can't tell which repositories or projects its calls touch, so every call waits for your review."}},
		{"an unusable policy", `{"version": 7}`, "github", Allowlist{Kind: "repositories", Example: "DEFRA/ffc-*",
			Entries:     []AllowEntry{{Pattern: "DEFRA/*"}, {Pattern: "mine/old"}},
			Unavailable: "Locked until your organisation's policy can be read."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSettingsEnv(t, allowSettings, tt.policy)
			ctx := context.Background()
			al, err := env.s.Allowlist(ctx, tt.server)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, al); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			before, _ := os.ReadFile(env.path)
			for name, err := range map[string]error{
				"SetAllowlist":    env.s.SetAllowlist(ctx, tt.server, []string{"other/x"}),
				"CheckAllowEntry": env.s.CheckAllowEntry(tt.server, "other/x"),
			} {
				if !errors.Is(err, ErrNotAvailable) || err.Error() != tt.want.Unavailable {
					t.Errorf("%s = %v, want ErrNotAvailable saying %q", name, err, tt.want.Unavailable)
				}
			}
			if after, _ := os.ReadFile(env.path); !bytes.Equal(before, after) {
				t.Error("the settings file changed")
			}
		})
	}
	t.Run("an unknown server", func(t *testing.T) {
		env := newSettingsEnv(t, allowSettings, "")
		_, err := env.s.Allowlist(context.Background(), "nope")
		wantErr(t, err, `there is no server "nope"`)
		wantErr(t, env.s.SetAllowlist(context.Background(), "nope", nil), `there is no server "nope"`)
	})
}

func TestSetAllowlistRefusesABadEntry(t *testing.T) {
	env := newSettingsEnv(t, allowSettings, "")
	before, _ := os.ReadFile(env.path)
	err := env.s.SetAllowlist(context.Background(), "github", []string{"mine/ok", "not a repo"})
	wantErr(t, err, `"not a repo" does not have the shape of a repository`)
	err = env.s.SetAllowlist(context.Background(), "atlassian", []string{"FFC"})
	wantErr(t, err, "start with jira: for a Jira project or confluence: for a Confluence space")
	if after, _ := os.ReadFile(env.path); !bytes.Equal(before, after) {
		t.Error("the settings file changed")
	}
	if evs := env.events(t); len(evs) != 0 {
		t.Errorf("a refused change was audited: %+v", evs)
	}
}

func TestCheckAllowEntry(t *testing.T) {
	env := newSettingsEnv(t, allowSettings, "")
	const prefixes = "start with jira: for a Jira project or confluence: for a Confluence space, such as jira:FFC* or confluence:ENG"
	for _, tt := range []struct {
		name, server, pattern, want string
	}{
		{"a repository", "github", "DEFRA/ffc-pay", ""},
		{"a repository glob", "github", "DEFRA/ffc-*", ""},
		{"every repository of an owner", "github", "DEFRA/*", ""},
		{"an owner alone", "github", "DEFRA", "does not have the shape of a repository"},
		{"a glob across the slash", "github", "DEFRA*pay", "does not have the shape"},
		{"a character no name has", "github", "DEFRA/ffc pay", "cannot contain"},
		{"nothing", "github", "", "the pattern is empty"},
		{"a Jira project", "atlassian", "jira:FFC*", ""},
		{"a prefix in capitals", "atlassian", "JIRA:FFC", ""},
		{"a personal Confluence space", "atlassian", "confluence:~me", ""},
		{"a Confluence key with a colon", "atlassian", "confluence:a:b", ""},
		{"no prefix", "atlassian", "FFC", prefixes},
		{"an unknown prefix", "atlassian", "bitbucket:FFC", prefixes},
		{"a prefix alone", "atlassian", "jira:", "the pattern is empty"},
		{"a Jira key with a slash", "atlassian", "jira:FF/C", "Jira project"},
		{"a server without an allowlist", "azure", "x", "Azure has no allowlist"},
		{"an unknown server", "nope", "x", `there is no server "nope"`},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, env.s.CheckAllowEntry(tt.server, tt.pattern), tt.want) })
	}
}

// CheckAllowEntry runs on the UI goroutine: once Allowlist has read a
// server, checking an entry does not look at the settings again.
func TestCheckAllowEntryUsesWhatAllowlistRead(t *testing.T) {
	env := newSettingsEnv(t, allowSettings, "")
	if _, err := env.s.Allowlist(context.Background(), "atlassian"); err != nil {
		t.Fatal(err)
	}
	env.s.current = func() *config.Effective {
		t.Error("CheckAllowEntry read the settings")
		return config.FailClosed(nil, errors.New("unused"))
	}
	wantErr(t, env.s.CheckAllowEntry("atlassian", "jira:FFC"), "")
	wantErr(t, env.s.CheckAllowEntry("atlassian", "FFC"), "start with jira:")
}

func TestTimeoutBounds(t *testing.T) {
	for _, tt := range []struct {
		name, settings, policy string
		want                   TimeoutSetting
	}{
		{"the app's bounds", "", "", TimeoutSetting{Value: 5 * time.Minute, Min: 10 * time.Second, Max: 24 * time.Hour}},
		{"a policy cap", "", `{"version": 1, "maxApprovalTimeout": "10m"}`, TimeoutSetting{Value: 5 * time.Minute, Min: 10 * time.Second, Max: 10 * time.Minute}},
		{"a policy cap below the person's choice", `{"version": 2, "approvalTimeout": "1h", "servers": []}`, `{"version": 1, "maxApprovalTimeout": "10m"}`,
			TimeoutSetting{Value: 10 * time.Minute, Min: 10 * time.Second, Max: 10 * time.Minute}},
		{"a policy cap at the minimum", "", `{"version": 1, "maxApprovalTimeout": "10s"}`,
			TimeoutSetting{Value: 10 * time.Second, Min: 10 * time.Second, Max: 10 * time.Second, Locked: "Your organisation's policy allows at most 10 seconds."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSettingsEnv(t, tt.settings, tt.policy)
			got, err := env.s.Timeout(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

const twoServers = `{
  "port": 40000,
  "allowedOrigins": ["https://claude.ai"],
  "servers": [
    {"id": "github", "name": "GitHub", "transport": "streamable-http", "url": "https://api.githubcopilot.com/mcp/"},
    {"id": "local", "transport": "stdio", "command": "node", "args": ["server.js", "--quiet"]}
  ]
}`

func TestSetTimeout(t *testing.T) {
	t.Run("saves, keeps the other settings and applies at once", func(t *testing.T) {
		env := newSettingsEnv(t, twoServers, "")
		before, err := config.Load(env.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.s.SetTimeout(context.Background(), 90*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := env.file(t)["approvalTimeout"]; got != "1m30s" {
			t.Errorf("approvalTimeout in the file = %v", got)
		}
		after, err := config.Load(env.path)
		if err != nil {
			t.Fatal(err)
		}
		before.ApprovalTimeout = config.Duration(90 * time.Second)
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("other settings changed (-want +got)\n%s", diff)
		}
		if ts, _ := env.s.Timeout(context.Background()); ts.Value != 90*time.Second {
			t.Errorf("Timeout = %v, want the new value at once", ts.Value)
		}
		info, _ := os.Stat(env.path)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", info.Mode().Perm())
		}
		if entries, _ := os.ReadDir(filepath.Dir(env.path)); len(entries) != 1 {
			t.Errorf("temporary files left behind: %v", entries)
		}
		evs := env.events(t, audit.KindSettingsChanged)
		if len(evs) != 1 || evs[0].Reason != "approval timeout: 1m30s" ||
			!cmp.Equal(detail(t, evs[0]), map[string]any{"setting": "approvalTimeout", "from": "5m", "to": "1m30s", "changes": []any{"Approval timeout changed from 5 minutes to 1 minute 30 seconds"}}) {
			t.Errorf("audit: %+v", evs)
		}
		if err := env.s.SetTimeout(context.Background(), 90*time.Second); err != nil {
			t.Fatal(err)
		}
		if evs := env.events(t, audit.KindSettingsChanged); len(evs) != 1 {
			t.Errorf("setting the same timeout again was audited: %d events", len(evs))
		}
	})
	t.Run("new calls get the new timeout", func(t *testing.T) {
		env := newSettingsEnv(t, twoServers, "")
		if err := env.s.SetTimeout(context.Background(), 42*time.Second); err != nil {
			t.Fatal(err)
		}
		sub := env.q.Subscribe()
		defer sub.Close()
		go env.q.Submit(context.Background(), gate.Call{Server: "github", Tool: "t"})
		ev := <-sub.Events()
		if got := ev.Call.Deadline.Sub(ev.Call.Received); got != 42*time.Second {
			t.Errorf("the call waits %v, want 42s", got)
		}
	})
	t.Run("creates a missing file", func(t *testing.T) {
		env := newSettingsEnv(t, "", "")
		if err := env.s.SetTimeout(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(env.path)
		if err != nil || time.Duration(cfg.ApprovalTimeout) != time.Minute {
			t.Fatalf("reloaded %+v, %v", cfg, err)
		}
	})
	for _, tt := range []struct {
		name, policy string
		d            time.Duration
		want         string
		na           bool
	}{
		{"refuses too short", "", time.Second, "the timeout must be at least 10s", false},
		{"refuses too long", "", 25 * time.Hour, "the timeout can be at most 24h", false},
		{"refuses more than the policy allows", `{"version": 1, "maxApprovalTimeout": "10m"}`, 11 * time.Minute,
			"the timeout can't be 11m: your organisation's policy allows at most 10 minutes", false},
		{"refuses any change when the policy fixes it", `{"version": 1, "maxApprovalTimeout": "10s"}`, 10 * time.Second,
			"Your organisation's policy allows at most 10 seconds.", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSettingsEnv(t, twoServers, tt.policy)
			err := env.s.SetTimeout(context.Background(), tt.d)
			wantErr(t, err, tt.want)
			if errors.Is(err, ErrNotAvailable) != tt.na {
				t.Errorf("errors.Is(%v, ErrNotAvailable) != %v", err, tt.na)
			}
			if b, _ := os.ReadFile(env.path); string(b) != twoServers {
				t.Error("the file changed")
			}
		})
	}
	t.Run("refuses to overwrite a broken file", func(t *testing.T) {
		env := newSettingsEnv(t, twoServers, "")
		os.WriteFile(env.path, []byte(`{"servers": [`), 0o600)
		err := env.s.SetTimeout(context.Background(), time.Minute)
		wantErr(t, err, "not saving over settings that cannot be read")
		if b, _ := os.ReadFile(env.path); string(b) != `{"servers": [` {
			t.Error("the broken file was overwritten")
		}
		if evs := env.events(t); len(evs) != 0 {
			t.Errorf("a failed change was audited: %+v", evs)
		}
	})
}

func TestStartAtLogin(t *testing.T) {
	env := newSettingsEnv(t, twoServers, "")
	s := env.s
	ctx := context.Background()
	if l, err := s.StartAtLogin(ctx); err != nil || l.On || l.Unavailable != "" {
		t.Fatalf("initially %+v, %v", l, err)
	}
	if err := s.SetStartAtLogin(ctx, true); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.StartAtLogin(ctx); !l.On {
		t.Error("not on after turning it on")
	}
	if got := env.file(t)["startAtLogin"]; got != true {
		t.Errorf("startAtLogin in the file = %v, want true", got)
	}
	b, err := os.ReadFile(s.login.file)
	if err != nil {
		t.Fatal(err)
	}
	wantExec := `Exec="/opt/Count ersign/countersign" "-config" "/tmp/a \\"b\\"\\$c\\\\d%%e"`
	if !strings.Contains(string(b), "\n"+wantExec+"\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Errorf("entry:\n%s\nwant the line %s", b, wantExec)
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.login.file)); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := s.SetStartAtLogin(ctx, false); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.StartAtLogin(ctx); l.On {
		t.Error("still on after turning it off")
	}
	if _, ok := env.file(t)["startAtLogin"]; ok {
		t.Error("startAtLogin still in the file after turning it off")
	}
	if err := s.SetStartAtLogin(ctx, false); err != nil {
		t.Errorf("turning it off twice: %v", err)
	}
	var got []string
	for _, r := range env.events(t, audit.KindSettingsChanged) {
		got = append(got, r.Reason+" "+string(r.Detail))
	}
	want := []string{`start at login: on {"changes":["Start at login turned on"],"on":true,"setting":"startAtLogin"}`,
		`start at login: off {"changes":["Start at login turned off"],"on":false,"setting":"startAtLogin"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got)\n%s", diff)
	}

	t.Run("a settings file that can't be saved leaves the entry as it was", func(t *testing.T) {
		os.WriteFile(env.path, []byte(`{"servers": [`), 0o600)
		if err := s.SetStartAtLogin(ctx, true); err == nil {
			t.Fatal("no error")
		}
		if l, _ := s.StartAtLogin(ctx); l.On {
			t.Error("the autostart entry was left on")
		}
	})
	t.Run("an unsupported system", func(t *testing.T) {
		s.login = autostart{unavailable: "not here"}
		if l, _ := s.StartAtLogin(ctx); l.Unavailable != "not here" {
			t.Errorf("StartAtLogin = %+v", l)
		}
		if err := s.SetStartAtLogin(ctx, true); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("SetStartAtLogin = %v", err)
		}
	})
}

func TestReconcileLogin(t *testing.T) {
	env := newSettingsEnv(t, `{"version": 2, "startAtLogin": true}`, "")
	s := env.s
	entry := func() (string, bool) {
		b, err := os.ReadFile(s.login.file)
		return string(b), err == nil
	}
	s.reconcileLogin()
	got, ok := entry()
	if !ok || got != s.login.entry() {
		t.Fatalf("on in the file, no entry: after reconcile the entry is %q (exists %v)", got, ok)
	}

	// An entry written for an install that moved is rewritten.
	os.WriteFile(s.login.file, []byte("[Desktop Entry]\nExec=/old/place/countersign\n"), 0o600)
	s.reconcileLogin()
	if got, _ := entry(); got != s.login.entry() {
		t.Errorf("a stale entry was kept:\n%s", got)
	}

	// Turned off by editing the file: the entry goes, but only if it is
	// this install's.
	os.WriteFile(env.path, []byte(`{"version": 2}`), 0o600)
	env.s.reload()
	other := "[Desktop Entry]\nExec=/opt/other/countersign -config /elsewhere.json\n"
	os.WriteFile(s.login.file, []byte(other), 0o600)
	s.reconcileLogin()
	if got, _ := entry(); got != other {
		t.Errorf("another install's entry was changed:\n%s", got)
	}
	os.WriteFile(s.login.file, []byte(s.login.entry()), 0o600)
	s.reconcileLogin()
	if _, ok := entry(); ok {
		t.Error("off in the file, yet the entry is still there")
	}
	s.reconcileLogin()
	if _, ok := entry(); ok {
		t.Error("reconciling twice brought the entry back")
	}
	if evs := env.events(t); len(evs) != 0 {
		t.Errorf("reconciling was audited as the person's change: %+v", evs)
	}
}

// FuzzAllowEntry feeds the allowlist editor's parser what a person might
// type: it never panics, and an accepted entry reads back the same once
// shown.
func FuzzAllowEntry(f *testing.F) {
	for _, s := range []string{"DEFRA/ffc-*", "jira:FFC", "JIRA:ffc*", "confluence:~me:x", "bitbucket:x", "", ":", "jira:", "a/b/c", "ü/ß"} {
		f.Add(s)
	}
	forms := []allowForm{
		formOf(config.EffectiveServer{Server: config.Server{Kind: "github"}}),
		formOf(config.EffectiveServer{Server: config.Server{Kind: "atlassian"}}),
		formOf(config.EffectiveServer{Server: config.Server{Kind: "sonarqube-cloud"}}),
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, form := range forms {
			k, v, err := form.parse(text)
			if err != nil {
				continue
			}
			k2, v2, err := form.parse(form.show(k, v))
			if err != nil || k2 != k || v2 != v {
				t.Errorf("%q parsed as %s %q, shown as %q, which reads back as %s %q, %v", text, k, v, form.show(k, v), k2, v2, err)
			}
		}
	})
}

// BenchmarkCheckAllowEntry is the cost of checking an entry on each
// keystroke.
func BenchmarkCheckAllowEntry(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "settings.json")
	os.WriteFile(path, []byte(allowSettings), 0o600)
	w := config.NewWatcher(config.WatcherOptions{SettingsPath: path, PolicyPath: filepath.Join(dir, "none.json"), Checks: appChecks(), Logger: discardLog()})
	s := newSettings(settingsDeps{current: w.Current, log: discardLog()})
	if _, err := s.Allowlist(context.Background(), "atlassian"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.CheckAllowEntry("atlassian", "confluence:DOCS-*"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWelcomeTurnsOnStartAtLogin: a first run (no settings file) starts
// Countersign at login from then on, and writes that in a new settings
// file, so the next start is not a first run.
func TestWelcomeTurnsOnStartAtLogin(t *testing.T) {
	env := newSettingsEnv(t, "", "")
	if _, err := os.Stat(env.path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the settings file exists before the first run: %v", err)
	}
	env.s.welcome(context.Background())
	if l, err := env.s.StartAtLogin(context.Background()); err != nil || !l.On {
		t.Fatalf("start at login after a first run = %+v, %v; want on", l, err)
	}
	if got := env.file(t)["startAtLogin"]; got != true {
		t.Errorf("startAtLogin in the new settings file = %v, want true", got)
	}

	t.Run("where it can't be set, nothing is written", func(t *testing.T) {
		env := newSettingsEnv(t, "", "")
		env.s.login = autostart{unavailable: "not here"}
		env.s.welcome(context.Background())
		if _, err := os.Stat(env.path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a settings file was written: %v", err)
		}
	})
}
