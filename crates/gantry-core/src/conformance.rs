//! The store conformance suite: the same checks for every [`Store`] backend
//! (SQLite and PostgreSQL run them in their tests). Each function panics on
//! a violation. Behind the `test-support` feature.

use chrono::{DateTime, Utc};
use gantry_api_types::{Environment, Maintenance, Release, TokenKind};
use gantry_engine::model::{Flag, Segment};

use crate::{audit, AuditDraft, Commit, EventBatchRow, Expect, Mutation, ReleaseObject, Store, StoreError, StoredToken, UsageRow};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z").map(|d| d.with_timezone(&Utc)).unwrap_or_default()
}

fn draft(action: &str, kind: &str, target: &str) -> AuditDraft {
    AuditDraft {
        actor: "conformance".into(),
        action: action.into(),
        target_kind: kind.into(),
        target: target.into(),
        before: None,
        after: Some(serde_json::json!({ "key": target })),
    }
}

fn put_flag(key: &str, expect: Expect) -> Commit {
    Commit {
        mutations: vec![Mutation::PutFlag { flag: Flag { key: key.into(), ..Default::default() }, expect }],
        audit: vec![draft("flag.update", "flag", key)],
        at: at(),
    }
}

/// Versions start at 1 and step by one; every expectation failure is the
/// right [`StoreError`] and writes nothing (no audit entry, no revision).
pub async fn commit_checks_versions<S: Store>(s: &S) {
    assert_eq!(s.revision().await.unwrap(), 0, "an empty store is at revision 0");
    let c1 = s.commit(put_flag("a", Expect::Absent)).await.unwrap();
    assert_eq!(c1.versions, vec![1]);
    let e = s.commit(put_flag("a", Expect::Absent)).await;
    assert!(matches!(e, Err(StoreError::AlreadyExists { kind: "flag", .. })), "{e:?}");
    let e = s.commit(put_flag("a", Expect::Version(7))).await;
    assert!(matches!(e, Err(StoreError::VersionMismatch { kind: "flag", current: 1, .. })), "{e:?}");
    let e = s.commit(put_flag("missing", Expect::Version(1))).await;
    assert!(matches!(e, Err(StoreError::NotFound { kind: "flag", .. })), "{e:?}");
    let e = s.commit(put_flag("missing", Expect::Exists)).await;
    assert!(matches!(e, Err(StoreError::NotFound { kind: "flag", .. })), "{e:?}");
    assert_eq!(s.revision().await.unwrap(), c1.revision, "failed commits leave the revision");
    let c2 = s.commit(put_flag("a", Expect::Version(1))).await.unwrap();
    assert_eq!(c2.versions, vec![2]);
    assert!(c2.revision > c1.revision);
    let c3 = s.commit(put_flag("a", Expect::Any)).await.unwrap();
    assert_eq!(c3.versions, vec![3]);
    // A commit is atomic: the second mutation fails, so the first is not applied.
    let mut both = put_flag("b", Expect::Absent);
    both.mutations.push(Mutation::DeleteFlag { key: "a".into(), expect: Expect::Version(1) });
    let e = s.commit(both).await;
    assert!(matches!(e, Err(StoreError::VersionMismatch { current: 3, .. })), "{e:?}");
    let snap = s.load().await.unwrap();
    assert_eq!(snap.flags.iter().map(|f| (f.flag.key.as_str(), f.version)).collect::<Vec<_>>(), [("a", 3)]);
    assert_eq!(s.audit_all().await.unwrap().len(), 3, "failed commits write no audit");
    let d =
        s.commit(Commit { mutations: vec![Mutation::DeleteFlag { key: "a".into(), expect: Expect::Version(3) }], audit: vec![], at: at() });
    assert_eq!(d.await.unwrap().versions, vec![0]);
    assert!(s.load().await.unwrap().flags.is_empty());
}

/// Audit entries chain across commits (several per commit too) and verify
/// with [`audit::verify`]; pages are newest first.
pub async fn audit_chain_verifies<S: Store>(s: &S) {
    for i in 0..5 {
        let mut c = put_flag(&format!("f{i}"), Expect::Absent);
        c.audit.push(draft("flag.tag", "flag", &format!("f{i}")));
        s.commit(c).await.unwrap();
    }
    let all = s.audit_all().await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert_eq!(all[0].prev_hash, audit::GENESIS);
    assert_eq!(audit::verify(&all), Ok(10));
    assert_eq!(all[0].after, Some(serde_json::json!({ "key": "f0" })));
    let page = s.audit_page(Some(5), 3).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3, 2]);
    assert_eq!(s.audit_page(None, 1).await.unwrap()[0].seq, 10);
}

