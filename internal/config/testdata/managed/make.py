#!/usr/bin/env python3
# Writes the managed preferences fixtures with Python's plistlib, an
# independent writer of Apple's binary and XML property list formats:
#   python3 make.py   (in this folder)
import plistlib

prefs = {
    "PayloadUUID": "9B0E0C43-7E0F-4C3B-9D6A-5C2D7D0D1A11",  # skipped by Countersign
    "approvedServers": ["github"],
    "allowCustomServers": False,
    "servers": {"github": {"readOnly": True, "allowlist": {"github-repository": ["DEFRA/*"]},
                           "params": {"toolsets": "repos"}}},
    "hiddenTools": ["delete_*"],
    "maxApprovalTimeout": "10m",
    "aiAppWaits": [{"match": "claude", "wait": "60s"}],
    "audit": {"minRetentionDays": 365, "exportEndpoint": "https://otel.example.org/v1/logs"},
}
with open("binary.plist", "wb") as f:
    plistlib.dump(prefs, f, fmt=plistlib.FMT_BINARY)
with open("xml.plist", "wb") as f:
    plistlib.dump(prefs, f, fmt=plistlib.FMT_XML)
