//! Alert rules and the notifier with an injected clock.

use std::collections::BTreeMap;

use gantry_release::alert::{evaluate_alert, to_alert, AlertAction, AlertRule, AlertState, AlertStatus};
use gantry_release::guardrail::{Check, Condition, Measurement, Metric, NoDataPolicy, Op};
use gantry_release::notify::{
    next_attempt, slack_payload, webhook_payload, AttemptResult, GroupPolicy, NotifyState, Reason, RetryDecision, RetryPolicy,
};
use gantry_release::time::{MINUTE_MS, SECOND_MS};
use gantry_release::{Effect, Timestamp};

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn rule(name: &str, for_min: u64, keep_min: u64) -> AlertRule {
    AlertRule {
        name: name.into(),
        check: Check {
            metric: Metric::Scalar,
            condition: Condition::Threshold { op: Op::Gt, value: 0.05 },
            window_ms: 5 * MINUTE_MS,
            min_requests: 0,
            on_no_data: NoDataPolicy::Inconclusive,
        },
        interval_ms: MINUTE_MS,
        for_ms: for_min * MINUTE_MS,
        keep_firing_for_ms: keep_min * MINUTE_MS,
        resolved_retention_ms: 15 * MINUTE_MS,
        labels: BTreeMap::from([("severity".into(), "page".into()), ("team".into(), "checkout".into())]),
        annotations: BTreeMap::from([("summary".into(), "Error rate above 5 % <on> checkout".into())]),
        actions: vec![AlertAction::AbortRollout { flag: "new-checkout".into(), environment: "prod".into() }, AlertAction::MaintenanceMode],
    }
}

fn v(x: f64) -> Measurement {
    Measurement::Value { value: x }
}

#[test]
fn for_and_keep_firing_for_follow_prometheus() {
    let r = rule("HighErrorRate", 5, 3);
    let mut s = AlertState::default();
    let mut statuses = Vec::new();
    // minute: 0..=2 fine, 3..=12 bad, 13.. fine
    for m in 0..=35u64 {
        let now = T0.plus(m * MINUTE_MS);
        assert!(s.is_due(&r, now));
        let val = if (3..=12).contains(&m) { 0.2 } else { 0.01 };
        let out = evaluate_alert(&r, &s, &v(val), now);
        if out.change.is_some_and(|c| c.to == AlertStatus::Firing) {
            assert_eq!(
                out.effects,
                vec![
                    Effect::AbortRollout { flag: "new-checkout".into(), environment: "prod".into() },
                    Effect::MaintenanceMode { enabled: true }
                ]
            );
        } else {
            assert!(out.effects.is_empty());
        }
        s = out.state;
        statuses.push(s.status);
    }
    use AlertStatus::*;
    assert_eq!(&statuses[..3], &[Inactive; 3]);
    assert_eq!(&statuses[3..8], &[Pending; 5], "pending for 5 minutes");
    assert_eq!(statuses[8], Firing, "fires at 3 + 5");
    assert_eq!(&statuses[13..16], &[Firing; 3], "keeps firing 3 minutes from the first miss at 13");
    assert_eq!(statuses[16], Resolved);
    assert_eq!(statuses[30], Resolved, "kept 15 minutes for the notifier");
    assert_eq!(statuses[31], Inactive);
    assert_eq!(s.fired_at, Some(T0.plus(8 * MINUTE_MS)));
}

