package app

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/config"
)

// forgiveParam takes what a parameter needs from what the person pasted:
// the organisation from an Azure DevOps or SonarQube Cloud address, the
// host of an Atlassian site or a SonarQube Server, in lower case where the
// vendor ignores case. Anything else is returned as
// typed, for the catalog's checks to judge.
func forgiveParam(kind, name, value string) string {
	v := strings.TrimSpace(value)
	if kind == "atlassian" && name == "site" || kind == "sonarqube-cloud" && name == "server" {
		return forgiveHost(v)
	}
	if kind == "atlassian" && name == "cloudId" {
		// From what tenant_info shows ({"cloudId":"…"}) or an Atlassian
		// Administration address (…/s/<cloud ID>/users).
		if ids := uuidPattern.FindAllString(v, -1); len(ids) == 1 {
			v = ids[0]
		}
		return strings.ToLower(v)
	}
	if name != "organization" {
		return v
	}
	switch kind {
	case "azure-devops":
		if seg, ok := addressPart(v, "dev.azure.com", 0); ok {
			v = seg
		} else if u, ok := address(v); ok && strings.HasSuffix(u.Hostname(), ".visualstudio.com") {
			v = strings.TrimSuffix(u.Hostname(), ".visualstudio.com")
		}
		return strings.ToLower(v) // Azure DevOps organisation names ignore case
	case "sonarqube-cloud":
		if seg, ok := addressPart(v, "sonarcloud.io", 1); ok {
			v = seg // sonarcloud.io/organizations/<key>
		}
		return strings.ToLower(v)
	}
	return v
}

// forgiveEntry takes an allowlist entry of kind k from a pasted address:
// owner/repository from a GitHub address, organisation/project from an
// Azure DevOps one. Anything else is returned as typed.
func forgiveEntry(k catalog.Kind, text string) string {
	switch k {
	case "github-repository":
		if u, ok := address(text); ok && strings.EqualFold(strings.TrimPrefix(u.Hostname(), "www."), "github.com") {
			parts := pathParts(u)
			if len(parts) >= 2 {
				return parts[0] + "/" + strings.TrimSuffix(parts[1], ".git")
			}
		}
	case "azure-devops-project":
		if u, ok := address(text); ok && strings.EqualFold(u.Hostname(), "dev.azure.com") {
			parts := pathParts(u)
			if len(parts) >= 2 {
				return parts[0] + "/" + parts[1]
			}
		}
	}
	return text
}

// address parses text as a web address, with or without its https://.
func address(text string) (*url.URL, bool) {
	t := strings.TrimSpace(text)
	if !strings.Contains(t, "://") {
		if !strings.Contains(t, ".") || !strings.Contains(t, "/") {
			return nil, false
		}
		t = "https://" + t
	}
	u, err := url.Parse(t)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, false
	}
	return u, true
}

var uuidPattern = regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}`)

// forgiveHost takes a host name from a pasted https address, such as
// defra.atlassian.net from https://defra.atlassian.net/jira/your-work, in
// lower case. An address that is not https, or has a port or user name,
// is returned as typed, so the check says what is wrong with it.
func forgiveHost(v string) string {
	if u, ok := address(v); ok {
		if u.Scheme != "https" || u.Port() != "" || u.User != nil {
			return v
		}
		v = u.Hostname()
	}
	return strings.TrimSuffix(strings.ToLower(v), ".")
}

// addressPart is the n-th path segment of an address on host.
func addressPart(text, host string, n int) (string, bool) {
	u, ok := address(text)
	if !ok || !strings.EqualFold(u.Hostname(), host) {
		return "", false
	}
	parts := pathParts(u)
	if len(parts) <= n {
		return "", false
	}
	return parts[n], true
}

func pathParts(u *url.URL) []string {
	var out []string
	for _, p := range strings.Split(u.Path, "/") {
		if p != "" {
			if s, err := url.PathUnescape(p); err == nil {
				p = s
			}
			out = append(out, p)
		}
	}
	return out
}

// displayName is a server's name as a person sees it: the name they gave
// it, or else its catalog name with what tells it apart ("Azure DevOps
// (defra)"), never its id unless it has nothing else.
func displayName(s config.Server) string {
	if s.Name != "" || s.Custom() {
		return s.DisplayName()
	}
	e, ok := catalog.Lookup(s.Kind)
	if !ok {
		return s.DisplayName()
	}
	// What tells two servers of one kind apart.
	for _, k := range []string{"organization", "site", "server"} {
		if v := s.Params[k]; v != "" {
			return e.Name + " (" + v + ")"
		}
	}
	return e.Name
}
