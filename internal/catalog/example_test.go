package catalog_test

import (
	"fmt"

	"github.com/countersign/countersign/internal/catalog"
)

// The endpoint and headers for an Azure DevOps organisation, and what
// happens when the organisation name tries to change the URL.
func ExampleEntry_Endpoint() {
	e, _ := catalog.Lookup("azure-devops")
	url, _ := e.Endpoint(map[string]string{"organization": "defra"})
	fmt.Println(url)
	_, err := e.Endpoint(map[string]string{"organization": "defra/../evil"})
	fmt.Println(err)
	// Output:
	// https://mcp.dev.azure.com/defra
	// Organisation: "defra/../evil" is not valid: letters, digits and hyphens, starting and ending with a letter or digit, at most 50 characters
}