#[test]
fn pending_resets_on_one_good_evaluation_and_errors_change_nothing() {
    let r = rule("HighErrorRate", 5, 0);
    let mut s = AlertState::default();
    for (m, val) in [(0, Some(0.2)), (1, Some(0.2)), (2, None), (3, Some(0.2)), (4, Some(0.01)), (5, Some(0.2))] {
        let meas = val.map_or(Measurement::Error { message: "query timeout".into() }, v);
        s = evaluate_alert(&r, &s, &meas, T0.plus(m * MINUTE_MS)).state;
    }
    assert_eq!(s.status, AlertStatus::Pending);
    assert_eq!(s.active_since, Some(T0.plus(5 * MINUTE_MS)));
    // for = 0 fires at once; no keep_firing_for resolves at once.
    let r0 = rule("Now", 0, 0);
    let s = evaluate_alert(&r0, &AlertState::default(), &v(1.0), T0).state;
    assert_eq!(s.status, AlertStatus::Firing);
    assert_eq!(evaluate_alert(&r0, &s, &v(0.0), T0.plus(MINUTE_MS)).state.status, AlertStatus::Resolved);
    assert_eq!(
        evaluate_alert(&r0, &s, &Measurement::NoData, T0.plus(MINUTE_MS)).state.status,
        AlertStatus::Resolved,
        "no data (inconclusive) is not a breach"
    );
}

#[test]
fn grouping_wait_interval_repeat_and_resolved() {
    let policy = GroupPolicy { group_by: vec!["team".into()], ..GroupPolicy::default() };
    let mut ns = NotifyState::default();
    let (ra, rb) = (rule("HighErrorRate", 0, 0), rule("HighLatency", 0, 0));
    let fire = |r: &AlertRule, at: Timestamp| evaluate_alert(r, &AlertState::default(), &v(1.0), at).state;
    let sa = fire(&ra, T0);
    ns.ingest(&policy, &[to_alert(&ra, &sa, Some("https://gantry.example/alerts")).unwrap()], T0);
    assert!(ns.flush(&policy, T0.plus(29 * SECOND_MS)).is_empty(), "group_wait 30 s");
    // A second alert of the same group arrives during group_wait: one notification with both.
    let sb = fire(&rb, T0.plus(10 * SECOND_MS));
    ns.ingest(&policy, &[to_alert(&rb, &sb, None).unwrap()], T0.plus(10 * SECOND_MS));
    let n = ns.flush(&policy, T0.plus(30 * SECOND_MS));
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].reason, n[0].alerts.len()), (Reason::First, 2));
    assert_eq!(n[0].group_key, r#"{}:{team="checkout"}"#);
    let body = webhook_payload(&n[0], "ops-webhook", "https://gantry.example", 1);
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["truncatedAlerts"], 1);
    assert_eq!(body["groupLabels"]["team"], "checkout");
    assert_eq!(body["commonLabels"]["severity"], "page");
    assert!(body["commonLabels"].get("alertname").is_none(), "differs between the two alerts");
    let all = webhook_payload(&n[0], "ops-webhook", "https://gantry.example", 0);
    assert_eq!(all["truncatedAlerts"], 0);
    let a = all["alerts"].as_array().unwrap().iter().find(|a| a["labels"]["alertname"] == "HighErrorRate").unwrap();
    assert_eq!(a["status"], "firing");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["startsAt"], T0.to_rfc3339());
    assert_eq!(a["generatorURL"], "https://gantry.example/alerts");
    assert_eq!(a["annotations"]["summary"], "Error rate above 5 % <on> checkout");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    let slack = slack_payload(&n[0], "https://gantry.example");
    assert_eq!(slack["text"], "[FIRING:2] checkout");
    assert_eq!(slack["attachments"][0]["color"], "danger");
    assert!(slack["attachments"][0]["blocks"][1]["text"]["text"].as_str().unwrap().contains("&lt;on&gt;"), "escaped");
    // Unchanged: nothing at the next group intervals until the repeat interval (4 h).
    let mut t = T0.plus(30 * SECOND_MS);
    let mut repeats = Vec::new();
    for _ in 0..60 {
        t = t.plus(5 * MINUTE_MS);
        for n in ns.flush(&policy, t) {
            repeats.push((t.since(T0) / MINUTE_MS, n.reason));
        }
    }
    assert_eq!(repeats.len(), 1);
    assert_eq!(repeats[0].1, Reason::Repeat);
    assert!(repeats[0].0 >= 240 && repeats[0].0 < 246, "{repeats:?}");
    // One alert resolves: a resolved notice at the next flush, then the other resolves: all resolved.
    let sa2 = evaluate_alert(&ra, &sa, &v(0.0), t).state;
    ns.ingest(&policy, &[to_alert(&ra, &sa2, None).unwrap()], t);
    let n = ns.flush(&policy, t.plus(5 * MINUTE_MS));
    assert_eq!(n[0].reason, Reason::NewResolved);
    assert_eq!(n[0].alerts.iter().filter(|a| a.status == gantry_release::notify::NotifyStatus::Resolved).count(), 1);
    let sb2 = evaluate_alert(&rb, &sb, &v(0.0), t.plus(6 * MINUTE_MS)).state;
    ns.ingest(&policy, &[to_alert(&rb, &sb2, None).unwrap()], t.plus(6 * MINUTE_MS));
    let n = ns.flush(&policy, t.plus(10 * MINUTE_MS));
    assert_eq!(n[0].reason, Reason::AllResolved);
    let body = webhook_payload(&n[0], "ops", "", 0);
    assert_eq!(body["status"], "resolved");
    assert_ne!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(slack_payload(&n[0], "")["attachments"][0]["color"], "good");
    assert!(ns.groups.is_empty(), "resolved groups are dropped after the notice");
}

