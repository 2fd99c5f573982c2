package config

import (
	"os"
	"os/user"
	"strconv"
)

// managedPolicySources: the managed preferences a configuration profile
// installs, for this user and then for the machine, win over policy.json.
// The user is looked up by the process's uid, never taken from $USER,
// which the person could set to another user's name.
func managedPolicySources() []PolicySource {
	name := ""
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		name = u.Username
	}
	return managedPreferencesSources(ManagedPreferencesDir, BundleID, name)
}
