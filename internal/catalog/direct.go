package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Direct says how to recognise a person's own connection to a vendor server
// in an AI app's configuration file: an entry that reaches the vendor
// without Countersign, so its tool calls would never be reviewed. The
// "Connect your AI app" window offers to turn such entries off.
type Direct struct {
	// Hosts are URL host names, lower case, in path.Match syntax, where a
	// "*" stands for whole labels ("aws-mcp.*.api.aws") and the vendor's
	// own domain is always spelt out.
	// They match an entry's URL and any URL among a command's arguments
	// (proxies such as mcp-remote).
	Hosts []string `json:"hosts,omitempty"`
	// Packages are npm packages, container images, PyPI or NuGet packages
	// and executables that run the vendor's server, lower case and without
	// a version or tag ("@azure/mcp" also matches "@azure/mcp@latest").
	Packages []string `json:"packages,omitempty"`
	// Sources are the vendor documentation pages the rules come from.
	Sources []string `json:"sources"`
}

var (
	// directHostPattern is a host name whose labels may be "*".
	directHostPattern = regexp.MustCompile(`^(?:\*|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.(?:\*|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?))+$`)
	// directPackagePattern is an npm name (scoped or not), an image
	// reference without tag, or an executable name: lower case, no version.
	directPackagePattern = regexp.MustCompile(`^@?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*$`)
)

// validate checks the rules: something to match, well-formed hosts and
// packages that cannot match everything, and https sources.
func (d Direct) validate() error {
	if len(d.Hosts) == 0 && len(d.Packages) == 0 {
		return errors.New("at least one host or package is required, so direct connections can be found")
	}
	seen := map[string]bool{}
	for _, h := range d.Hosts {
		if !directHostPattern.MatchString(h) {
			return fmt.Errorf("host %q must be a lower-case host name whose labels may be *", h)
		}
		labels := strings.Split(h, ".")
		if labels[len(labels)-1] == "*" || labels[len(labels)-2] == "*" {
			return fmt.Errorf("host %q must name its registrable domain without *", h)
		}
		if _, err := path.Match(h, ""); err != nil {
			return fmt.Errorf("host %q: %w", h, err)
		}
		if seen[h] {
			return fmt.Errorf("host %q is listed twice", h)
		}
		seen[h] = true
	}
	for _, p := range d.Packages {
		if !directPackagePattern.MatchString(p) || strings.Count(p, "@") > 1 {
			return fmt.Errorf("package %q must be a lower-case package, image or executable name without a version", p)
		}
		if seen[p] {
			return fmt.Errorf("package %q is listed twice", p)
		}
		seen[p] = true
	}
	if len(d.Sources) == 0 {
		return errors.New("sources: at least one vendor documentation link is required")
	}
	for _, s := range d.Sources {
		if !strings.HasPrefix(s, "https://") {
			return fmt.Errorf("sources: %q is not an https link", s)
		}
	}
	return nil
}

// coversSelf checks that the rules recognise the entry's own endpoints or
// command: a direct connection configured as the vendor documents it. An
// endpoint whose whole host is a parameter (a self-hosted server) is
// recognised from each server's own value instead: see [Entry.DirectHosts].
func (e Entry) coversSelf() error {
	for i, ep := range e.Endpoints {
		if hostParam(ep.URL) != "" {
			continue
		}
		u, err := url.Parse(placeholderPattern.ReplaceAllString(ep.URL, "x"))
		if err != nil || !e.Direct.matchesHost(u.Hostname()) {
			return fmt.Errorf("direct: no host rule matches endpoints[%d] %s", i, ep.URL)
		}
	}
	if len(e.Command) > 0 && !slices.ContainsFunc(e.Command, e.Direct.matchesPackage) {
		return fmt.Errorf("direct: no package rule matches the command %q", strings.Join(e.Command, " "))
	}
	return nil
}

// matchesHost reports whether a URL host name is one of the vendor's, by
// the Hosts rules (case-insensitive), as internal/hosts matches them.
func (d Direct) matchesHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range d.Hosts {
		if ok, _ := path.Match(pat, host); ok {
			return true
		}
	}
	return false
}

// matchesPackage reports whether a command or argument names one of the
// vendor's packages, ignoring case and a version or tag suffix
// ("@2.0.5", ":v1", "==1.0"), as internal/hosts matches them.
func (d Direct) matchesPackage(s string) bool {
	s = strings.ToLower(s)
	for _, p := range d.Packages {
		if s == p {
			return true
		}
		if rest, ok := strings.CutPrefix(s, p); ok && (strings.HasPrefix(rest, "@") || strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "==")) {
			return true
		}
	}
	return false
}

// hostParam returns the parameter an endpoint template's whole host is,
// such as "server" in https://{server}/mcp, or "".
func hostParam(tmpl string) string {
	rest, ok := strings.CutPrefix(tmpl, "https://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	if m := placeholderPattern.FindString(host); m != "" && m == host {
		return m[1 : len(m)-1]
	}
	return ""
}

// DirectHosts are the host rules for recognising direct connections to the
// server with these parameters: the entry's own, and for a self-hosted
// server, the host of its endpoint, which only its parameters name.
func (e Entry) DirectHosts(params map[string]string) []string {
	hosts := slices.Clone(e.Direct.Hosts)
	if e.Transport != TransportStreamableHTTP {
		return hosts
	}
	ep, err := e.Endpoint(params)
	if err != nil {
		return hosts
	}
	u, err := url.Parse(ep)
	if err != nil {
		return hosts
	}
	if h := strings.ToLower(u.Hostname()); !e.Direct.matchesHost(h) {
		hosts = append(hosts, h)
	}
	return hosts
}