#[test]
fn alert_resolved_within_group_wait_is_never_sent() {
    let policy = GroupPolicy::default();
    let mut ns = NotifyState::default();
    let r = rule("Blip", 0, 0);
    let s = evaluate_alert(&r, &AlertState::default(), &v(1.0), T0).state;
    ns.ingest(&policy, &[to_alert(&r, &s, None).unwrap()], T0);
    let s = evaluate_alert(&r, &s, &v(0.0), T0.plus(10 * SECOND_MS)).state;
    ns.ingest(&policy, &[to_alert(&r, &s, None).unwrap()], T0.plus(10 * SECOND_MS));
    assert!(ns.flush(&policy, T0.plus(30 * SECOND_MS)).is_empty());
    assert!(ns.groups.is_empty());
}

#[test]
fn retries_back_off_with_seeded_jitter_and_honour_retry_after() {
    let p = RetryPolicy::default();
    let status = |code, ra: Option<&str>| AttemptResult::Status { code, retry_after: ra.map(str::to_owned) };
    assert_eq!(next_attempt(&p, 1, &status(200, None), T0, 7), RetryDecision::Done);
    assert_eq!(next_attempt(&p, 1, &status(404, None), T0, 7), RetryDecision::GiveUp);
    let mut delays = Vec::new();
    for attempt in 1..p.max_attempts {
        let RetryDecision::RetryAt { at } = next_attempt(&p, attempt, &status(503, None), T0, 7) else { panic!() };
        delays.push(at.since(T0));
        assert_eq!(next_attempt(&p, attempt, &status(503, None), T0, 7), RetryDecision::RetryAt { at }, "deterministic");
    }
    for (i, d) in delays.iter().enumerate() {
        let nominal = (1000u64 << i).min(60_000) as f64;
        assert!((*d as f64) >= nominal * 0.8 && (*d as f64) <= nominal * 1.2, "attempt {}: {d}", i + 1);
    }
    assert_ne!(
        next_attempt(&p, 1, &AttemptResult::Timeout, T0, 1),
        next_attempt(&p, 1, &AttemptResult::Timeout, T0, 2),
        "seeds spread retries"
    );
    assert_eq!(next_attempt(&p, p.max_attempts, &AttemptResult::Network, T0, 7), RetryDecision::GiveUp);
    let RetryDecision::RetryAt { at } = next_attempt(&p, 1, &status(429, Some("30")), T0, 7) else { panic!() };
    assert!(at.since(T0) >= 30_000 && at.since(T0) <= 30_200);
    assert_eq!(next_attempt(&p, 1, &status(429, Some("3600")), T0, 7), RetryDecision::GiveUp, "longer than we are willing to wait");
}
