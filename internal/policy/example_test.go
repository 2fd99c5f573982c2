package policy_test

import (
	"encoding/json"
	"fmt"

	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/policy"
)

// A GitHub server whose allowlist holds DEFRA's ffc-* repositories: a call
// inside it goes to the person, a call outside it is denied with a reason
// the model can relay.
func Example() {
	p, err := policy.New(policy.Config{
		Name:      "GitHub",
		CatalogID: "github",
		Allowlist: map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA/ffc-*"}},
		Hidden:    []string{"delete_*"},
	})
	if err != nil {
		panic(err)
	}
	for _, args := range []string{
		`{"owner":"DEFRA","repo":"ffc-pay","title":"Fix login"}`,
		`{"owner":"DEFRA","repo":"secret-repo","title":"Fix login"}`,
	} {
		d := p.Check(policy.Call{Tool: "create_issue", Arguments: json.RawMessage(args)})
		fmt.Println(d.Action, d.Targets[0])
		fmt.Println(d.Reason)
	}
	fmt.Println(p.Check(policy.Call{Tool: "delete_repository"}).Action)
	// Output:
	// review DEFRA/ffc-pay
	// Touches DEFRA/ffc-pay, in the allowlist.
	// deny DEFRA/secret-repo
	// Countersign denied this call: DEFRA/secret-repo is not in the allowlist for GitHub. Ask the user to add it in Countersign settings.
	// deny
}
