#!/usr/bin/env python3
"""Writes a deterministic Unleash client-features document with N flags.

Only features that Unleash Edge 20.1.0's engine (client spec 5.2.2) supports:
default/flexibleRollout/userWithId strategies, IN/NOT_IN/STR_*/NUM_* and
DATE constraints, segments, variants with payloads. Usage: gen_flags.py N
"""
import json
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 350
rng = random.Random(42)
segments = [
    {"id": i + 1, "name": f"seg-{i}", "constraints": [
        {"contextName": "country", "operator": "IN", "values": rng.sample(["NO", "SE", "DK", "FI", "DE", "FR", "US", "GB"], 3),
         "inverted": False, "caseInsensitive": False}]}
    for i in range(10)
]
features = []
for i in range(n):
    name = f"flag-{i:04d}"
    kind = i % 7
    strategies = []
    variants = []
    if kind == 0:
        strategies = [{"name": "default", "parameters": {}, "constraints": []}]
    elif kind in (1, 2):
        strategies = [{"name": "flexibleRollout", "parameters": {"rollout": str(rng.choice([5, 10, 25, 50, 75])), "stickiness": "default", "groupId": name}, "constraints": []}]
    elif kind == 3:
        strategies = [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": name},
                       "constraints": [
                           {"contextName": "plan", "operator": "IN", "values": ["free", "pro", "enterprise"], "inverted": False, "caseInsensitive": False},
                           {"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"], "inverted": False, "caseInsensitive": True},
                       ]}]
    elif kind == 4:
        strategies = [{"name": "userWithId", "parameters": {"userIds": ",".join(str(rng.randint(1, 5000)) for _ in range(20))}, "constraints": []},
                      {"name": "flexibleRollout", "parameters": {"rollout": "30", "stickiness": "default", "groupId": name}, "constraints": [],
                       "segments": [rng.randint(1, 10)]}]
    elif kind == 5:
        strategies = [{"name": "default", "parameters": {}, "constraints": [
            {"contextName": "seats", "operator": "NUM_GTE", "value": str(rng.randint(1, 50)), "inverted": False, "caseInsensitive": False}]}]
    else:
        strategies = [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": name}, "constraints": []}]
        variants = [{"name": v, "weight": w, "weightType": "variable", "stickiness": "default",
                     "payload": {"type": "string", "value": f"{name}-{v}"}}
                    for v, w in (("red", 250), ("green", 250), ("blue", 250), ("black", 250))]
    features.append({"name": name, "type": "release", "enabled": i % 11 != 0, "project": "default", "stale": False,
                     "impressionData": False, "strategies": strategies, "variants": variants})
print(json.dumps({"version": 2, "features": features, "segments": segments}))
