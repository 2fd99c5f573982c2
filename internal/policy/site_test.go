package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/catalog"
)

const defraID = "1324a887-45db-1bf4-1e99-ef0ff456d421"

func TestAtlassianSite(t *testing.T) {
	allow := map[catalog.Kind][]string{catalog.KindJiraProject: {"FFC"}, catalog.KindConfluenceSpace: {"ENG"}}
	withID := newPolicy(t, "atlassian", map[string]string{"site": "defra.atlassian.net", "cloudId": defraID}, allow)
	issue := func(cloudID string) string {
		return mustJSON(t, map[string]string{"cloudId": cloudID, "issueIdOrKey": "FFC-1"})
	}
	runChecks(t, withID, []checkCase{
		{name: "the server's site by address", tool: "getJiraIssue", args: issue("defra.atlassian.net"),
			action: ActionReview, targets: []string{"FFC"}, reasonHas: "FFC on defra.atlassian.net"},
		{name: "the server's site by URL", tool: "getJiraIssue", args: issue("https://DEFRA.atlassian.net/wiki/spaces/ENG"),
			action: ActionReview, targets: []string{"FFC"}},
		{name: "the server's site by cloud ID", tool: "getJiraIssue", args: issue(strings.ToUpper(defraID)),
			action: ActionReview, targets: []string{"FFC"}, reasonHas: "FFC on defra.atlassian.net"},
		{name: "the same key on another site", tool: "getJiraIssue", args: issue("other.atlassian.net"),
			action: ActionDeny, targets: []string{"FFC"}, reasonHas: "it is for other.atlassian.net"},
		{name: "another site by cloud ID", tool: "getJiraIssue", args: issue("00000000-0000-0000-0000-000000000000"),
			action: ActionDeny, targets: []string{"FFC"}, reasonHas: "set up for the Atlassian site defra.atlassian.net only"},
		{name: "a project list on another site", tool: "getVisibleJiraProjects", args: `{"cloudId":"other.atlassian.net"}`,
			action: ActionDeny, reasonHas: "other.atlassian.net"},
		{name: "a project list on the site", tool: "getVisibleJiraProjects", args: `{"cloudId":"defra.atlassian.net"}`,
			action: ActionReview},
		{name: "a project list with a folded site argument", tool: "getVisibleJiraProjects", args: `{"cloudId":"defra.atlassian.net","cloudID":"other.atlassian.net"}`,
			action: ActionDeny, reasonHas: "some servers read as cloudId"},
		{name: "user info names no site", tool: "atlassianUserInfo", args: `{}`, action: ActionReview},
		{name: "no site given", tool: "getJiraIssue", args: `{"issueIdOrKey":"FFC-1"}`,
			action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "cloudId argument is not given"},
		{name: "site hidden in user info", tool: "getJiraIssue", args: issue("https://defra.atlassian.net@other.atlassian.net"),
			action: ActionDeny, targets: []string{"FFC"}, reasonHas: "neither a site ID nor a site address"},
		{name: "site with an odd port", tool: "getJiraIssue", args: issue("defra.atlassian.net:8443"),
			action: ActionDeny, targets: []string{"FFC"}, reasonHas: "neither a site ID nor a site address"},
		{name: "site as a number", tool: "getJiraIssue", args: `{"cloudId":1,"issueIdOrKey":"FFC-1"}`,
			action: ActionDeny, targets: []string{"FFC"}, reasonHas: "not text"},
		{name: "a folded site argument", tool: "getJiraIssue", args: `{"cloudId":"defra.atlassian.net","CloudId":"other.atlassian.net","issueIdOrKey":"FFC-1"}`,
			action: ActionDeny},
	})

	// Without the site's cloud ID, a call naming a site by ID cannot be
	// matched: it goes to the person, flagged, showing the ID.
	noID := newPolicy(t, "atlassian", atlSite, allow)
	runChecks(t, noID, []checkCase{
		{name: "cloud ID without one in the settings", tool: "getJiraIssue", args: issue(defraID),
			action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "do not give defra.atlassian.net's ID"},
	})

	// A server saved before servers were tied to a site: its calls still go
	// to the person, flagged, with the site they name.
	siteless := newPolicy(t, "atlassian", nil, allow)
	runChecks(t, siteless, []checkCase{
		{name: "site-less server", tool: "getJiraIssue", args: issue("other.atlassian.net"),
			action: ActionReview, targets: []string{"FFC"}, unknown: true, unknownHas: "set the site in Countersign settings"},
	})
	d := siteless.Check(Call{Tool: "getJiraIssue", Arguments: json.RawMessage(issue("other.atlassian.net"))})
	if got := d.Targets[0].String(); got != "FFC on other.atlassian.net" {
		t.Errorf("target shown as %q, want the site it is on", got)
	}
}
