package config

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/plist"
)

// BundleID is the app's bundle identifier on macOS (FyneApp.toml's ID):
// the preference domain a configuration profile manages.
const BundleID = "org.countersign.app"

// ManagedPreferencesDir is where macOS writes the preferences that
// configuration profiles manage: <dir>/<bundle>.plist for the machine and
// <dir>/<user>/<bundle>.plist for one user. Only root can write there.
const ManagedPreferencesDir = "/Library/Managed Preferences"

// managedPreferencesSources are the per-user and then the machine-wide
// managed preferences for bundle under dir. The user's file wins, as macOS
// itself ranks a user's managed preferences above the machine's.
func managedPreferencesSources(dir, bundle, user string) []PolicySource {
	var out []PolicySource
	if user != "" && user != "." && user != ".." && !strings.ContainsAny(user, `/\`) {
		out = append(out, PlistPolicySource(filepath.Join(dir, user, bundle+".plist")))
	}
	return append(out, PlistPolicySource(filepath.Join(dir, bundle+".plist")))
}

// PlistPolicySource is a managed preferences file (XML or binary plist)
// whose keys are policy.json's fields with the same meaning: text, numbers,
// true/false, arrays and dictionaries as in the JSON; durations as text
// ("10m"). Keys starting with "Payload" (a profile's own bookkeeping) are
// skipped. The file and its folder must belong to root and be writable by
// no one else, or the policy is refused.
func PlistPolicySource(path string) PolicySource {
	return PolicySource{Where: path, read: func() ([]byte, error) {
		b, mode, err := readFileMode(path)
		if err != nil {
			return nil, err
		}
		if err := adminOnly(path, mode); err != nil {
			return nil, err
		}
		return policyFromPlist(b)
	}}
}

// adminOnly refuses a managed preferences file that someone other than
// root could have written, or replaced through its folder.
func adminOnly(path string, mode fs.FileMode) error {
	if mode.Perm()&0o022 != 0 {
		return &FieldError{Msg: fmt.Sprintf("other users can change it (mode %04o); it must not be group- or world-writable", mode.Perm())}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !ownedByRoot(fi) {
		return &FieldError{Msg: "it does not belong to root, so it did not come from device management"}
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return err
	}
	if !ownedByRoot(di) || di.Mode().Perm()&0o022 != 0 {
		return &FieldError{Msg: fmt.Sprintf("its folder %s can be changed by users other than root", filepath.Dir(path))}
	}
	return nil
}

// policyFromPlist turns a managed preferences plist into a policy.json
// document.
func policyFromPlist(b []byte) ([]byte, error) {
	v, err := plist.Decode(b)
	if err != nil {
		return nil, &FieldError{Msg: err.Error()}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, &FieldError{Msg: "the property list is not a dictionary"}
	}
	return policyFromPrefs(top)
}

// policyFromPrefs turns managed preferences (a decoded plist dictionary,
// or a profile payload) into a policy.json document.
func policyFromPrefs(top map[string]any) ([]byte, error) {
	doc := map[string]any{}
	for _, k := range sortedKeys(top) {
		if strings.HasPrefix(k, "Payload") {
			continue
		}
		x, err := plistJSON(top[k], k)
		if err != nil {
			return nil, err
		}
		doc[k] = x
	}
	if len(doc) == 0 {
		return nil, fs.ErrNotExist
	}
	return withVersion(doc)
}

// plistJSON converts a plist value to the JSON value it stands for.
func plistJSON(v any, path string) (any, error) {
	switch x := v.(type) {
	case string, bool, int64, uint64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, fieldErr(path, "want a whole number, got %v", x)
		}
		return int64(x), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = plistJSON(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			var err error
			if out[k], err = plistJSON(x[k], mapKeyPath(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fieldErr(path, "a plist %s is not a policy value (want text, a number, true/false, an array or a dictionary)", plistKind(v))
}

func plistKind(v any) string {
	switch v.(type) {
	case []byte:
		return "<data>"
	case time.Time:
		return "<date>"
	}
	return fmt.Sprintf("%T", v)
}
