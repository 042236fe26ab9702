//! `gantry rollout ...`: staged rollouts through the HTTP admin API of a
//! running server (`--server`/`GANTRY_SERVER_URL`, `--token`/`GANTRY_TOKEN`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_api_types::{ApiErrorBody, RolloutResponse};
use serde_json::{json, Value};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Server base URL, as for `gantry maintenance` and `gantry release`
    /// (default: GANTRY_SERVER_URL, else GANTRY_URL, else http://127.0.0.1:4242).
    #[arg(long = "server", visible_alias = "url", value_name = "URL")]
    pub url: Option<String>,
    /// Admin token (default: GANTRY_TOKEN, else GANTRY_ADMIN_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Names one rollout.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Flag key.
    #[arg(long)]
    pub flag: String,
    /// Environment.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
}

/// Rollout subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Create a rollout and start it.
    Create {
        #[command(flatten)]
        target: Target,
        /// Steps: `PCT[:HOLD]` or `approval`, comma-separated (`10:5m,25:5m,approval,100`).
        #[arg(long, value_name = "STEPS", required_unless_present = "plan")]
        steps: Option<String>,
        /// Rule id whose percentage is ramped (default: the first rollout rule).
        #[arg(long)]
        rule: Option<String>,
        /// Roll back when the rollout arm's error rate exceeds this fraction (e.g. 0.05).
        #[arg(long, value_name = "FRACTION")]
        max_error_rate: Option<f64>,
        /// Guardrail window (default 5m).
        #[arg(long, value_name = "DURATION", default_value = "5m")]
        window: String,
        /// Guardrail evaluation interval (default 30s).
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        interval: String,
        /// Fewer requests than this in the window give no verdict.
        #[arg(long, default_value_t = 0)]
        min_requests: u64,
        /// The whole request body as JSON (overrides the options above).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Create without starting (start later with `resume`).
        #[arg(long)]
        no_start: bool,
    },
    /// Show one rollout, or all.
    Status {
        /// Flag key (with --env: one rollout).
        #[arg(long)]
        flag: Option<String>,
        /// Environment.
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Print the JSON.
        #[arg(long)]
        json: bool,
    },
    /// Go to the next step now.
    Promote {
        #[command(flatten)]
        target: Target,
        /// Skip every remaining step.
        #[arg(long)]
        full: bool,
    },
    /// Pause.
    Pause {
        #[command(flatten)]
        target: Target,
    },
    /// Resume (or start a rollout created with --no-start).
    Resume {
        #[command(flatten)]
        target: Target,
    },
    /// Abort: the flag goes back to 0 %.
    Abort {
        #[command(flatten)]
        target: Target,
    },
    /// Start over after a rollback or abort.
    Retry {
        #[command(flatten)]
        target: Target,
    },
}

/// `30s`, `5m`, `2h`, `1500ms` or plain seconds, in milliseconds.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else if let Some(n) = s.strip_suffix('d') {
        (n, 86_400_000)
    } else {
        (s, 1_000)
    };
    let n: u64 = num.trim().parse().with_context(|| format!("`{s}` is not a duration like 30s, 5m or 2h"))?;
    Ok(n * mult)
}

