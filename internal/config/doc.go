// Package config reads and writes Countersign's settings and reads the
// machine-wide admin policy that narrows them.
//
// The settings file (DefaultPath, written only through a Store, atomically,
// mode 0600) holds the person's servers, allowlists, hidden tools, approval
// timeout, audit retention and start-at-login. It never holds a secret.
// Files from before versioning are version 1 and are migrated when read:
//
//	{
//	  "version": 2,
//	  "approvalTimeout": "5m",
//	  "startAtLogin": true,
//	  "auditRetentionDays": 180,
//	  "servers": [
//	    {"id": "github", "kind": "github", "allowlist": {"github-repository": ["DEFRA/ffc-*"]}, "hiddenTools": ["delete_*"]},
//	    {"id": "ado", "kind": "azure-devops", "params": {"organization": "defra"}},
//	    {"id": "local", "transport": "stdio", "command": "node", "args": ["server.js"]}
//	  ]
//	}
//
// The admin policy (AdminPolicySources: HKLM\Software\Policies\Countersign
// on Windows, managed preferences on macOS, else the policy.json file at
// AdminPolicyPath; the first that holds one wins) can only narrow: approved catalog kinds, custom servers (refused by default once a
// policy exists), per-kind OAuth client ids, Entra tenants and fixed
// parameters, locked
// allowlist entries or a locked list, hidden tools, write access, a maximum
// approval timeout, audit retention and an export endpoint. Its limits
// (LimitsPolicy) bound resources, not permissions: they may raise the
// built-in figures as well as lower them, within PolicyIntRange:
//
//	{
//	  "version": 1,
//	  "approvedServers": ["github", "azure-devops"],
//	  "allowCustomServers": false,
//	  "servers": {
//	    "github": {"clientId": "Iv23liExample", "allowlist": {"github-repository": ["DEFRA/*"]}, "lockAllowlist": true, "readOnly": true},
//	    "azure-devops": {"clientId": "00000000-0000-0000-0000-000000000001", "tenant": "contoso.onmicrosoft.com", "params": {"organization": "defra"}}
//	  },
//	  "hiddenTools": ["delete_*"],
//	  "maxApprovalTimeout": "10m",
//	  "aiAppWaits": [{"match": "claude", "via": "bridge", "wait": "60s"}],
//	  "maxRetryWindow": "5m",
//	  "audit": {"minRetentionDays": 365, "exportEndpoint": "https://otel.example.org/v1/logs"},
//	  "limits": {"callTimeoutMinutes": 30, "maxRequestMB": 16}
//	}
//
// Resolve intersects the two into Effective settings, marking what the
// policy locked and why. A policy that exists but cannot be used fails
// closed (FailClosed): no server connects, and the app says why. A Watcher
// reloads both files while the app runs. The settings file can be written
// by any program the person runs, so the Watcher judges a change it did
// not get from the app's Store with Diff: one that only narrows applies at
// once, one that widens waits until the person confirms it.
//
// Errors name the field path and line ("line 7: servers[2].allowlist.jira-project[0]: …").
// Catalog kinds, parameters and allowlist patterns are checked through the
// Checks the app passes in, so this package imports neither the catalog nor
// the policy engine.
package config
