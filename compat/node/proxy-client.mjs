// The browser SDK `unleash-proxy-client`, run under Node (global fetch,
// InMemoryStorageProvider), against /api/frontend with a client token. For a
// series of seeded random contexts set with updateContext, isEnabled and
// getVariant for every flag must equal Gantry's OFREP answer for the SDK's
// own context (getContext(): it adds appName, environment and a sessionId).
// Runs once with GET requests (context in the query string) and once with
// usePOSTrequests.
//
// With GANTRY_EXPECT_MAINTENANCE=<message>, the synthetic `gantry.maintenance`
// toggle must be enabled with that message as its variant's string payload.
//
// Env: GANTRY_URL, GANTRY_CLIENT_TOKEN, GANTRY_SERVER_TOKEN (for OFREP), COMPAT_SEED.
import { UnleashClient, InMemoryStorageProvider, EVENTS } from 'unleash-proxy-client';
import { env, contexts, ofrepContext, ofrepBulk, expectedFromOfrep, variantDiff, finish } from './common.mjs';

const base = env('GANTRY_URL');
const clientKey = env('GANTRY_CLIENT_TOKEN');
const serverToken = env('GANTRY_SERVER_TOKEN');
const seed = Number(process.env.COMPAT_SEED || 20240601);
const perMode = Number(process.env.COMPAT_FRONTEND_CONTEXTS || 300);
const FLAGS = (await import('node:fs')).readFileSync(new URL('../flags.json', import.meta.url), 'utf8');
const names = JSON.parse(FLAGS).features.map((f) => f.name).sort();

const summary = { sdk: 'unleash-proxy-client (node)', modes: {}, flags: names.length, checks: 0, failures: [] };

function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms))]);
}

async function compare(client, mode, label) {
  const sdkCtx = client.getContext();
  // The frontend API fills in the caller's address when the context has none.
  const ctx = { remoteAddress: '127.0.0.1', ...sdkCtx };
  const ofrep = await ofrepBulk(base, serverToken, ofrepContext(ctx));
  for (const name of names) {
    const f = ofrep.get(name);
    if (!f) {
      summary.failures.push({ mode, label, flag: name, problem: 'missing from OFREP bulk answer' });
      continue;
    }
    const want = expectedFromOfrep(f);
    const enabled = client.isEnabled(name);
    const variant = client.getVariant(name);
    summary.checks += 2;
    if (enabled !== want.enabled) summary.failures.push({ mode, label, flag: name, context: sdkCtx, isEnabled: enabled, ofrep: f });
    const d = variantDiff(variant, want.variant);
    if (d) summary.failures.push({ mode, label, flag: name, context: sdkCtx, getVariant: d, ofrep: f });
  }
  const maintenance = process.env.GANTRY_EXPECT_MAINTENANCE;
  if (maintenance !== undefined) {
    const v = client.getVariant('gantry.maintenance');
    summary.checks += 1;
    if (!client.isEnabled('gantry.maintenance') || v.name !== 'maintenance' || v.payload?.value !== maintenance) {
      summary.failures.push({ mode, label, problem: 'gantry.maintenance not served as expected', variant: v });
    }
  }
  // The main endpoint returns enabled toggles only.
  for (const t of client.getAllToggles()) {
    if (t.enabled !== true) summary.failures.push({ mode, label, toggle: t, problem: '/api/frontend returned a disabled toggle' });
  }
}

async function run(mode, usePOSTrequests, ctxs) {
  const errors = [];
  const [first, ...rest] = ctxs;
  const client = new UnleashClient({
    url: `${base}/api/frontend`,
    clientKey,
    appName: 'gantry-compat-browser',
    refreshInterval: 3600,
    disableMetrics: true,
    usePOSTrequests,
    storageProvider: new InMemoryStorageProvider(),
    context: first,
  });
  client.on(EVENTS.ERROR, (e) => errors.push(e));
  const ready = new Promise((resolve) => client.once(EVENTS.READY, resolve));
  await withTimeout(client.start(), 20000, `${mode} start`);
  await withTimeout(ready, 20000, `${mode} ready`);
  await compare(client, mode, 'initial context');
  let i = 0;
  for (const ctx of rest) {
    await withTimeout(client.updateContext(ctx), 20000, `${mode} updateContext`);
    await compare(client, mode, `updateContext #${++i}`);
  }
  // setContextField on a custom property, then removeContextField.
  await client.setContextField('plan', 'enterprise');
  await compare(client, mode, 'setContextField plan=enterprise');
  await client.removeContextField('plan');
  await compare(client, mode, 'removeContextField plan');
  client.stop();
  for (const e of errors) summary.failures.push({ mode, sdk_error: JSON.stringify(e, Object.getOwnPropertyNames(e)) });
  summary.modes[mode] = { contexts: ctxs.length + 2, sdk_errors: errors.length };
}

const all = contexts(seed + 1, perMode * 2);
await run('GET', false, all.slice(0, perMode));
await run('POST', true, all.slice(perMode));
finish(summary);
