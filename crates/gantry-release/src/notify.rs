//! Notification policy (Alertmanager semantics, delivery.md §4.2): grouping, group wait and
//! interval, repeat interval, resolved notices; delivery retries with seeded jitter and
//! `Retry-After`; payload builders for the Alertmanager v4 webhook and Slack.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::rng::hash_unit;
use crate::time::{parse_retry_after, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::Timestamp;

/// Firing or resolved, as notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyStatus {
    /// Firing.
    Firing,
    /// Resolved.
    Resolved,
}

impl NotifyStatus {
    fn as_str(self) -> &'static str {
        match self {
            NotifyStatus::Firing => "firing",
            NotifyStatus::Resolved => "resolved",
        }
    }
}

/// One alert instance handed to the notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity labels (include `alertname`).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Firing or resolved.
    pub status: NotifyStatus,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// Link back to the rule or dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// [`fingerprint`] of the labels.
    pub fingerprint: String,
}

/// Stable 16-hex-digit fingerprint of a label set (FNV-1a 64 over sorted `name\xffvalue\xff`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Grouping and timing (defaults: group by `alertname`, 30 s / 5 min / 4 h, resolved sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPolicy {
    /// Labels that define a group; `["..."]` = every alert on its own.
    #[serde(default = "d_group_by")]
    pub group_by: Vec<String>,
    /// Wait before the first notification of a new group.
    #[serde(default = "d_wait")]
    pub group_wait_ms: u64,
    /// Time between notifications about changes in a group.
    #[serde(default = "d_interval")]
    pub group_interval_ms: u64,
    /// Re-send an unchanged firing group after this long.
    #[serde(default = "d_repeat")]
    pub repeat_interval_ms: u64,
    /// Send notices when alerts resolve (default true; Alertmanager's Slack default is false,
    /// but recovery notices are wanted here).
    #[serde(default = "d_true")]
    pub send_resolved: bool,
}

fn d_group_by() -> Vec<String> {
    vec!["alertname".into()]
}
fn d_wait() -> u64 {
    30 * SECOND_MS
}
fn d_interval() -> u64 {
    5 * MINUTE_MS
}
fn d_repeat() -> u64 {
    4 * HOUR_MS
}
fn d_true() -> bool {
    true
}

impl Default for GroupPolicy {
    fn default() -> Self {
        GroupPolicy {
            group_by: d_group_by(),
            group_wait_ms: d_wait(),
            group_interval_ms: d_interval(),
            repeat_interval_ms: d_repeat(),
            send_resolved: true,
        }
    }
}

impl GroupPolicy {
    fn group_labels(&self, alert: &Alert) -> BTreeMap<String, String> {
        if self.group_by.iter().any(|g| g == "...") {
            return alert.labels.clone();
        }
        self.group_by.iter().filter_map(|k| alert.labels.get(k).map(|v| (k.clone(), v.clone()))).collect()
    }
}

/// `{}:{k="v",…}`: the group key (route key `{}` as we have a single route).
pub fn group_key(group_labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = group_labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{}}:{{{}}}", inner.join(","))
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// First notification of the group.
    First,
    /// New firing alerts.
    NewFiring,
    /// Newly resolved alerts.
    NewResolved,
    /// Everything resolved.
    AllResolved,
    /// Repeat of an unchanged firing group.
    Repeat,
}

/// One group's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The group labels.
    pub group_labels: BTreeMap<String, String>,
    /// Current alerts by fingerprint.
    pub alerts: BTreeMap<String, Alert>,
    /// When the group flushes next.
    pub next_flush_at: Timestamp,
    /// Last successful send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<Timestamp>,
    /// Firing fingerprints in the last send.
    #[serde(default)]
    pub last_firing: BTreeSet<String>,
    /// Resolved fingerprints in the last send.
    #[serde(default)]
    pub last_resolved: BTreeSet<String>,
}

/// Persistable notifier state for one receiver: groups by key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotifyState {
    /// Groups by key.
    pub groups: BTreeMap<String, GroupState>,
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Group key.
    pub group_key: String,
    /// Group labels.
    pub group_labels: BTreeMap<String, String>,
    /// Why.
    pub reason: Reason,
    /// Firing alerts first, then resolved ones.
    pub alerts: Vec<Alert>,
}

impl Notification {
    /// `firing` if any alert fires, else `resolved`.
    pub fn status(&self) -> NotifyStatus {
        if self.alerts.iter().any(|a| a.status == NotifyStatus::Firing) {
            NotifyStatus::Firing
        } else {
            NotifyStatus::Resolved
        }
    }
}

