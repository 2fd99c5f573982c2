package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// managedPolicySources: Group Policy's and Intune's registry key wins over
// policy.json.
func managedPolicySources() []PolicySource {
	return []PolicySource{{Where: PolicyRegistryKey, read: readPolicyRegistry}}
}

// Bounds on what is read from the policy key, so a runaway key cannot
// exhaust memory: a policy needs a handful of levels and far fewer values.
const (
	maxRegDepth  = 6
	maxRegValues = 20000
)

// readPolicyRegistry reads HKLM\Software\Policies\Countersign (the 64-bit
// view) as a policy.json document. Only HKLM is read: the person can write
// the same key under HKCU.
func readPolicyRegistry() ([]byte, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, strings.TrimPrefix(PolicyRegistryKey, `HKLM\`), registry.READ|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	defer k.Close()
	budget := maxRegValues
	tree, err := readRegKey(k, 0, &budget)
	if err != nil {
		return nil, err
	}
	return policyFromRegistry(tree)
}

// readRegKey reads a key, its values and its subkeys.
func readRegKey(k registry.Key, depth int, budget *int) (*regKey, error) {
	if depth > maxRegDepth {
		return nil, fmt.Errorf("the policy key is nested more than %d keys deep", maxRegDepth)
	}
	names, err := k.ReadValueNames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing values: %w", err)
	}
	out := &regKey{subs: map[string]*regKey{}}
	for _, name := range names {
		if *budget--; *budget < 0 {
			return nil, fmt.Errorf("the policy key holds more than %d values", maxRegValues)
		}
		v, err := readRegValue(k, name)
		if err != nil {
			return nil, fmt.Errorf("reading value %s: %w", name, err)
		}
		out.values = append(out.values, v)
	}
	subs, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing subkeys: %w", err)
	}
	for _, name := range subs {
		sk, err := registry.OpenKey(k, name, registry.READ|registry.WOW64_64KEY)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", name, err)
		}
		sub, err := readRegKey(sk, depth+1, budget)
		sk.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out.subs[name] = sub
	}
	return out, nil
}

func readRegValue(k registry.Key, name string) (regValue, error) {
	_, typ, err := k.GetValue(name, nil)
	if err != nil {
		return regValue{}, err
	}
	v := regValue{name: name, typ: typ}
	switch typ {
	case registry.SZ, registry.EXPAND_SZ:
		v.str, _, err = k.GetStringValue(name)
	case registry.MULTI_SZ:
		v.strs, _, err = k.GetStringsValue(name)
	case registry.DWORD, registry.QWORD:
		v.num, _, err = k.GetIntegerValue(name)
	}
	return v, err
}
