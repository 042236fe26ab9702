// Node `unleash-client` against `gantry serve`: the SDK fetches
// /api/client/features with a server token and evaluates locally; for every
// one of N seeded random contexts and every flag, isEnabled and getVariant
// must equal Gantry's own OFREP answer.
//
// Env: GANTRY_URL, GANTRY_SERVER_TOKEN, COMPAT_CONTEXTS (default 10000), COMPAT_SEED.
import { startUnleash, InMemStorageProvider } from 'unleash-client';
import { env, contexts, ofrepContext, ofrepBulk, expectedFromOfrep, variantDiff, pool, finish } from './common.mjs';

const base = env('GANTRY_URL');
const token = env('GANTRY_SERVER_TOKEN');
const n = Number(process.env.COMPAT_CONTEXTS || 10000);
const seed = Number(process.env.COMPAT_SEED || 20240601);

const summary = { sdk: 'unleash-client (node)', contexts: n, seed, flags: 0, checks: 0, failures: [] };

const unleash = await Promise.race([
  startUnleash({
    url: `${base}/api/`,
    appName: 'gantry-compat-node',
    instanceId: 'compat',
    customHeaders: { Authorization: token },
    refreshInterval: 3600 * 1000,
    disableMetrics: true,
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
  }),
  new Promise((_, reject) => setTimeout(() => reject(new Error('unleash-client did not synchronize within 20 s')), 20000)),
]);
unleash.on('error', (e) => summary.failures.push({ sdk_error: String(e) }));

const definitions = unleash.getFeatureToggleDefinitions();
// Only the Unleash flag set (compat/flags.json); the native typed flags are for OpenFeature.
const names = definitions.map((d) => d.name).filter((x) => x.startsWith('compat.')).sort();
summary.flags = names.length;
if (names.length < 20) summary.failures.push({ setup: `only ${names.length} flags reached the SDK` });

const ctxs = contexts(seed, n);
const answers = await pool(ctxs, 8, (ctx) => ofrepBulk(base, token, ofrepContext(ctx)));
const tally = {};
for (let i = 0; i < ctxs.length; i++) {
  const ctx = ctxs[i];
  const ofrep = answers[i];
  for (const name of names) {
    const f = ofrep.get(name);
    if (!f) {
      summary.failures.push({ flag: name, context: ctx, problem: 'missing from OFREP bulk answer' });
      continue;
    }
    const want = expectedFromOfrep(f);
    if (want.error) {
      summary.failures.push({ flag: name, context: ctx, problem: `OFREP error ${want.error}` });
      continue;
    }
    const enabled = unleash.isEnabled(name, ctx);
    const variant = unleash.getVariant(name, ctx);
    summary.checks += 2;
    const t = (tally[name] ||= { on: 0, off: 0 });
    t[want.enabled ? 'on' : 'off']++;
    if (enabled !== want.enabled) {
      summary.failures.push({ flag: name, context: ctx, isEnabled: enabled, ofrep: f });
    }
    const d = variantDiff(variant, want.variant);
    if (d) summary.failures.push({ flag: name, context: ctx, getVariant: d, ofrep: f });
  }
}
// A flag set that is all-on or all-off for 10,000 contexts exercises nothing.
summary.on_off = tally;
unleash.destroy();
finish(summary);
