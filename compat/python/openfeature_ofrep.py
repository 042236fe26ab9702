"""OpenFeature for Python: openfeature-sdk with openfeature-provider-ofrep
against Gantry's OFREP API.

Checks values, variants, reasons, metadata and error codes (FLAG_NOT_FOUND
from the server, TYPE_MISMATCH client-side, GENERAL for a rejected token),
the provider's strict typing (integers vs floats, objects), and, for seeded
random contexts, that its answers for rollout/split flags equal Gantry's
bulk answers.

Env: GANTRY_URL, GANTRY_SERVER_TOKEN, COMPAT_SEED.
"""

import os
from enum import Enum

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from common import contexts, env, finish, ofrep_bulk, ofrep_context

base = env("GANTRY_URL")
token = env("GANTRY_SERVER_TOKEN")
seed = int(os.environ.get("COMPAT_SEED", "20240601"))
summary = {"sdk": "openfeature-sdk + openfeature-provider-ofrep (python)", "cases": 0, "random_checks": 0, "failures": []}

api.set_provider_and_wait(OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {token}"}))
api.set_provider_and_wait(OFREPProvider(base, headers_factory=lambda: {"Authorization": "Bearer not-a-token"}), domain="bad-token")
client = api.get_client()
bad_client = api.get_client("bad-token")


def ec(ctx):
    ctx = dict(ctx)
    key = ctx.pop("targetingKey", None)
    return EvaluationContext(targeting_key=key, attributes=ctx)


def details(c, kind, key, default, ctx):
    fn = {
        "boolean": c.get_boolean_details,
        "string": c.get_string_details,
        "integer": c.get_integer_details,
        "float": c.get_float_details,
        "object": c.get_object_details,
    }[kind]
    return fn(key, default, ec(ctx))


def plain(v):
    return v.value if isinstance(v, Enum) else v


def view(d):
    return {
        "value": d.value,
        "variant": d.variant,
        "reason": plain(d.reason),
        "errorCode": plain(d.error_code),
        "errorMessage": d.error_message,
        "flagMetadata": dict(d.flag_metadata or {}),
    }


def check(label, d, want):
    got = view(d)
    bad = {}
    for k, v in want.items():
        if k == "flagMetadata":
            for mk, mv in v.items():
                if got["flagMetadata"].get(mk) != mv:
                    bad[f"flagMetadata.{mk}"] = {"got": got["flagMetadata"].get(mk), "want": mv}
        elif k == "value":
            # bool is an int in Python: compare types too.
            if got["value"] != v or type(got["value"]) is not type(v):
                bad[k] = {"got": got["value"], "want": v}
        elif got[k] != v:
            bad[k] = {"got": got[k], "want": v}
    if bad:
        summary["failures"].append({"case": label, "mismatches": bad, "details": got})


CASES = [
    ("boolean", "compat.static-on", False, {"targetingKey": "user-1"}, {"value": True, "variant": "on", "reason": "STATIC"}),
    ("boolean", "compat.default-strategy", False, {}, {"value": True, "variant": "on", "reason": "STATIC"}),
    ("boolean", "compat.killed", True, {"targetingKey": "user-1"}, {"value": False, "variant": "off", "reason": "DISABLED"}),
    ("boolean", "compat.constraints", False, {"targetingKey": "user-1", "country": "NO", "plan": "pro"}, {"value": True, "variant": "on", "reason": "TARGETING_MATCH"}),
    ("boolean", "compat.constraints", True, {"targetingKey": "user-1", "country": "US", "plan": "free"}, {"value": False, "variant": "off", "reason": "DEFAULT"}),
    ("boolean", "compat.user-list", False, {"targetingKey": "user-7"}, {"value": True, "variant": "on", "reason": "TARGETING_MATCH"}),
    ("boolean", "compat.numbers", False, {"targetingKey": "user-1", "age": 40}, {"value": True, "variant": "on", "reason": "TARGETING_MATCH"}),
    (
        "boolean",
        "compat.variants",
        False,
        {"targetingKey": "user-3"},
        {"value": True, "variant": "red", "reason": "TARGETING_MATCH", "flagMetadata": {"payloadType": "string", "payload": "#f00"}},
    ),
    ("boolean", "compat.child-of-killed", False, {}, {"value": True, "variant": "on", "reason": "STATIC"}),
    ("boolean", "compat.missing-parent", True, {"targetingKey": "user-1"}, {"value": False, "variant": "off", "reason": "DEFAULT"}),
    (
        "string",
        "of-string",
        "x",
        {"targetingKey": "user-3", "plan": "enterprise"},
        {"value": "#ffd700", "variant": "gold", "reason": "TARGETING_MATCH", "flagMetadata": {"ruleId": "vip", "payloadType": "string"}},
    ),
    ("integer", "of-int", 0, {}, {"value": 10, "variant": "ten", "reason": "STATIC"}),
    ("float", "of-float", 0.0, {}, {"value": 0.5, "variant": "half", "reason": "STATIC"}),
    ("object", "of-json", {}, {}, {"value": {"retries": 3, "tags": ["a", "b"], "nested": {"on": True}}, "variant": "cfg", "reason": "STATIC"}),
    ("string", "of-string-off", "x", {"targetingKey": "user-1"}, {"value": "safe", "variant": "fallback", "reason": "DISABLED"}),
    # Switched off without an off variant: no `value` on the wire, so the code default.
    ("string", "of-string-off-no-default", "code-default", {"targetingKey": "user-1"}, {"value": "code-default", "variant": "default", "reason": "DISABLED"}),
    # Errors: unknown flag (server 404) and type mismatches (client-side).
    ("boolean", "compat.no-such-flag", True, {"targetingKey": "user-1"}, {"value": True, "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND"}),
    ("string", "no-such-string", "dflt", {}, {"value": "dflt", "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND"}),
    ("string", "compat.static-on", "dflt", {}, {"value": "dflt", "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    ("integer", "of-string", 7, {"targetingKey": "user-3"}, {"value": 7, "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    ("integer", "of-float", 7, {}, {"value": 7, "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    ("boolean", "of-int", False, {}, {"value": False, "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    ("boolean", "of-json", False, {}, {"value": False, "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    ("object", "of-int", {"d": 1}, {}, {"value": {"d": 1}, "reason": "ERROR", "errorCode": "TYPE_MISMATCH"}),
    # A definition that does not compile (compat/broken-flags.json): the server's PARSE_ERROR.
    ("boolean", "of-broken", True, {"targetingKey": "user-1"}, {"value": True, "reason": "ERROR", "errorCode": "PARSE_ERROR"}),
]

for kind, key, default, ctx, want in CASES:
    summary["cases"] += 1
    check(f"{kind} {key} {ctx}", details(client, kind, key, default, ctx), want)

# A rejected token: GENERAL and the code default.
summary["cases"] += 1
check(
    "boolean compat.static-on with a rejected token",
    bad_client.get_boolean_details("compat.static-on", False, EvaluationContext()),
    {"value": False, "reason": "ERROR", "errorCode": "GENERAL"},
)

# Splits and rollouts: the provider's single-flag answers equal the bulk answers.
SPLIT_FLAGS = [
    ("boolean", "compat.rollout-user", False),
    ("boolean", "compat.rollout-default", False),
    ("boolean", "compat.variants", False),
    ("boolean", "compat.strategy-variants", False),
    ("boolean", "compat.child", False),
    ("string", "of-string", "x"),
]
reasons = {}
for uctx in contexts(seed + 2, 150):
    ctx = ofrep_context(uctx)
    bulk = ofrep_bulk(base, token, ctx)
    for kind, key, default in SPLIT_FLAGS:
        d = details(client, kind, key, default, ctx)
        f = bulk[key]
        summary["random_checks"] += 1
        r = f"{key} {plain(d.reason)}"
        reasons[r] = reasons.get(r, 0) + 1
        check(f"{kind} {key} {ctx}", d, {"value": f["value"], "variant": f["variant"], "reason": f["reason"]})
summary["reasons"] = reasons
api.shutdown()
finish(summary)
