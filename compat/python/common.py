"""Shared helpers for the Python compatibility scripts.

Mirrors ../node/common.mjs: the same seeded PRNG (mulberry32, bit for bit),
hence the same random Unleash contexts, and Gantry's own answers over OFREP.
"""

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import requests

MASK = 0xFFFFFFFF


def env(name):
    v = os.environ.get(name)
    if not v:
        print(f"missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return v


def mulberry32(seed):
    state = [seed & MASK]

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & MASK
        a = state[0]
        t = ((a ^ (a >> 15)) * (1 | a)) & MASK
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & MASK)) & MASK) ^ t
        return ((t ^ (t >> 14)) & MASK) / 4294967296

    return nxt


COUNTRIES = ["NO", "SE", "DK", "FI", "DE", "US", "GB"]
PLANS = ["free", "pro", "team", "enterprise"]
VERSIONS = ["1.0.0", "1.9.3", "2.0.0-rc.1", "2.0.0", "2.5.1", "3.0.0-beta.2", "3.0.0", "10.0.1", "10.2.0"]
FIRST = ["ana", "bo", "chen", "dev", "eli"]
LAST = ["smith", "ng", "ola"]
CLIENT_IPS = ["10.0.0.1", "10.255.3.4", "192.168.1.77", "192.168.2.1", "172.20.0.1"]
REMOTE = ["10.1.2.3", "10.1.250.7", "10.2.0.1", "172.16.5.4", "172.16.5.5", "192.168.1.20"]
EPOCH_2025 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def contexts(seed, n):
    """`n` Unleash contexts (ASCII only); identical to contexts() in common.mjs."""
    r = mulberry32(seed)

    def integer(lo, hi):
        return lo + int(r() * (hi - lo + 1))

    def pick(arr):
        return arr[int(r() * len(arr))]

    def chance(p):
        return r() < p

    out = []
    for _ in range(n):
        ctx = {}
        has_user = chance(0.85)
        if has_user:
            ctx["userId"] = f"user-{integer(1, 3000)}"
        if not has_user or chance(0.5):
            ctx["sessionId"] = f"sess-{integer(1, 100000)}"
        if chance(0.3):
            ctx["remoteAddress"] = pick(REMOTE)
        day = integer(0, 729)
        sec = integer(0, 86399)
        t = EPOCH_2025 + timedelta(days=day, seconds=sec)
        ctx["currentTime"] = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        p = {}
        if chance(0.9):
            p["country"] = pick(COUNTRIES)
        if chance(0.85):
            p["plan"] = pick(PLANS)
        if chance(0.8):
            p["tenantId"] = f"t-{integer(1, 200)}"
        if chance(0.8):
            p["age"] = str(integer(10, 90))
        if chance(0.5):
            x = integer(0, 100)
            p["tenantScore"] = f"{x // 10}.{x % 10}"
        if chance(0.8):
            p["appVersion"] = pick(VERSIONS)
        if chance(0.75):
            first = pick(FIRST)
            last = pick(LAST)
            k = integer(0, 4)
            p["email"] = [
                f"{first}.{last}@example.com",
                f"{first}@corp.io",
                f"ADMIN.{first}@Corp.IO",
                f"qa-{first}@example.org",
                f"root.{last}@example.com",
            ][k]
        if chance(0.5):
            p["clientIp"] = pick(CLIENT_IPS)
        ctx["properties"] = p
        out.append(ctx)
    return out


def ofrep_context(ctx):
    """userId becomes targetingKey, properties are flattened."""
    o = {}
    for k, v in ctx.items():
        if k == "properties" or v is None:
            continue
        o["targetingKey" if k == "userId" else k] = v
    for k, v in (ctx.get("properties") or {}).items():
        if v is not None:
            o[k] = v
    return o


_local = threading.local()


def _session():
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def ofrep_bulk(base, token, context):
    r = _session().post(
        f"{base}/ofrep/v1/evaluate/flags",
        json={"context": context},
        headers={"X-API-Key": token},
        timeout=30,
    )
    if r.status_code != 200:
        raise RuntimeError(f"OFREP bulk answered {r.status_code}: {r.text}")
    return {f["key"]: f for f in r.json()["flags"]}


def ofrep_bulk_all(base, token, ctxs, workers=6):
    """Gantry's bulk answers for every context, yielded in order while later ones are still in flight."""
    with ThreadPoolExecutor(max_workers=workers) as ex:
        yield from ex.map(lambda c: ofrep_bulk(base, token, ofrep_context(c)), ctxs)


def expected_from_ofrep(f):
    """What an Unleash SDK must answer for a boolean flag given Gantry's OFREP object."""
    if f.get("errorCode"):
        return {"error": f["errorCode"]}
    enabled = f.get("value") is True
    has_variant = enabled and f.get("variant") not in ("on", "off")
    variant = {"name": f["variant"] if has_variant else "disabled", "enabled": has_variant, "feature_enabled": enabled}
    md = f.get("metadata") or {}
    if has_variant and "payloadType" in md:
        variant["payload"] = {"type": md["payloadType"], "value": md["payload"]}
    return {"enabled": enabled, "variant": variant}


def variant_diff(got, want):
    g = {
        "name": got.get("name"),
        "enabled": got.get("enabled"),
        "feature_enabled": got.get("feature_enabled", got.get("featureEnabled")),
    }
    if got.get("payload"):
        g["payload"] = {"type": got["payload"].get("type"), "value": got["payload"].get("value")}
    return None if g == want else {"got": g, "want": want}


def finish(summary):
    summary["ok"] = not summary["failures"]
    summary["failure_count"] = len(summary["failures"])
    summary["failures"] = summary["failures"][:25]
    print(json.dumps(summary, indent=2, default=str))
    sys.exit(0 if summary["ok"] else 1)
