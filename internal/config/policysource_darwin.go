package config

import "os/user"

// managedPolicySources: the managed preferences a configuration profile
// installs, for this user and then for the machine, win over policy.json.
func managedPolicySources() []PolicySource {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return managedPreferencesSources(ManagedPreferencesDir, BundleID, name)
}
