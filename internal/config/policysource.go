package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
)

// PolicySource is one place the admin policy can come from: the policy.json
// file, the Windows registry under HKLM\Software\Policies\Countersign, or
// macOS managed preferences. Every source yields the same document, with
// the same schema and checks, so a policy means the same wherever it is set.
type PolicySource struct {
	// Where names the place for people: a file path or a registry key.
	Where string
	// read returns the policy as a policy.json document; an error wrapping
	// fs.ErrNotExist means there is no policy here. A *FieldError means
	// the policy here is invalid; any other error that it cannot be read.
	read func() ([]byte, error)
	// lines is set for a policy.json file, whose errors name their line;
	// a document made from the registry or a plist has no lines to name.
	lines bool
}

// FilePolicySource is a policy.json file. On Unix a file that other users
// could change is refused.
func FilePolicySource(path string) PolicySource {
	return PolicySource{Where: path, lines: true, read: func() ([]byte, error) {
		b, mode, err := readFileMode(path)
		if err != nil {
			return nil, err
		}
		if runtime.GOOS != "windows" && mode.Perm()&0o022 != 0 {
			return nil, &FieldError{Msg: fmt.Sprintf("other users can change it (mode %04o); it must not be group- or world-writable", mode.Perm())}
		}
		return b, nil
	}}
}

// AdminPolicySources are where this OS's device management puts the policy,
// in the order they win: the first that holds a policy is the policy, and
// the others are not read. On Windows the registry
// (HKLM\Software\Policies\Countersign, written by Group Policy or Intune)
// wins over policy.json; on macOS the managed preferences a configuration
// profile installs for this user, then for the machine, win over
// policy.json; elsewhere there is only policy.json (AdminPolicyPath). No
// place a person can write is among them.
func AdminPolicySources() []PolicySource {
	return append(managedPolicySources(), FilePolicySource(AdminPolicyPath()))
}

// LoadAdminPolicy reads the policy from the first of sources that holds
// one. No policy anywhere is (nil, nil); a policy that cannot be used is a
// *PolicyError naming its source, on which the app fails closed.
func LoadAdminPolicy(sources []PolicySource) (*Policy, error) {
	r := readPolicy(sources)
	return r.policy()
}

// policyRead is what reading the sources found.
type policyRead struct {
	src *PolicySource // nil: no source holds a policy
	b   []byte
	err error
}

// readPolicy reads sources in order until one holds a policy. A source
// that cannot be read stops the search: falling through to a lower one
// would let a broken registry key or profile quietly give way to another
// policy.
func readPolicy(sources []PolicySource) policyRead {
	for i := range sources {
		b, err := sources[i].read()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return policyRead{src: &sources[i], b: b, err: err}
	}
	return policyRead{}
}

// policy turns what was read into a policy, no policy, or a *PolicyError.
func (r policyRead) policy() (*Policy, error) {
	if r.src == nil {
		return nil, nil
	}
	where := r.src.Where
	if r.err != nil {
		var fe *FieldError
		if errors.As(r.err, &fe) {
			return nil, &PolicyError{Path: where, Err: r.err}
		}
		return nil, &PolicyError{Path: where, Unreadable: true, Err: r.err}
	}
	p, err := ParsePolicy(r.b)
	if err != nil {
		var fe *FieldError
		if !r.src.lines && errors.As(err, &fe) {
			fe.Line = 0
		}
		return nil, &PolicyError{Path: where, Err: err}
	}
	p.path = where
	return p, nil
}

// withVersion adds the policy version to a document built from a managed
// source when the admin left it out: Group Policy and profile editors set
// one value at a time, and this build reads only PolicyVersion.
func withVersion(doc map[string]any) ([]byte, error) {
	if _, ok := doc["version"]; !ok {
		doc["version"] = PolicyVersion
	}
	return json.Marshal(doc)
}
