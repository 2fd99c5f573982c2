//go:build !windows && !darwin

package config

// managedPolicySources: this OS has no device-management store of its own;
// the policy is the policy.json file only.
func managedPolicySources() []PolicySource { return nil }
