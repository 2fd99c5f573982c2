package redact_test

import (
	"fmt"

	"github.com/countersign/countersign/internal/redact"
)

func ExampleRedactJSON() {
	// A tool result whose text holds a connection string.
	result := []byte(`{"content":[{"type":"text","text":"DATABASE_URL=postgres://app:s3cr3t-Pa55@db1:5432/orders"}],"isError":false}`)
	out, counts, err := redact.RedactJSON(result)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	fmt.Println(counts)
	// Output:
	// {"content":[{"type":"text","text":"DATABASE_URL=postgres://app:[redacted: password]@db1:5432/orders"}],"isError":false}
	// map[password:1]
}

func ExampleScanJSON() {
	args := []byte(`{"owner":"DEFRA","repo":"ffc-pay","body":"card 4111 1111 1111 1111, NI AB123456C"}`)
	findings, _ := redact.ScanJSON(args)
	for _, f := range findings {
		fmt.Printf("%s at %s[%d:%d] %s\n", f.Kind, f.Path, f.Start, f.End, f.Preview)
	}
	// Output:
	// card number at body[5:24] …1111
	// national insurance number at body[29:38] …
}
