// Shared helpers for the compatibility scripts: environment, a seeded PRNG
// (mulberry32, mirrored bit for bit in ../python/common.py), the random
// Unleash contexts, and Gantry's own answers over OFREP.

export function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
}

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COUNTRIES = ['NO', 'SE', 'DK', 'FI', 'DE', 'US', 'GB'];
const PLANS = ['free', 'pro', 'team', 'enterprise'];
const VERSIONS = ['1.0.0', '1.9.3', '2.0.0-rc.1', '2.0.0', '2.5.1', '3.0.0-beta.2', '3.0.0', '10.0.1', '10.2.0'];
const FIRST = ['ana', 'bo', 'chen', 'dev', 'eli'];
const LAST = ['smith', 'ng', 'ola'];
const CLIENT_IPS = ['10.0.0.1', '10.255.3.4', '192.168.1.77', '192.168.2.1', '172.20.0.1'];
const REMOTE = ['10.1.2.3', '10.1.250.7', '10.2.0.1', '172.16.5.4', '172.16.5.5', '192.168.1.20'];
const DAY_MS = 86400000;
const EPOCH_2025 = Date.UTC(2025, 0, 1);

/** `n` Unleash contexts (ASCII only) from `seed`; every one has a userId or a sessionId. */
export function contexts(seed, n) {
  const r = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const chance = (p) => r() < p;
  const out = [];
  for (let i = 0; i < n; i++) {
    const ctx = {};
    const hasUser = chance(0.85);
    if (hasUser) ctx.userId = `user-${int(1, 3000)}`;
    if (!hasUser || chance(0.5)) ctx.sessionId = `sess-${int(1, 100000)}`;
    if (chance(0.3)) ctx.remoteAddress = pick(REMOTE);
    const day = int(0, 729);
    const sec = int(0, 86399);
    ctx.currentTime = new Date(EPOCH_2025 + day * DAY_MS + sec * 1000).toISOString();
    const p = {};
    if (chance(0.9)) p.country = pick(COUNTRIES);
    if (chance(0.85)) p.plan = pick(PLANS);
    if (chance(0.8)) p.tenantId = `t-${int(1, 200)}`;
    if (chance(0.8)) p.age = String(int(10, 90));
    if (chance(0.5)) {
      const x = int(0, 100);
      p.tenantScore = `${Math.floor(x / 10)}.${x % 10}`;
    }
    if (chance(0.8)) p.appVersion = pick(VERSIONS);
    if (chance(0.75)) {
      const first = pick(FIRST);
      const last = pick(LAST);
      switch (int(0, 4)) {
        case 0: p.email = `${first}.${last}@example.com`; break;
        case 1: p.email = `${first}@corp.io`; break;
        case 2: p.email = `ADMIN.${first}@Corp.IO`; break;
        case 3: p.email = `qa-${first}@example.org`; break;
        default: p.email = `root.${last}@example.com`; break;
      }
    }
    if (chance(0.5)) p.clientIp = pick(CLIENT_IPS);
    ctx.properties = p;
    out.push(ctx);
  }
  return out;
}

/** The OFREP context for an Unleash context: userId becomes targetingKey, properties are flattened. */
export function ofrepContext(ctx) {
  const o = {};
  for (const [k, v] of Object.entries(ctx)) {
    if (k === 'properties' || v === undefined || v === null) continue;
    o[k === 'userId' ? 'targetingKey' : k] = v;
  }
  for (const [k, v] of Object.entries(ctx.properties || {})) {
    if (v !== undefined && v !== null) o[k] = v;
  }
  return o;
}

/** Gantry's bulk OFREP answer for one context: Map key → flag object. */
export async function ofrepBulk(base, token, context) {
  const r = await fetch(`${base}/ofrep/v1/evaluate/flags`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': token },
    body: JSON.stringify({ context }),
  });
  if (r.status !== 200) throw new Error(`OFREP bulk answered ${r.status}: ${await r.text()}`);
  const body = await r.json();
  return new Map(body.flags.map((f) => [f.key, f]));
}

/**
 * What an Unleash SDK must answer for a boolean flag given Gantry's OFREP
 * object: `enabled` is the value; the variant is the served variant when the
 * flag is on and has one, else Unleash's `disabled` variant.
 */
export function expectedFromOfrep(f) {
  if (f.errorCode) return { error: f.errorCode };
  const enabled = f.value === true;
  const hasVariant = enabled && f.variant !== 'on' && f.variant !== 'off';
  const variant = { name: hasVariant ? f.variant : 'disabled', enabled: hasVariant, feature_enabled: enabled };
  if (hasVariant && f.metadata && f.metadata.payloadType !== undefined) {
    variant.payload = { type: f.metadata.payloadType, value: f.metadata.payload };
  }
  return { enabled, variant };
}

/** Compares an SDK variant with the expected one (name, enabled, feature_enabled, payload). */
export function variantDiff(got, want) {
  const g = {
    name: got?.name,
    enabled: got?.enabled,
    feature_enabled: got?.feature_enabled ?? got?.featureEnabled,
    payload: got?.payload ? { type: got.payload.type, value: got.payload.value } : undefined,
  };
  const same = g.name === want.name && g.enabled === want.enabled && g.feature_enabled === want.feature_enabled
    && JSON.stringify(g.payload) === JSON.stringify(want.payload);
  return same ? null : { got: g, want };
}

/** Runs `fn` over `items` with at most `limit` in flight; results in order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Prints the JSON summary and exits non-zero when anything failed. */
export function finish(summary) {
  summary.ok = summary.failures.length === 0;
  summary.failure_count = summary.failures.length;
  summary.failures = summary.failures.slice(0, 25);
  console.log(JSON.stringify(summary, null, 2));
  process.exit(summary.ok ? 0 : 1);
}