/// Every kind of object written comes back from [`Store::load`] as written.
pub async fn snapshot_round_trip<S: Store>(s: &S) {
    let env = Environment { name: "production".into(), description: Some("prod".into()), protected: true, sort_order: 2 };
    let env2 = Environment { name: "dev".into(), description: None, protected: false, sort_order: 1 };
    let flag = Flag { key: "checkout".into(), description: Some("new checkout".into()), tags: vec!["t".into()], ..Default::default() };
    let segment = Segment { id: 7, name: Some("beta".into()), description: None, constraints: vec![] };
    let token = StoredToken {
        id: "tok1".into(),
        kind: TokenKind::Server,
        environment: Some("production".into()),
        name: Some("backend".into()),
        prefix: "gs_abcd".into(),
        secret_hash: "00ff".into(),
        created_at: at(),
        expires_at: Some(at() + chrono::Duration::days(1)),
        revoked_at: None,
    };
    let maintenance = Maintenance { enabled: true, message: Some("down".into()), ..Default::default() };
    let release = Release {
        id: 1,
        app: "shop".into(),
        version: "1.2.3".into(),
        environment: "production".into(),
        commit: Some("abcd".into()),
        notes: Some("n".into()),
        released_at: "2026-01-01T00:00:00.000Z".into(),
        recorded_by: "ci".into(),
    };
    let object = ReleaseObject {
        kind: "rollout".into(),
        key: "production/checkout".into(),
        doc: serde_json::json!({ "steps": [1, 5, 100] }),
        state: serde_json::json!({ "step": 0 }),
    };
    let c = s
        .commit(Commit {
            mutations: vec![
                Mutation::PutEnvironment { environment: env.clone(), expect: Expect::Absent },
                Mutation::PutEnvironment { environment: env2.clone(), expect: Expect::Absent },
                Mutation::PutFlag { flag: flag.clone(), expect: Expect::Absent },
                Mutation::PutSegment { segment: segment.clone(), expect: Expect::Absent },
                Mutation::InsertToken(token.clone()),
                Mutation::PutMaintenance { environment: "production".into(), maintenance: maintenance.clone(), expect: Expect::Absent },
                Mutation::InsertRelease(release.clone()),
                Mutation::PutReleaseObject { object: object.clone(), expect: Expect::Absent },
            ],
            audit: vec![draft("setup", "environment", "production")],
            at: at(),
        })
        .await
        .unwrap();
    assert_eq!(c.versions, vec![1, 1, 1, 1, 1, 1, 1, 1]);
    let e = s.commit(Commit { mutations: vec![Mutation::InsertRelease(release.clone())], audit: vec![], at: at() }).await;
    assert!(matches!(e, Err(StoreError::AlreadyExists { kind: "release", .. })), "{e:?}");
    let e = s.commit(Commit { mutations: vec![Mutation::InsertToken(token.clone())], audit: vec![], at: at() }).await;
    assert!(matches!(e, Err(StoreError::AlreadyExists { kind: "token", .. })), "{e:?}");
    s.commit(Commit { mutations: vec![Mutation::RevokeToken { id: "tok1".into() }], audit: vec![], at: at() }).await.unwrap();
    let e = s.commit(Commit { mutations: vec![Mutation::RevokeToken { id: "nope".into() }], audit: vec![], at: at() }).await;
    assert!(matches!(e, Err(StoreError::NotFound { kind: "token", .. })), "{e:?}");

    let snap = s.load().await.unwrap();
    assert_eq!(snap.revision, s.revision().await.unwrap());
    assert_eq!(snap.environments.iter().map(|e| e.environment.clone()).collect::<Vec<_>>(), [env2, env], "sorted by sort_order");
    assert_eq!((&snap.flags[0].flag, snap.flags[0].version, snap.flags[0].created_at), (&flag, 1, at()));
    assert_eq!((&snap.segments[0].segment, snap.segments[0].version), (&segment, 1));
    assert_eq!(snap.tokens, [StoredToken { revoked_at: Some(at()), ..token }]);
    assert_eq!((&snap.maintenance[0].maintenance, snap.maintenance[0].environment.as_str()), (&maintenance, "production"));
    assert_eq!(snap.releases, [release]);

    let objects = s.release_objects("rollout").await.unwrap();
    assert_eq!((&objects[0].object, objects[0].version), (&object, 1));
    s.save_release_state("rollout", "production/checkout", serde_json::json!({ "step": 1 })).await.unwrap();
    let objects = s.release_objects("rollout").await.unwrap();
    assert_eq!((objects[0].object.state.clone(), objects[0].version), (serde_json::json!({ "step": 1 }), 1));
    assert_eq!(s.revision().await.unwrap(), snap.revision, "quiet state saves keep the revision");
    let e = s.save_release_state("rollout", "gone", serde_json::json!({})).await;
    assert!(matches!(e, Err(StoreError::NotFound { .. })), "{e:?}");
    assert!(s.release_objects("schedule").await.unwrap().is_empty());

    let row = UsageRow {
        flag: "checkout".into(),
        environment: "production".into(),
        last_evaluated_ms: 5,
        yes: 2,
        no: 1,
        variants: [("a".to_owned(), 2)].into(),
    };
    s.add_usage(vec![row.clone()]).await.unwrap();
    s.add_usage(vec![UsageRow { last_evaluated_ms: 3, ..row }]).await.unwrap();
    let u = s.usage().await.unwrap();
    assert_eq!((u[0].yes, u[0].no, u[0].last_evaluated_ms, u[0].variants["a"]), (4, 2, 5, 4));
}