impl NotifyState {
    /// Adds or updates alerts (call with every firing/resolved alert after each rule evaluation).
    /// A new group flushes after `group_wait`.
    pub fn ingest(&mut self, policy: &GroupPolicy, alerts: &[Alert], now: Timestamp) {
        for a in alerts {
            let labels = policy.group_labels(a);
            let key = group_key(&labels);
            let g = self.groups.entry(key).or_insert_with(|| GroupState {
                group_labels: labels,
                alerts: BTreeMap::new(),
                next_flush_at: now.plus(policy.group_wait_ms),
                last_sent_at: None,
                last_firing: BTreeSet::new(),
                last_resolved: BTreeSet::new(),
            });
            g.alerts.insert(a.fingerprint.clone(), a.clone());
        }
    }

    /// The earliest flush time, for the controller's sleep.
    pub fn next_flush_at(&self) -> Option<Timestamp> {
        self.groups.values().map(|g| g.next_flush_at).min()
    }

    /// Flushes every group that is due and returns what to send. Call [`NotifyState::ingest`]
    /// first. The sends are recorded as done; if delivery finally fails, the next flush does not
    /// resend unchanged content before the repeat interval (as Alertmanager, whose dedup log is
    /// written only on success, would) — keep the pre-flush state if you want that instead.
    pub fn flush(&mut self, policy: &GroupPolicy, now: Timestamp) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut().filter(|(_, g)| g.next_flush_at <= now) {
            g.next_flush_at = now.plus(policy.group_interval_ms);
            let firing: BTreeSet<String> =
                g.alerts.values().filter(|a| a.status == NotifyStatus::Firing).map(|a| a.fingerprint.clone()).collect();
            let resolved: BTreeSet<String> =
                g.alerts.values().filter(|a| a.status == NotifyStatus::Resolved).map(|a| a.fingerprint.clone()).collect();
            let reason = match g.last_sent_at {
                None if firing.is_empty() => None, // resolved within group_wait: never notified
                None => Some(Reason::First),
                Some(_) if !firing.is_subset(&g.last_firing) => {
                    Some(if g.last_firing.is_empty() { Reason::First } else { Reason::NewFiring })
                }
                Some(_) if firing.is_empty() && !g.last_firing.is_empty() => Some(Reason::AllResolved),
                Some(_) if policy.send_resolved && !resolved.is_subset(&g.last_resolved) && !firing.is_empty() => Some(Reason::NewResolved),
                Some(last) if !firing.is_empty() && now.since(last) >= policy.repeat_interval_ms => Some(Reason::Repeat),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                let mut alerts: Vec<Alert> = g.alerts.values().filter(|a| a.status == NotifyStatus::Firing).cloned().collect();
                if policy.send_resolved || reason == Reason::AllResolved {
                    alerts.extend(g.alerts.values().filter(|a| a.status == NotifyStatus::Resolved).cloned());
                }
                out.push(Notification { group_key: key.clone(), group_labels: g.group_labels.clone(), reason, alerts });
                g.last_sent_at = Some(now);
                g.last_firing = firing;
                g.last_resolved = resolved.clone();
            }
            // Resolved alerts that were notified (or never will be) leave the group.
            if reason.is_some() || g.last_sent_at.is_none() || !policy.send_resolved {
                g.alerts.retain(|fp, a| a.status == NotifyStatus::Firing || !(resolved.contains(fp)));
            }
            if g.alerts.is_empty() {
                empty.push(key.clone());
            }
        }
        for k in empty {
            self.groups.remove(&k);
        }
        out
    }
}

fn common<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut it = maps;
    let Some(first) = it.next() else { return BTreeMap::new() };
    let mut acc = first.clone();
    for m in it {
        acc.retain(|k, v| m.get(k) == Some(v));
    }
    acc
}

/// The Alertmanager webhook body, `version: "4"` (delivery.md §4.3). `max_alerts` 0 = all;
/// the rest are counted in `truncatedAlerts`. Still-firing alerts carry the zero `endsAt`.
pub fn webhook_payload(n: &Notification, receiver: &str, external_url: &str, max_alerts: usize) -> Value {
    let limit = if max_alerts == 0 { n.alerts.len() } else { max_alerts.min(n.alerts.len()) };
    let alerts: Vec<Value> = n.alerts[..limit]
        .iter()
        .map(|a| {
            json!({
                "status": a.status.as_str(),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at.to_rfc3339(),
                "endsAt": a.ends_at.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), Timestamp::to_rfc3339),
                "generatorURL": a.generator_url.clone().unwrap_or_default(),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - limit,
        "status": n.status().as_str(),
        "receiver": receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common(n.alerts.iter().map(|a| &a.labels)),
        "commonAnnotations": common(n.alerts.iter().map(|a| &a.annotations)),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack incoming-webhook body: `text` fallback (`[FIRING:2] …` / `[RESOLVED] …`) and one
/// attachment coloured `danger`/`good` holding Block Kit blocks (header, one section per alert
/// up to 10, a context line with the link). User content is escaped.
pub fn slack_payload(n: &Notification, external_url: &str) -> Value {
    let status = n.status();
    let firing = n.alerts.iter().filter(|a| a.status == NotifyStatus::Firing).count();
    let group: Vec<&str> = n.group_labels.values().map(String::as_str).collect();
    let title = match status {
        NotifyStatus::Firing => format!("[FIRING:{firing}] {}", group.join(" ")),
        NotifyStatus::Resolved => format!("[RESOLVED] {}", group.join(" ")),
    };
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": title.chars().take(150).collect::<String>()}})];
    for a in n.alerts.iter().take(10) {
        let name = a.labels.get("alertname").map_or("alert", String::as_str);
        let summary = a.annotations.get("summary").or_else(|| a.annotations.get("description")).map_or("", String::as_str);
        let icon = if a.status == NotifyStatus::Firing { ":red_circle:" } else { ":large_green_circle:" };
        let mut text = format!("{icon} *{}* ({}) since {}", escape(name), a.status.as_str(), a.starts_at.to_rfc3339());
        if !summary.is_empty() {
            text.push('\n');
            text.push_str(&escape(summary));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text.chars().take(3000).collect::<String>()}}));
    }
    if n.alerts.len() > 10 {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("and {} more", n.alerts.len() - 10)}]}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{}|Open Gantry>", escape(external_url))}]}));
    json!({
        "text": escape(&title),
        "attachments": [{
            "color": if status == NotifyStatus::Firing { "danger" } else { "good" },
            "fallback": escape(&title),
            "blocks": blocks,
        }],
    })
}

