// End-to-end test of the dashboard in a real browser: playwright-core
// driving Debian's chromium against a running `gantry serve`.
//
// Env: GANTRY_URL, GANTRY_ADMIN_TOKEN, SCREENSHOT_DIR (PNG per main page,
// desktop and phone width), CHROMIUM (default /usr/bin/chromium).
// Prints one JSON line per step and exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.GANTRY_URL;
const token = process.env.GANTRY_ADMIN_TOKEN;
const shots = process.env.SCREENSHOT_DIR || "dashboard-screenshots";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base || !token) {
  console.error("GANTRY_URL and GANTRY_ADMIN_TOKEN are required");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const FLAG = "e2e-checkout";
// Generous: the suite runs this next to CPU-heavy tests on two cores.
const TIMEOUT = 60000;

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

function step(name, extra) {
  console.log(JSON.stringify({ step: name, ok: true, ...(extra || {}) }));
}

async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) {}
  return { status: r.status, json, text };
}

async function shoot(page, name) {
  await page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // 1. Not signed in: the root leads to the sign-in form.
  await page.goto(base + "/");
  check(page.url().includes("/ui/sign-in"), "root redirects to sign-in, got " + page.url());
  await shoot(page, "sign-in-desktop");
  await page.getByLabel("Admin token").fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#sign-in-error").waitFor();
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/ui\/flags$/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "gantry_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "HttpOnly SameSite=Strict session cookie");
  // The refused token above answered 401 on purpose; count errors from here on.
  consoleErrors.length = 0;
  step("sign in");

  // Keyboard: the first Tab stop is the skip link, then the brand.
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check(first === "Skip to content", "first Tab stop is the skip link, got " + first);
  step("keyboard: skip link first");

  // 2. Create a flag.
  await page.getByLabel("Key").fill(FLAG);
  await page.getByLabel("Description").fill("Created by the browser test");
  await page.getByLabel("Tags").fill("e2e, web");
  await page.getByRole("button", { name: "Create flag" }).click();
  await page.waitForURL(new RegExp("/ui/flags/" + FLAG + "$"));
  check((await page.locator("h1").textContent()).includes(FLAG), "flag page heading");
  const created = await api("GET", "/api/v1/flags/" + FLAG);
  check(created.status === 200 && created.json.tags.join(",") === "e2e,web", "flag exists with its tags: " + created.text);
  step("create flag");

  // 3. A 25 % rollout in staging, with the slider.
  const staging = page.locator("#rules-staging");
  // Environments without rules start folded: open with the keyboard.
  await staging.locator("summary").focus();
  await page.keyboard.press("Enter");
  await staging.locator("select[name='r0.type']").selectOption("rollout");
  await staging.locator("#r-staging-0-pct").fill("25");
  check((await staging.locator("#r-staging-0-out").textContent()) === "25 %", "slider read-out shows 25 %");
  await staging.getByRole("button", { name: "Save rules in staging" }).click();
  await page.waitForURL(/#rules-staging$/);
  const afterRules = await api("GET", "/api/v1/flags/" + FLAG);
  const rule = afterRules.json.environments.staging.rules[0];
  check(rule.condition.type === "rollout" && rule.condition.percentage === 25, "staging has a 25 % rollout: " + afterRules.text);
  check((await page.locator("#env-staging").textContent()).includes("25 %"), "staging card says 25 %");
  step("25 % rollout in staging");

  // 4. On in production, after confirming.
  await page.locator("#env-production").getByRole("button", { name: "Turn on" }).click();
  await page.getByRole("heading", { name: /Turn .* on in production\?/ }).waitFor();
  check((await api("GET", "/api/v1/flags/" + FLAG)).json.environments.production === undefined, "nothing changed before confirming");
  await shoot(page, "confirm-desktop");
  await page.getByRole("button", { name: "Yes, turn it on in production" }).click();
  await page.waitForURL(/#env-production$/);
  await page.locator("#env-production .badge.big.on").waitFor();
  check((await api("GET", "/api/v1/flags/" + FLAG)).json.environments.production.enabled === true, "on in production");
  step("production on after confirmation");

  // 5. The audit entry.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Filter").fill(FLAG);
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/\/ui\/audit\?q=/);
  const entry = page.locator("li.card", { hasText: "flag.switch_on" }).first();
  await entry.waitFor();
  check((await entry.textContent()).includes(FLAG), "switch_on entry names the flag");
  await entry.locator("summary").click();
  check((await entry.locator("table.diff").textContent()).includes("environments.production.enabled"), "diff shows the switch");
  step("audit entry found");

  // 6. A toggle through the admin API appears without a reload.
  await page.goto(base + "/ui/flags/" + FLAG);
  await page.waitForFunction(() => document.getElementById("live-status").textContent === "live");
  await page.evaluate(() => { window.__noReload = true; });
  check(await page.locator("#env-development .badge.big.off").isVisible(), "development starts off");
  await page.locator("#env-development button").focus();
  const toggled = await api("POST", "/api/v1/flags/" + FLAG + "/environments/development/on");
  check(toggled.status === 200, "API toggle: " + toggled.text);
  await page.locator("#env-development .badge.big.on").waitFor();
  check(await page.evaluate(() => window.__noReload === true), "the page was not reloaded");
  check(await page.evaluate(() => !!document.activeElement.closest("#env-development")), "keyboard focus stays on the swapped section's button");
  step("live update from the API");

  // 7. The evaluation debugger.
  await page.getByLabel("Environment", { exact: true }).selectOption("production");
  await page.getByLabel("User id", { exact: true }).fill("user-42");
  await page.getByRole("button", { name: "Evaluate" }).click();
  const result = page.locator("#debug-result");
  await result.waitFor();
  check((await result.locator(".badge").first().textContent()) === "ON", "production serves ON to user-42");
  await page.getByLabel("Environment", { exact: true }).selectOption("staging");
  await page.getByRole("button", { name: "Evaluate" }).click();
  await page.waitForURL(/env=staging/);
  const why = await page.locator("#debug-result").textContent();
  check(why.includes("switched off in staging") || why.includes("switched off"), "staging explains it is off: " + why);
  step("evaluation debugger");
  await shoot(page, "flag-desktop");

  // 8. An experiment with data (through the API), so its page has results and a chart.
  check((await api("POST", "/api/v1/flags", {
    key: "e2e-button", variants: [{ name: "control", weight: 500 }, { name: "green", weight: 500 }],
    environments: { production: { enabled: true } },
  })).status === 201, "experiment flag");
  check((await api("POST", "/api/v1/experiments", {
    key: "e2e-exp", flag: "e2e-button", environment: "production", engine: "bayesian", hypothesis: "Green converts better",
    metrics: [{ name: "converted", event: "purchase", kind: "conversion", role: "primary" }],
  })).status === 201, "experiment created");
  check((await api("POST", "/api/v1/experiments/e2e-exp/start", {})).status === 200, "experiment started");
  const server = (await api("POST", "/api/v1/tokens", { kind: "server", environment: "production", name: "e2e events" })).json.secret;
  const events = [];
  for (let i = 0; i < 400; i++) {
    const variant = i % 2 === 0 ? "control" : "green";
    events.push({ type: "exposure", unit_id: "u" + i, flag: "e2e-button", variant });
    if ((variant === "control" && i % 5 === 0) || (variant === "green" && i % 3 === 0)) {
      events.push({ type: "track", unit_id: "u" + i, name: "purchase" });
    }
  }
  const sent = await fetch(base + "/api/v1/events", {
    method: "POST",
    headers: { authorization: "Bearer " + server, "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
  check(sent.status === 202, "events accepted");
  await page.goto(base + "/ui/experiments/e2e-exp");
  await page.locator("svg.chart").first().waitFor();
  step("experiment results with a chart");

  // 9. Maintenance: on in staging through the page (public status agrees), off again;
  //    a change made through the API appears without a reload.
  await page.getByRole("link", { name: "Maintenance" }).click();
  await page.waitForURL(/\/ui\/maintenance$/);
  const card = page.locator("#maintenance-staging");
  await card.getByLabel("Message for users").fill("Back at 14:00");
  await card.getByLabel(/Allowed user ids/).fill("ops-1, ops-2");
  await card.getByRole("button", { name: "Turn on maintenance in staging" }).click();
  await page.waitForURL(/#maintenance-staging$/);
  await page.locator("#maintenance-staging .badge.on").waitFor();
  const m = await api("GET", "/api/v1/environments/staging/maintenance");
  check(m.json.enabled === true && m.json.message === "Back at 14:00" && m.json.allow_users.join(",") === "ops-1,ops-2", "maintenance on: " + m.text);
  const status = await (await fetch(base + "/api/v1/status")).json();
  check(status.environments.find((e) => e.name === "staging").maintenance === true, "public status says staging is in maintenance");
  await shoot(page, "maintenance-on-desktop");
  await page.getByRole("button", { name: "Turn maintenance off in staging" }).click();
  await page.locator("#maintenance-staging .badge.off").waitFor();
  check((await api("GET", "/api/v1/environments/staging/maintenance")).json.enabled === false, "maintenance off again");
  await page.waitForFunction(() => document.getElementById("live-status").textContent === "live");
  await page.evaluate(() => { window.__noReload = true; });
  const viaApi = await api("PUT", "/api/v1/environments/development/maintenance", { enabled: true, message: "From the API" });
  check(viaApi.status === 200, "maintenance through the API: " + viaApi.text);
  await page.locator("#maintenance-development .badge.on").waitFor();
  check((await page.locator("#maintenance-development").textContent()).includes("From the API"), "live card shows the message");
  check(await page.evaluate(() => window.__noReload === true), "the maintenance page was not reloaded");
  check((await api("PUT", "/api/v1/environments/development/maintenance", { enabled: false })).status === 200, "development off");
  step("maintenance on and off in staging, live from the API");

  // 10. Releases: recorded through the API, the history and the version check; a new one appears live.
  for (const [version, env] of [["1.3.0", "production"], ["1.4.0", "staging"]]) {
    const r = await api("POST", "/api/v1/apps/e2e-shop/releases", { version, environment: env, commit: "9f1c2ab", notes: "Release " + version });
    check(r.status === 201, "release recorded: " + r.text);
  }
  await page.getByRole("link", { name: "Releases" }).click();
  await page.waitForURL(/\/ui\/releases$/);
  await page.getByLabel("App", { exact: true }).selectOption("e2e-shop");
  await page.getByLabel("Environment", { exact: true }).selectOption("production");
  await page.getByLabel("Current version", { exact: true }).fill("1.2.0");
  await page.getByRole("button", { name: "Check for an update" }).click();
  await page.waitForURL(/current=1\.2\.0/);
  check((await page.locator("#check-result").textContent()).includes("Update available"), "1.3.0 in production is an update for 1.2.0");
  await page.waitForFunction(() => document.getElementById("live-status").textContent === "live");
  await page.evaluate(() => { window.__noReload = true; });
  const rec = await api("POST", "/api/v1/apps/e2e-shop/releases", { version: "1.4.0", environment: "production", notes: "Faster checkout" });
  check(rec.status === 201, "release recorded: " + rec.text);
  await page.locator("#releases-history tr", { hasText: "Faster checkout" }).waitFor();
  check((await page.locator("#releases-latest").textContent()).includes("1.4.0"), "latest in production is 1.4.0");
  check((await page.locator("#check-result").textContent()).includes("1.4.0"), "the check follows the new release");
  check(await page.evaluate(() => window.__noReload === true), "the releases page was not reloaded");
  step("releases recorded through the API appear live");

  // 11. Rollouts: one created through the API, paused and resumed on its page.
  check((await api("POST", "/api/v1/flags", {
    key: "e2e-ramp", environments: { staging: { enabled: true, rules: [{ condition: { type: "rollout", percentage: 0 } }] } },
  })).status === 201, "rollout flag");
  const ro = await api("POST", "/api/v1/rollouts", {
    target: { flag: "e2e-ramp", environment: "staging" },
    steps: [{ kind: "ramp", percentage: 10, hold_ms: 3600000 }, { kind: "approval" }, { kind: "ramp", percentage: 100 }],
    guardrails: [{ name: "errors", metric: "error_rate", condition: { kind: "threshold", op: ">", value: 0.05 }, interval_ms: 3600000 }],
  });
  check(ro.status === 201, "rollout created: " + ro.text);
  await page.getByRole("link", { name: "Rollouts" }).click();
  await page.waitForURL(/\/ui\/rollouts$/);
  await page.getByRole("link", { name: "e2e-ramp" }).click();
  await page.waitForURL(/\/ui\/rollouts\/staging\/e2e-ramp$/);
  check((await page.locator("ol.timeline li[aria-current=step]").textContent()).includes("10%"), "step 1 (10 %) is current");
  await page.getByRole("button", { name: "Pause", exact: true }).click();
  await page.waitForURL(/#rollout-summary$/);
  await page.locator("#rollout-summary h2 .badge", { hasText: "paused" }).waitFor();
  check((await api("GET", "/api/v1/rollouts/staging/e2e-ramp")).json.state.status === "paused", "paused through the page");
  await shoot(page, "rollout-paused-desktop");
  await page.getByRole("button", { name: "Resume", exact: true }).click();
  await page.locator("#rollout-summary h2 .badge", { hasText: "progressing" }).waitFor();
  check((await api("GET", "/api/v1/rollouts/staging/e2e-ramp")).json.state.status === "progressing", "resumed through the page");
  const actions = (await api("GET", "/api/v1/audit?limit=5")).json.items.map((e) => e.action);
  check(actions.includes("rollout.paused") && actions.includes("rollout.resumed"), "audited: " + actions.join(","));
  step("rollout paused and resumed on its page");

  // 12. Alerts: a rule and a notifier (its URL's secret never shown).
  check((await api("POST", "/api/v1/notifiers", { key: "e2e-ops", kind: "webhook", url: "https://alerts.example.com/hooks/e2e-SECRET" })).status === 201, "notifier");
  const alertRule = await api("POST", "/api/v1/alert-rules", {
    name: "e2e-ramp-errors", metric: "error_rate", condition: { kind: "threshold", op: ">", value: 0.1 },
    annotations: { summary: "e2e-ramp errors above 10 %" }, target: { flag: "e2e-ramp", environment: "staging" },
    actions: [{ type: "abort_rollout", flag: "e2e-ramp", environment: "staging" }],
  });
  check(alertRule.status === 201, "alert rule: " + alertRule.text);
  await page.getByRole("link", { name: "Alerts" }).click();
  await page.waitForURL(/\/ui\/alerts$/);
  check((await page.locator("#rule-e2e-ramp-errors").textContent()).includes("abort the rollout of e2e-ramp"), "rule with its action");
  const notifiers = await page.locator("#alerts-notifiers").textContent();
  check(notifiers.includes("https://alerts.example.com") && !notifiers.includes("SECRET"), "notifier origin only");
  step("alerts page lists the rule and the notifier");

  // 13. A screenshot of every main page, desktop and phone width.
  const pages = [
    ["flags", "/ui/flags"],
    ["flag", "/ui/flags/" + FLAG],
    ["segments", "/ui/segments"],
    ["environments", "/ui/environments"],
    ["experiments", "/ui/experiments"],
    ["experiment", "/ui/experiments/e2e-exp"],
    ["maintenance", "/ui/maintenance"],
    ["releases", "/ui/releases?app=e2e-shop&env=production&current=1.3.0"],
    ["rollouts", "/ui/rollouts"],
    ["rollout", "/ui/rollouts/staging/e2e-ramp"],
    ["alerts", "/ui/alerts"],
    ["tokens", "/ui/tokens"],
    ["audit", "/ui/audit"],
  ];
  for (const [name, path] of pages) {
    await page.goto(base + path);
    await shoot(page, name + "-desktop");
  }
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, path] of pages) {
    await page.goto(base + path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, name + " fits a 390 px wide screen (overflow " + overflow + " px)");
    await shoot(page, name + "-phone");
  }
  step("screenshots", { dir: shots });

  // 14. Sign out ends the session.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(base + "/ui/flags");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/ui\/sign-in/);
  await page.goto(base + "/ui/flags");
  check(page.url().includes("/ui/sign-in"), "signed out: back to sign-in");
  step("sign out");

  check(consoleErrors.length === 0, "no console errors: " + consoleErrors.join(" | "));
  await context.close();
} catch (e) {
  failed = e;
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
