// Package lockdown writes the admin snippets that lock AI apps to
// Countersign: each host's own managed configuration, filled in with this
// machine's Countersign servers, so an administrator can paste them into
// Group Policy, a configuration profile or a managed settings file. See
// docs/ADMIN-HOSTS.md for where each goes and the vendors' documentation
// behind each format.
//
// Snippets name servers through countersign-bridge (an absolute path and
// the server id), never with the local token: machine-wide files are
// readable by every user, and the bridge reads the token from the keychain.
// Countersign's loopback URLs appear only in allowlists, which hold no token.
package lockdown

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Machine is what the snippets need to know about this machine's
// Countersign.
type Machine struct {
	// GOOS picks paths and formats: "windows", "darwin" or another Unix.
	GOOS string
	// Servers are the ids of Countersign's servers (settings "servers[].id").
	Servers []string
	// Port is Countersign's loopback port.
	Port int
	// BridgePath is the absolute path of countersign-bridge.
	BridgePath string
}

// Snippet is one file or fragment for one host's managed configuration.
type Snippet struct {
	// Host is the AI app it locks ("VS Code", "GitHub Copilot", …).
	Host string
	// Title says what it does, in a few words.
	Title string
	// Where says where the administrator puts it.
	Where string
	// Text is the snippet itself.
	Text string
}

// Snippets returns the snippets for m, in the order docs/ADMIN-HOSTS.md
// gives them.
func Snippets(m Machine) ([]Snippet, error) {
	if len(m.Servers) == 0 {
		return nil, fmt.Errorf("no Countersign servers are set up on this machine; add them in Settings first")
	}
	if m.Port < 1 || m.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", m.Port)
	}
	if m.BridgePath == "" {
		return nil, fmt.Errorf("countersign-bridge was not found")
	}
	ids := append([]string(nil), m.Servers...)
	sort.Strings(ids)

	var out []Snippet
	out = append(out, vsCode(m.GOOS)...)
	out = append(out, Snippet{
		Host:  "GitHub Copilot",
		Title: "MCP allowlist: only Countersign's servers (managed-settings.json, allowedMcpServers)",
		Where: "your enterprise's managed-settings.json (for example in its .github-private repository), or installed on the machine by device management",
		Text:  mustJSON(map[string]any{"allowedMcpServers": allowlist(m, ids, true)}),
	})
	servers, desktop := map[string]any{}, map[string]any{}
	for _, id := range ids {
		servers[id] = map[string]any{"type": "stdio", "command": m.BridgePath, "args": []string{id}}
		desktop[id] = map[string]any{"command": m.BridgePath, "args": []string{id}}
	}
	out = append(out, Snippet{
		Host:  "Claude Code",
		Title: "Fixed set of MCP servers: only Countersign's (managed-mcp.json)",
		Where: claudeCodeDir(m.GOOS) + "managed-mcp.json",
		Text:  mustJSON(map[string]any{"mcpServers": servers}),
	}, Snippet{
		Host:  "Claude Code",
		Title: "Or: allow only these servers, from managed settings only (managed-settings.json)",
		Where: claudeCodeDir(m.GOOS) + "managed-settings.json (merge into the existing file)",
		Text:  mustJSON(map[string]any{"allowManagedMcpServersOnly": true, "allowedMcpServers": allowlist(m, ids, false)}),
	}, Snippet{
		Host:  "Claude Desktop",
		Title: "MCP servers through Countersign (claude_desktop_config.json, mcpServers)",
		Where: "each person's claude_desktop_config.json (Countersign's Connect does this), or as managed MCP servers in Claude Desktop's configuration window before exporting its .reg/.mobileconfig",
		Text:  mustJSON(map[string]any{"mcpServers": desktop}),
	})
	return out, nil
}

// allowlist names each server by the bridge command that reaches it and,
// for hosts that connect over HTTP, by its loopback URL.
func allowlist(m Machine, ids []string, urls bool) []map[string]any {
	var out []map[string]any
	for _, id := range ids {
		out = append(out, map[string]any{"serverCommand": []string{m.BridgePath, id}})
		if urls {
			out = append(out, map[string]any{"serverUrl": "http://127.0.0.1:" + strconv.Itoa(m.Port) + "/servers/" + id + "/mcp"})
		}
	}
	return out
}

func claudeCodeDir(goos string) string {
	switch goos {
	case "windows":
		return `C:\Program Files\ClaudeCode\`
	case "darwin":
		return "/Library/Application Support/ClaudeCode/"
	}
	return "/etc/claude-code/"
}

// vsCode turns off global auto-approval (ChatToolsAutoApprove), so every
// tool call also asks in VS Code, through VS Code's own policy mechanism on
// this OS.
func vsCode(goos string) []Snippet {
	s := Snippet{Host: "VS Code", Title: "No auto-approval of tools (policy ChatToolsAutoApprove = off)"}
	switch goos {
	case "windows":
		s.Where = "import with regedit or reg import, or set through Group Policy with VS Code's ADMX templates"
		s.Text = "Windows Registry Editor Version 5.00\r\n\r\n" +
			"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\VSCode]\r\n" +
			"\"ChatToolsAutoApprove\"=dword:00000000\r\n"
	case "darwin":
		s.Where = "a configuration profile payload for com.microsoft.VSCode"
		s.Text = "<key>ChatToolsAutoApprove</key>\n<false/>\n"
	default:
		s.Where = "/etc/vscode/policy.json"
		s.Text = mustJSON(map[string]any{"ChatToolsAutoApprove": false})
	}
	return []Snippet{s}
}

func mustJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err) // only maps, strings and bools: cannot fail
	}
	return b.String()
}

// Text renders the snippets for reading or saving, each under a heading
// that names the host, what it does and where it goes.
func Text(snippets []Snippet) string {
	var b strings.Builder
	for i, s := range snippets {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "== %s: %s\n   put in: %s\n\n%s", s.Host, s.Title, s.Where, s.Text)
		if !strings.HasSuffix(s.Text, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}
