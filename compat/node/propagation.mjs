// Propagation with the Unleash Node SDK at its default settings (it polls
// /api/client/features every 15 s): N instances, T toggles through Gantry's
// admin API; time from sending each toggle to each instance seeing it.
import { Unleash } from 'unleash-client';

const { GANTRY_URL, SERVER_TOKEN, ADMIN_TOKEN } = process.env;
const N = Number(process.env.INSTANCES || 10);
const T = Number(process.env.TOGGLES || 20);
const FLAG = 'propagate';

const clients = [];
for (let i = 0; i < N; i++) {
  const c = new Unleash({
    url: `${GANTRY_URL}/api/`,
    appName: `propagation-${i}`,
    customHeaders: { Authorization: SERVER_TOKEN },
    disableMetrics: true,
  });
  clients.push(c);
}
await Promise.all(clients.map((c) => new Promise((res) => c.once('synchronized', res))));

const lat = [];
for (let r = 0; r < T; r++) {
  const want = r % 2 === 0;
  const t0 = performance.now();
  const res = await fetch(`${GANTRY_URL}/api/v1/flags/${FLAG}/environments/production/${want ? 'on' : 'off'}`, {
    method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!res.ok) throw new Error(`toggle failed: ${res.status}`);
  const pending = new Set(clients.keys());
  while (pending.size > 0) {
    for (const i of [...pending]) {
      if (clients[i].isEnabled(FLAG) === want) {
        lat.push(performance.now() - t0);
        pending.delete(i);
      }
    }
    await new Promise((r2) => setTimeout(r2, 5));
  }
}
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.round((lat.length - 1) * p))];
console.log(JSON.stringify({ instances: N, toggles: T, samples: lat.length, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: lat[lat.length - 1] }));
clients.forEach((c) => c.destroy());