/// `10:5m,25:5m,approval,100` as plan steps.
pub fn parse_steps(spec: &str) -> anyhow::Result<Vec<Value>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.eq_ignore_ascii_case("approval") {
                return Ok(json!({"kind": "approval"}));
            }
            let (pct, hold) = s.split_once(':').unwrap_or((s, "0"));
            let pct: f64 = pct.trim().trim_end_matches('%').parse().with_context(|| format!("step `{s}`: not a percentage"))?;
            Ok(json!({"kind": "ramp", "percentage": pct, "hold_ms": parse_duration_ms(hold)?}))
        })
        .collect()
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(remote: &Remote, env: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Client> {
        let base = remote
            .url
            .clone()
            .or_else(|| env.get("GANTRY_SERVER_URL").cloned())
            .or_else(|| env.get("GANTRY_URL").cloned())
            .unwrap_or_else(|| "http://127.0.0.1:4242".into());
        let token = remote
            .token
            .clone()
            .or_else(|| env.get("GANTRY_TOKEN").cloned())
            .or_else(|| env.get("GANTRY_ADMIN_TOKEN").cloned())
            .context("an admin token is needed: --token or GANTRY_TOKEN")?;
        Ok(Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_owned(), token })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = r.status();
        let text = r.text().await.context("reading the answer")?;
        if !status.is_success() {
            let msg = serde_json::from_str::<ApiErrorBody>(&text).map_or(text.clone(), |e| {
                let fields: Vec<String> = e.fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
                if fields.is_empty() {
                    format!("{} ({})", e.message, e.code)
                } else {
                    format!("{} ({}): {}", e.message, e.code, fields.join("; "))
                }
            });
            anyhow::bail!("{status}: {msg}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text).context("the answer is not JSON")? })
    }
}

fn summary(r: &RolloutResponse) -> String {
    let s = &r.state;
    let status = serde_json::to_value(s.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let mut line = format!("{}  {status}  step {}/{}  {}", r.key, s.step + 1, r.plan.steps.len(), s.percentage);
    if let Some(c) = &s.pause_cause {
        line.push_str(&format!("  cause: {}", serde_json::to_string(c).unwrap_or_default()));
    }
    for (name, g) in &s.guardrails {
        line.push_str(&format!("  [{name}: {:?}]", g.status));
    }
    if let Some(w) = r.next_wakeup {
        line.push_str(&format!("  next: {w}"));
    }
    line
}

fn path_of(t: &Target) -> String {
    format!("/api/v1/rollouts/{}/{}", t.environment, t.flag)
}

/// Runs one rollout subcommand.
#[allow(clippy::print_stdout)]
pub async fn run(remote: &Remote, cmd: RolloutCommand, env: &std::collections::BTreeMap<String, String>) -> anyhow::Result<ExitCode> {
    let c = Client::new(remote, env)?;
    let post = reqwest::Method::POST;
    let answer = match cmd {
        RolloutCommand::Create { target, steps, rule, max_error_rate, window, interval, min_requests, plan, no_start } => {
            let mut body = match plan {
                Some(file) => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?
                }
                None => {
                    let mut b = json!({"target": {"flag": target.flag, "environment": target.environment}});
                    b["steps"] = Value::Array(parse_steps(steps.as_deref().unwrap_or_default())?);
                    if let Some(r) = rule {
                        b["target"]["rule"] = json!(r);
                    }
                    if let Some(rate) = max_error_rate {
                        b["guardrails"] = json!([{
                            "name": "error-rate", "metric": "error_rate",
                            "condition": {"kind": "threshold", "op": ">", "value": rate},
                            "window_ms": parse_duration_ms(&window)?, "interval_ms": parse_duration_ms(&interval)?,
                            "min_requests": min_requests
                        }]);
                    }
                    b
                }
            };
            if no_start {
                body["start"] = json!(false);
            }
            c.send(post, "/api/v1/rollouts", Some(&body)).await?
        }
        RolloutCommand::Status { flag, environment, json } => {
            let v = match (flag, environment) {
                (Some(f), Some(e)) => c.send(reqwest::Method::GET, &path_of(&Target { flag: f, environment: e }), None).await?,
                (None, None) => c.send(reqwest::Method::GET, "/api/v1/rollouts", None).await?,
                _ => anyhow::bail!("give both --flag and --env, or neither"),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let items: Vec<RolloutResponse> = match v {
                Value::Array(_) => serde_json::from_value(v)?,
                one => vec![serde_json::from_value(one)?],
            };
            if items.is_empty() {
                println!("no rollouts");
            }
            for r in &items {
                println!("{}", summary(r));
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Promote { target, full } => {
            c.send(post, &format!("{}/promote", path_of(&target)), Some(&json!({"full": full}))).await?
        }
        RolloutCommand::Pause { target } => c.send(post, &format!("{}/pause", path_of(&target)), None).await?,
        RolloutCommand::Resume { target } => c.send(post, &format!("{}/resume", path_of(&target)), None).await?,
        RolloutCommand::Abort { target } => c.send(post, &format!("{}/abort", path_of(&target)), None).await?,
        RolloutCommand::Retry { target } => c.send(post, &format!("{}/retry", path_of(&target)), None).await?,
    };
    let r: RolloutResponse = serde_json::from_value(answer).context("unexpected answer")?;
    println!("{}", summary(&r));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_durations_parse() {
        assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
        assert_eq!(parse_duration_ms("1500ms").unwrap(), 1_500);
        assert_eq!(parse_duration_ms("7").unwrap(), 7_000);
        assert!(parse_duration_ms("soon").is_err());
        let s = parse_steps("10:30s, approval,100").unwrap();
        assert_eq!(s[0], json!({"kind": "ramp", "percentage": 10.0, "hold_ms": 30000}));
        assert_eq!(s[1], json!({"kind": "approval"}));
        assert_eq!(s[2]["hold_ms"], 0);
        assert!(parse_steps("ten").is_err());
    }
}
