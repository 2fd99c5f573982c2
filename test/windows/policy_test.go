package windows

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"
)

const (
	policyKey     = `HKLM\Software\Policies\Countersign`
	userPolicyKey = `HKCU\Software\Policies\Countersign`
)

// shownPolicy is what `countersign.exe policy show` prints.
type shownPolicy struct {
	Source  *string         `json:"source"`
	Policy  json.RawMessage `json:"policy"`
	Error   string          `json:"error"`
	Sources []string        `json:"sources"`
	Limits  struct {
		CallTimeoutMinutes int      `json:"callTimeoutMinutes"`
		MaxRequestMB       int      `json:"maxRequestMB"`
		SetByPolicy        []string `json:"setByPolicy"`
	} `json:"limits"`
}

// policyShow runs `countersign.exe policy show` and parses its report;
// code is its exit status.
func (w *wine) policyShow(exe string) (shownPolicy, int) {
	w.t.Helper()
	out, err := w.run(2*time.Minute, exe, "policy", "show")
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			w.t.Fatalf("policy show: %v\n%s", err, out)
		}
		code = ee.ExitCode()
	}
	var r shownPolicy
	i := strings.Index(out, "{")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &r) != nil {
		w.t.Fatalf("policy show printed no report (exit %d):\n%s", code, out)
	}
	return r, code
}

// reg runs Wine's reg.exe and fails the test if it fails.
func (w *wine) reg(args ...string) {
	w.t.Helper()
	if out, err := w.run(time.Minute, "reg", args...); err != nil {
		w.t.Fatalf("reg %v: %v\n%s", args, err, out)
	}
}

// policyFromRegistry proves that the installed countersign.exe reads the
// admin policy Group Policy writes under HKLM, with every kind of value
// (REG_SZ, REG_DWORD, a numbered list, group subkeys, JSON text), and
// shows the limits in force; that it wins over policy.json, that an
// invalid value fails closed with the
// reason, and that the same key under HKCU, which the person can write, is
// never read. It leaves no policy behind.
func (w *wine) policyFromRegistry(exe string) {
	t := w.t
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("policy from the registry: %v", time.Since(start).Round(time.Second)) }()
	// 1. Only the person's own key: no policy.
	w.regImport("user-policy.reg", `[HKEY_CURRENT_USER\Software\Policies\Countersign]
"maxApprovalTimeout"="1m"

[HKEY_CURRENT_USER\Software\Policies\Countersign\approvedServers]
"1"="github"
`)
	if r, code := w.policyShow(exe); code != 0 || r.Source != nil || string(r.Policy) != "null" {
		t.Fatalf("with policy only under HKCU: exit %d, source %v, policy %s, error %q; want none", code, r.Source, r.Policy, r.Error)
	}

	// 2. policy.json in ProgramData, as before.
	policyJSON := w.unix(`C:\ProgramData\Countersign\policy.json`)
	if err := os.MkdirAll(filepath.Dir(policyJSON), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, policyJSON, `{"version": 1, "maxApprovalTimeout": "20m", "allowCustomServers": true}`)
	r, code := w.policyShow(exe)
	if code != 0 || r.Source == nil || !strings.HasSuffix(strings.ToLower(*r.Source), `\countersign\policy.json`) {
		t.Fatalf("with policy.json: exit %d, source %v, error %q", code, r.Source, r.Error)
	}

	// 3. Group Policy's key wins, read field by field.
	w.reg("add", policyKey, "/v", "maxApprovalTimeout", "/t", "REG_SZ", "/d", "10m", "/f")
	// The rest in one .reg file, as an administrator might deploy it (one
	// Wine process instead of one per value).
	w.regImport("machine-policy.reg", `[HKEY_LOCAL_MACHINE\Software\Policies\Countersign]
"allowCustomServers"=dword:00000001
"servers"="{\"github\": {\"readOnly\": true, \"allowlist\": {\"github-repository\": [\"DEFRA/*\"]}}}"

[HKEY_LOCAL_MACHINE\Software\Policies\Countersign\approvedServers]
"1"="github"
"2"="azure-devops"

[HKEY_LOCAL_MACHINE\Software\Policies\Countersign\hiddenTools]
"1"="delete_*"

[HKEY_LOCAL_MACHINE\Software\Policies\Countersign\audit]
"minRetentionDays"=dword:0000016d

[HKEY_LOCAL_MACHINE\Software\Policies\Countersign\limits]
"callTimeoutMinutes"=dword:0000001e
`)
	r, code = w.policyShow(exe)
	if code != 0 || r.Source == nil || *r.Source != policyKey {
		t.Fatalf("with the HKLM key: exit %d, source %v, error %q; want %s", code, r.Source, r.Error, policyKey)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Policy, &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	json.Unmarshal([]byte(`{"version": 1, "maxApprovalTimeout": "10m0s", "allowCustomServers": true,
  "approvedServers": ["github", "azure-devops"], "hiddenTools": ["delete_*"],
  "audit": {"minRetentionDays": 365}, "limits": {"callTimeoutMinutes": 30},
  "servers": {"github": {"readOnly": true, "allowlist": {"github-repository": ["DEFRA/*"]}}}}`), &want)
	if g, wnt := canon(got), canon(want); g != wnt {
		t.Fatalf("the policy from the registry:\n got %s\nwant %s", g, wnt)
	}
	if l := r.Limits; l.CallTimeoutMinutes != 30 || l.MaxRequestMB != 4 || len(l.SetByPolicy) != 1 || l.SetByPolicy[0] != "callTimeoutMinutes" {
		t.Fatalf("the limits in force: %+v; want the policy's 30 minutes and the built-in 4 MB", l)
	}
	t.Logf("countersign.exe reads the policy from %s", policyKey)

	// 4. A value of the wrong type fails closed and says why.
	w.reg("add", policyKey, "/v", "maxApprovalTimeout", "/t", "REG_DWORD", "/d", "600", "/f")
	r, code = w.policyShow(exe)
	if code != 1 || !strings.Contains(r.Error, "maxApprovalTimeout") || !strings.Contains(r.Error, "REG_SZ") || string(r.Policy) != "null" {
		t.Fatalf("with a REG_DWORD duration: exit %d, error %q, policy %s; want exit 1 naming the value", code, r.Error, r.Policy)
	}

	// 5. Without the key, policy.json applies again; without both, none.
	w.reg("delete", policyKey, "/f")
	if r, _ := w.policyShow(exe); r.Source == nil || *r.Source == policyKey {
		t.Fatalf("after removing the HKLM key: source %v, want policy.json", r.Source)
	}
	os.Remove(policyJSON)
	w.reg("delete", userPolicyKey, "/f")
	if r, code := w.policyShow(exe); code != 0 || r.Source != nil {
		t.Fatalf("after removing every policy: exit %d, source %v", code, r.Source)
	}
}

// regImport writes a .reg file (UTF-16 with a byte order mark, as regedit
// writes them) into the output folder and imports it with Wine's reg.exe.
func (w *wine) regImport(name, body string) {
	w.t.Helper()
	text := "Windows Registry Editor Version 5.00\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
	b := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(text)) {
		b = append(b, byte(u), byte(u>>8))
	}
	path := filepath.Join(w.out, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.reg("import", w.windowsPath(path))
}

// canon is a JSON value written with sorted keys.
func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