/// Delivery retry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    #[serde(default = "d_base")]
    pub base_delay_ms: u64,
    /// Cap of the exponential delay.
    #[serde(default = "d_max")]
    pub max_delay_ms: u64,
    /// Growth per attempt.
    #[serde(default = "d_mult")]
    pub multiplier: f64,
    /// Relative jitter: the delay is spread uniformly over ±`jitter` of itself.
    #[serde(default = "d_jitter")]
    pub jitter: f64,
    /// Attempts in total (the first included).
    #[serde(default = "d_attempts")]
    pub max_attempts: u32,
    /// Longest `Retry-After` honoured; longer ones give up.
    #[serde(default = "d_retry_after")]
    pub max_retry_after_ms: u64,
}

fn d_base() -> u64 {
    SECOND_MS
}
fn d_max() -> u64 {
    MINUTE_MS
}
fn d_mult() -> f64 {
    2.0
}
fn d_jitter() -> f64 {
    0.2
}
fn d_attempts() -> u32 {
    6
}
fn d_retry_after() -> u64 {
    10 * MINUTE_MS
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay_ms: d_base(),
            max_delay_ms: d_max(),
            multiplier: d_mult(),
            jitter: d_jitter(),
            max_attempts: d_attempts(),
            max_retry_after_ms: d_retry_after(),
        }
    }
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptResult {
    /// An HTTP response.
    Status {
        /// Status code.
        code: u16,
        /// The `Retry-After` header, verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
    /// No response in time.
    Timeout,
    /// Connection-level failure.
    Network,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RetryDecision {
    /// Delivered.
    Done,
    /// Try again at this time.
    RetryAt {
        /// When.
        at: Timestamp,
    },
    /// Stop (4xx other than 408/429, attempts exhausted, or `Retry-After` too long).
    GiveUp,
}

/// Decides after attempt number `attempt` (1 = first). 2xx is done; 429 waits `Retry-After`
/// (or backs off without one); 408, 5xx, timeouts and network errors back off exponentially
/// with jitter derived from `seed` (pass e.g. a hash of the group key, so retries of different
/// groups spread out but a replay is identical); other 4xx give up.
pub fn next_attempt(policy: &RetryPolicy, attempt: u32, result: &AttemptResult, now: Timestamp, seed: u64) -> RetryDecision {
    let retry_after = match result {
        AttemptResult::Status { code, .. } if (200..300).contains(code) => return RetryDecision::Done,
        AttemptResult::Status { code: 429, retry_after } => retry_after.as_deref().and_then(|v| parse_retry_after(v, now)),
        AttemptResult::Status { code, .. } if *code == 408 || *code >= 500 => None,
        AttemptResult::Status { .. } => return RetryDecision::GiveUp,
        AttemptResult::Timeout | AttemptResult::Network => None,
    };
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    let u = hash_unit(seed, u64::from(attempt), 0x5eed);
    let delay = match retry_after {
        Some(ra) if ra > policy.max_retry_after_ms => return RetryDecision::GiveUp,
        // Honour the server's wish exactly, plus up to `jitter` × base so clients do not return in lockstep.
        Some(ra) => ra + (u * policy.jitter * policy.base_delay_ms as f64) as u64,
        None => {
            let exp = policy.base_delay_ms as f64 * policy.multiplier.powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
            let capped = exp.min(policy.max_delay_ms as f64);
            (capped * (1.0 - policy.jitter + 2.0 * policy.jitter * u)).max(0.0) as u64
        }
    };
    RetryDecision::RetryAt { at: now.plus(delay) }
}
