//! The hash chain of the audit log. Each entry's hash covers the previous
//! entry's hash and the entry's own content, so editing, removing or
//! reordering any entry breaks every later link.

use sha2::{Digest, Sha256};

use crate::store::AuditEntry;

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry given its predecessor's hash.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    target_kind: &str,
    target: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> String {
    // serde_json maps are ordered by key, so this rendering is canonical.
    let body = serde_json::json!([prev_hash, seq, at, actor, action, target_kind, target, before, after]);
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Checks a whole chain in order; returns the first sequence number that
/// does not verify.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Result<u64, i64> {
    let mut prev = GENESIS.to_owned();
    let mut n = 0u64;
    for (expected_seq, e) in (1i64..).zip(entries) {
        let h = entry_hash(&prev, e.seq, &e.at, &e.actor, &e.action, &e.target_kind, &e.target, e.before.as_ref(), e.after.as_ref());
        if e.seq != expected_seq || e.prev_hash != prev || e.hash != h {
            return Err(e.seq);
        }
        prev = h;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let after = Some(serde_json::json!({"k": seq}));
                let hash = entry_hash(&prev, seq, "t", "a", "flag.update", "flag", "f", None, after.as_ref());
                let e = AuditEntry {
                    seq,
                    at: "t".into(),
                    actor: "a".into(),
                    action: "flag.update".into(),
                    target_kind: "flag".into(),
                    target: "f".into(),
                    before: None,
                    after,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn tampering_is_detected() {
        let mut c = chain(5);
        c[2].after = Some(serde_json::json!({"k": 99}));
        assert_eq!(verify(&c), Err(3));
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Err(3));
    }
}
