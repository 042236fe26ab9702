"""Python `UnleashClient` against `gantry serve`.

The SDK fetches /api/client/features with a server token and evaluates
locally (its Yggdrasil engine); for every one of N seeded random contexts and
every flag of compat/flags.json, is_enabled and get_variant must equal
Gantry's own OFREP answer.

Env: GANTRY_URL, GANTRY_SERVER_TOKEN, COMPAT_CONTEXTS (default 10000), COMPAT_SEED.
"""

import os
import tempfile

from UnleashClient import UnleashClient

from common import contexts, env, expected_from_ofrep, finish, ofrep_bulk_all, variant_diff

base = env("GANTRY_URL")
token = env("GANTRY_SERVER_TOKEN")
n = int(os.environ.get("COMPAT_CONTEXTS", "10000"))
seed = int(os.environ.get("COMPAT_SEED", "20240601"))

summary = {"sdk": "UnleashClient (python)", "contexts": n, "seed": seed, "flags": 0, "checks": 0, "failures": []}

cache_dir = tempfile.mkdtemp(prefix="gantry-compat-unleash-")
client = UnleashClient(
    url=f"{base}/api",
    app_name="gantry-compat-python",
    custom_headers={"Authorization": token},
    refresh_interval=3600,
    disable_metrics=True,
    disable_registration=True,
    cache_directory=cache_dir,
    request_retries=0,
)
# The polling connector fetches once, synchronously, inside initialize_client().
client.initialize_client()

names = sorted(k for k in client.feature_definitions() if k.startswith("compat."))
summary["flags"] = len(names)
if len(names) < 20:
    summary["failures"].append({"setup": f"only {len(names)} flags reached the SDK"})

ctxs = contexts(seed, n)
# OFREP requests run in a thread pool while the SDK evaluates earlier contexts.
answers = ofrep_bulk_all(base, token, ctxs)
tally = {}
for ctx, ofrep in zip(ctxs, answers):
    for name in names:
        f = ofrep.get(name)
        if f is None:
            summary["failures"].append({"flag": name, "context": ctx, "problem": "missing from OFREP bulk answer"})
            continue
        want = expected_from_ofrep(f)
        if "error" in want:
            summary["failures"].append({"flag": name, "context": ctx, "problem": f"OFREP error {want['error']}"})
            continue
        enabled = client.is_enabled(name, ctx)
        variant = client.get_variant(name, ctx)
        summary["checks"] += 2
        t = tally.setdefault(name, {"on": 0, "off": 0})
        t["on" if want["enabled"] else "off"] += 1
        if enabled != want["enabled"]:
            summary["failures"].append({"flag": name, "context": ctx, "is_enabled": enabled, "ofrep": f})
        d = variant_diff(variant, want["variant"])
        if d:
            summary["failures"].append({"flag": name, "context": ctx, "get_variant": d, "ofrep": f})

summary["on_off"] = tally
client.destroy()
finish(summary)
