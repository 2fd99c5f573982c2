package policy

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/countersign/countersign/internal/catalog"
)

// cloudIDPattern is an Atlassian cloud ID: a UUID, in any case.
var cloudIDPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// siteHostPattern is a host name, lower case.
var siteHostPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$`)

// siteCheck is what a call says about the vendor site it acts on.
type siteCheck struct {
	// shown is the site as the person reads it beside each target: the
	// server's own host name when the call is on it, else what the call
	// names. Empty when the call names no site.
	shown string
	// other is set when the call is for another site than the server's.
	other bool
	// unknown says why the site could not be matched; malformed, why the
	// argument is not a site at all.
	unknown, malformed string
}

// checkSite compares the site a call names with the server's, for servers
// whose catalog entry has a site rule (Atlassian's cloudId). The result is
// folded into x: another site denies the call, an unmatched one flags it,
// and every target shows the site it is on.
func (p *Policy) checkSite(x *extraction, a args, targetless bool) {
	rule := p.entry.Targets.Site
	if rule == nil {
		return
	}
	if key, name := foldedArg(a, []string{rule.Arg}); key != "" {
		// As for target arguments: the one checked must be the one the
		// server reads.
		x.malformed = append(x.malformed, fmt.Sprintf("an argument is named %s, which some servers read as %s and others ignore", quoteShort(key), name))
		return
	}
	sc := p.readSite(rule, a, targetless || len(x.targets) == 0 && len(x.unknown) == 0)
	switch {
	case sc.malformed != "":
		x.malformed = append(x.malformed, sc.malformed)
	case sc.other:
		x.otherSite = sc.shown
	case sc.unknown != "":
		x.addUnknown(sc.unknown)
	}
	for i := range x.targets {
		x.targets[i].Site = sc.shown
	}
}

// readSite reads rule.Arg. quiet is set for a call that touches no project
// or space, for which a missing argument says nothing.
func (p *Policy) readSite(rule *catalog.SiteRule, a args, quiet bool) siteCheck {
	site, id := p.params[rule.Param], strings.ToLower(p.params[rule.IDParam])
	v, st := a.str(rule.Arg)
	switch st {
	case argAbsent:
		if quiet {
			return siteCheck{}
		}
		return siteCheck{shown: site, unknown: fmt.Sprintf("the %s argument is not given, so the %s is not known", rule.Arg, rule.Noun)}
	case argOther:
		return siteCheck{malformed: fmt.Sprintf("the %s argument is not text", rule.Arg)}
	}
	if cloudIDPattern.MatchString(v) {
		v = strings.ToLower(v)
		switch {
		case site == "":
			return siteCheck{shown: "the " + rule.Noun + " with ID " + v, unknown: p.noSite(rule)}
		case id == "":
			return siteCheck{shown: "the " + rule.Noun + " with ID " + v,
				unknown: fmt.Sprintf("the %s argument names the %s by its ID, and the settings for %s do not give %s's ID, so Countersign cannot tell whether it is %s", rule.Arg, rule.Noun, p.name, site, site)}
		case v == id:
			return siteCheck{shown: site}
		}
		return siteCheck{shown: "the " + rule.Noun + " with ID " + v, other: true}
	}
	host, ok := siteHost(v)
	if !ok {
		return siteCheck{malformed: fmt.Sprintf("the %s argument (%s) is neither a site ID nor a site address", rule.Arg, quoteShort(v))}
	}
	switch {
	case site == "":
		return siteCheck{shown: host, unknown: p.noSite(rule)}
	case host == site:
		return siteCheck{shown: site}
	}
	return siteCheck{shown: host, other: true}
}

func (p *Policy) noSite(rule *catalog.SiteRule) string {
	return fmt.Sprintf("the settings for %s name no %s yet, so its allowlist is not tied to one; set the site in Countersign settings", p.name, rule.Noun)
}

// siteHost reads a site address: a host name or an http(s) URL, as the
// vendor's tools accept them. Anything with user info, a port other than
// the scheme's or an odd host is refused rather than guessed at.
func siteHost(v string) (string, bool) {
	t := strings.TrimSpace(v)
	if !strings.Contains(t, "://") {
		t = "https://" + t
	}
	u, err := url.Parse(t)
	if err != nil || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" {
		return "", false
	}
	if port := u.Port(); port != "" && port != "443" {
		return "", false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if !siteHostPattern.MatchString(host) {
		return "", false
	}
	return host, true
}
