package catalog

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParams feeds arbitrary parameter values to every entry. Whatever is
// accepted must give an https URL on the entry's own host, printable ASCII
// headers and a command line that starts with the entry's command.
func FuzzParams(f *testing.F) {
	f.Add(uint8(2), "organization", "defra", "toolsets", "wit,repos")
	f.Add(uint8(0), "toolsets", "repos,issues", "write", "true")
	f.Add(uint8(3), "organization", "defra", "region", "us")
	f.Add(uint8(4), "region", "eu-central-1", "", "")
	f.Add(uint8(5), "namespaces", "storage,keyvault", "write", "false")
	f.Add(uint8(2), "organization", "../x", "toolsets", "a\r\nb")
	f.Add(uint8(3), "server", "sonarqube.example.org", "toolsets", "issues")
	f.Add(uint8(3), "server", "evil.example@sonarcloud.io", "organization", "defra")
	entries := All()
	hosts := map[string][]string{}
	for _, e := range entries {
		for _, ep := range e.Endpoints {
			u, _ := url.Parse(strings.NewReplacer("{region}", "REGION", "{server}", "SERVER").Replace(ep.URL))
			hosts[e.ID] = append(hosts[e.ID], u.Host)
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, k1, v1, k2, v2 string) {
		e := entries[int(i)%len(entries)]
		params := map[string]string{k1: v1, k2: v2}
		if e.Transport == TransportStdio {
			argv, err := e.CommandLine(params)
			if err != nil {
				return
			}
			if len(argv) < len(e.Command) || strings.Join(argv[:len(e.Command)], " ") != strings.Join(e.Command, " ") {
				t.Fatalf("command line %q does not start with %q", argv, e.Command)
			}
			for _, a := range argv[len(e.Command):] {
				if !plainASCII(a) || strings.ContainsAny(a, " ;|&$`") {
					t.Fatalf("argument %q is not plain", a)
				}
			}
			return
		}
		got, err := e.Endpoint(params)
		if err != nil {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("Endpoint() = %q, not a plain https URL", got)
		}
		host := u.Host
		if e.ID == "aws" {
			host = "aws-mcp.REGION.api.aws"
			if !strings.HasPrefix(u.Host, "aws-mcp.") || !strings.HasSuffix(u.Host, ".api.aws") {
				t.Fatalf("aws endpoint %q left its host", got)
			}
		}
		found := false
		for _, h := range hosts[e.ID] {
			found = found || h == host
			// A self-hosted server's host is the one its parameter names.
			found = found || h == "SERVER" && host == params["server"] && u.Path == "/mcp"
		}
		if !found {
			t.Fatalf("Endpoint() = %q, host %q is not one of %q", got, u.Host, hosts[e.ID])
		}
		h, err := e.Headers(params)
		if err != nil {
			t.Fatalf("Endpoint accepted the parameters but Headers refused them: %v", err)
		}
		for name, vs := range h {
			for _, v := range vs {
				if !plainASCII(v) {
					t.Fatalf("header %s = %q is not printable ASCII", name, v)
				}
			}
		}
	})
}
