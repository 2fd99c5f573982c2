package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/<name>, rewriting it under -update. A
// missing golden fails.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("%s differs (-want +got); run go test -update if the change is intended:\n%s", path, diff)
	}
}

// TestMigrationsWriteTheCurrentVersion reads every settings file under
// testdata/migrate, of any version, and compares what saving it writes with
// testdata/migrate/want/.
func TestMigrationsWriteTheCurrentVersion(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "migrate", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Version != CurrentVersion {
				t.Fatalf("version %d after migration, want %d", c.Version, CurrentVersion)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("migrate", "want", name), out)

			// Migrating is done once: the saved file reads back unchanged.
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(saved): %v", err)
			}
			out2, err := again.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Fatalf("saving the migrated file again changed it:\n%s\n---\n%s", out, out2)
			}
		})
	}
}

func TestMigrateV1KeepsEveryServerAsCustom(t *testing.T) {
	c, err := Parse([]byte(`{"servers":[{"id":"a","name":"A","transport":"stdio","command":"x","args":["1"],"env":{"K":"v"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{{ID: "a", Name: "A", Transport: TransportStdio, Command: "x", Args: []string{"1"}, Env: map[string]string{"K": "v"}}}
	if diff := cmp.Diff(want, c.Servers); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if c.AuditRetentionDays != DefaultAuditRetentionDays || c.StartAtLogin {
		t.Fatalf("new settings not at their defaults: %+v", c)
	}
}
