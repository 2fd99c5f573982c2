package hosts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/countersign/countersign/internal/hosts"
)

// Connect Cursor to Countersign's GitHub endpoint: load, edit, show the
// person what changes (the token masked), save with a backup.
func ExampleConfig_Connect() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mcp.json")
	_ = os.WriteFile(path, []byte("{\n  \"mcpServers\": {\n    \"context7\": {\"url\": \"https://mcp.context7.com/mcp\"}\n  }\n}\n"), 0o644)

	ed := hosts.NewEditor(nil)
	cfg, err := ed.Load(hosts.Cursor, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	token := strings.Repeat("ab", 32)
	if err := cfg.Connect(hosts.Target{Port: 39217, Token: token}, "github"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Changes())
	diff := strings.SplitN(cfg.Diff(), "\n", 3)[2] // without the file names
	fmt.Print(diff)
	saved, err := cfg.Save()
	fmt.Println(err, filepath.Base(saved.Backup) != "")
	// Output:
	// [added countersign-github]
	// @@ -1,5 +1,11 @@
	//  {
	//    "mcpServers": {
	// -    "context7": {"url": "https://mcp.context7.com/mcp"}
	// +    "context7": {"url": "https://mcp.context7.com/mcp"},
	// +    "countersign-github": {
	// +      "url": "http://127.0.0.1:39217/servers/github/mcp",
	// +      "headers": {
	// +        "Authorization": "Bearer ********"
	// +      }
	// +    }
	//    }
	//  }
	// <nil> true
}