/// Event batch ids ascend across calls; `events_after` pages in id order.
pub async fn events_append_in_order<S: Store>(s: &S) {
    assert!(s.append_events(vec![]).await.unwrap().is_empty());
    let batch = |n: i64| EventBatchRow { id: 0, environment: "production".into(), received_ms: n, events: format!("[{n}]") };
    let first = s.append_events(vec![batch(1), batch(2)]).await.unwrap();
    let second = s.append_events(vec![batch(3)]).await.unwrap();
    let ids: Vec<i64> = first.iter().chain(&second).copied().collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend: {ids:?}");
    let all = s.events_after(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|b| (b.id, b.received_ms, b.events.as_str())).collect::<Vec<_>>(),
        [(ids[0], 1, "[1]"), (ids[1], 2, "[2]"), (ids[2], 3, "[3]")]
    );
    assert_eq!(s.events_after(ids[0], 1).await.unwrap().iter().map(|b| b.id).collect::<Vec<_>>(), [ids[1]]);
    assert!(s.events_after(ids[2], 10).await.unwrap().is_empty());
}

/// Checkpoints are replaced whole and come back byte for byte.
pub async fn checkpoints_save_and_load<S: Store>(s: &S) {
    assert_eq!(s.load_checkpoint("experiments").await.unwrap(), None);
    s.save_checkpoint("experiments", 3, vec![0, 1, 2, 255]).await.unwrap();
    s.save_checkpoint("experiments", 9, vec![9; 1000]).await.unwrap();
    s.save_checkpoint("other", 1, vec![]).await.unwrap();
    assert_eq!(s.load_checkpoint("experiments").await.unwrap(), Some((9, vec![9; 1000])));
    assert_eq!(s.load_checkpoint("other").await.unwrap(), Some((1, vec![])));
}

/// Two handles on the same database (two connections, as two replicas have)
/// commit concurrently expecting the same version: in every round exactly one
/// wins and the other gets `VersionMismatch`; the audit chain stays linear.
pub async fn concurrent_commits_one_wins<S: Store>(a: &S, b: &S) {
    a.commit(put_flag("race", Expect::Absent)).await.unwrap();
    let rounds = 20;
    for v in 1..=rounds {
        let (ra, rb) =
            futures_util::future::join(a.commit(put_flag("race", Expect::Version(v))), b.commit(put_flag("race", Expect::Version(v))))
                .await;
        let loser = match (&ra, &rb) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            _ => panic!("round {v}: exactly one commit must win: {ra:?} / {rb:?}"),
        };
        assert!(matches!(loser, StoreError::VersionMismatch { current, .. } if *current == v + 1), "round {v}: {loser:?}");
    }
    let snap = b.load().await.unwrap();
    assert_eq!(snap.flags[0].version, rounds + 1);
    let all = a.audit_all().await.unwrap();
    assert_eq!(audit::verify(&all), Ok(21), "one entry per winning commit, chained");
    // Event appends from both handles concurrently: ids stay unique and ascending.
    let batch = |n: i64| EventBatchRow { id: 0, environment: "e".into(), received_ms: n, events: "[]".into() };
    let (ia, ib) = futures_util::future::join(a.append_events(vec![batch(1), batch(2)]), b.append_events(vec![batch(3), batch(4)])).await;
    let (ia, ib) = (ia.unwrap(), ib.unwrap());
    assert!(ia.windows(2).all(|w| w[0] < w[1]) && ib.windows(2).all(|w| w[0] < w[1]));
    let listed: Vec<i64> = a.events_after(0, 10).await.unwrap().iter().map(|r| r.id).collect();
    let mut expected: Vec<i64> = ia.into_iter().chain(ib).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}
