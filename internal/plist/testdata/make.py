#!/usr/bin/env python3
# Writes the fixtures with Python's plistlib, an independent writer of
# Apple's XML and binary property list formats: python3 make.py (here).
import datetime
import plistlib

v = {
    "text": "héllo <&> wörld ✓",
    "ascii": "plain",
    "empty": "",
    "int": 42, "neg": -7, "big": 2**40, "max": 2**63 - 1,
    "real": 2.5,
    "yes": True, "no": False,
    "data": b"\x00\x01binary\xff",
    "date": datetime.datetime(2026, 12, 4, 12, 30, 0),
    "list": ["a", 1, [True], {}],
    "nested": {"k": {"deeper": ["x"]}},
    "shared1": "same", "shared2": "same",
}
open("all.xml.plist", "wb").write(plistlib.dumps(v, fmt=plistlib.FMT_XML))
open("all.binary.plist", "wb").write(plistlib.dumps(v, fmt=plistlib.FMT_BINARY))
# Many entries: two-byte references and lengths that need their own integer.
big = {f"key{i:04d}": "v" * i for i in range(300)}
open("big.binary.plist", "wb").write(plistlib.dumps(big, fmt=plistlib.FMT_BINARY))
