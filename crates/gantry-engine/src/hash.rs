//! Unleash-exact bucketing: MurmurHash3 x86 32-bit over `"<group>:<id>"`.
//!
//! The hash is computed over the two parts without concatenating them, so
//! bucketing never allocates.

/// Seed of strategy (rollout) bucketing.
pub const ROLLOUT_SEED: u32 = 0;
/// Seed of variant selection.
pub const VARIANT_SEED: u32 = 86_028_157;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k(mut k: u32) -> u32 {
    k = k.wrapping_mul(C1);
    k = k.rotate_left(15);
    k.wrapping_mul(C2)
}

#[inline(always)]
fn mix_h(mut h: u32, k: u32) -> u32 {
    h ^= mix_k(k);
    h = h.rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// MurmurHash3 x86_32 of the concatenation of `parts`.
#[inline]
pub fn murmur3_parts(parts: &[&[u8]], seed: u32) -> u32 {
    let mut h = seed;
    let mut tail = [0u8; 4];
    let mut tail_len = 0usize;
    let mut total = 0usize;
    for part in parts {
        total += part.len();
        let mut bytes: &[u8] = part;
        if tail_len > 0 {
            while tail_len < 4 && !bytes.is_empty() {
                tail[tail_len] = bytes[0];
                tail_len += 1;
                bytes = &bytes[1..];
            }
            if tail_len < 4 {
                continue;
            }
            h = mix_h(h, u32::from_le_bytes(tail));
            tail_len = 0;
        }
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            h = mix_h(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        for &b in chunks.remainder() {
            tail[tail_len] = b;
            tail_len += 1;
        }
    }
    if tail_len > 0 {
        let mut k = 0u32;
        for i in (0..tail_len).rev() {
            k = (k << 8) | u32::from(tail[i]);
        }
        h ^= mix_k(k);
    }
    h ^= total as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// MurmurHash3 x86_32 of one byte string.
pub fn murmur3(bytes: &[u8], seed: u32) -> u32 {
    murmur3_parts(&[bytes], seed)
}

/// The hash of `"<group>:<id>"` with `seed`.
#[inline]
pub fn hash_group_id(group: &str, id: &str, seed: u32) -> u32 {
    murmur3_parts(&[group.as_bytes(), b":", id.as_bytes()], seed)
}

/// Unleash's `normalizedHash`: a value in `1..=modulus`.
#[inline]
pub fn normalize(group: &str, id: &str, modulus: u32, seed: u32) -> u32 {
    hash_group_id(group, id, seed) % modulus + 1
}

/// The murmur state after hashing `"<group>:"`, so that hashing an id
/// needs only the id's bytes. Equal to [`hash_group_id`] for every id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHash {
    /// State after the prefix's whole 4-byte blocks.
    h: u32,
    /// Pending bytes of the prefix, little-endian.
    tail: u32,
    /// Number of pending bytes (0..=3).
    tail_len: u32,
    /// Prefix length in bytes.
    len: u32,
}

impl GroupHash {
    /// Prepares `"<group>:"` with `seed`.
    pub fn new(group: &str, seed: u32) -> Self {
        let mut g = GroupHash { h: seed, tail: 0, tail_len: 0, len: 0 };
        for &b in group.as_bytes().iter().chain(b":") {
            g.tail |= u32::from(b) << (8 * g.tail_len);
            g.tail_len += 1;
            if g.tail_len == 4 {
                g.h = mix_h(g.h, g.tail);
                g.tail = 0;
                g.tail_len = 0;
            }
        }
        g.len = group.len() as u32 + 1;
        g
    }

    /// The hash of `"<group>:<id>"`.
    #[inline]
    pub fn hash(&self, id: &str) -> u32 {
        let mut h = self.h;
        let mut k = self.tail;
        let mut n = self.tail_len;
        let mut bytes = id.as_bytes();
        while n > 0 && n < 4 {
            let Some((&b, rest)) = bytes.split_first() else { break };
            k |= u32::from(b) << (8 * n);
            n += 1;
            bytes = rest;
        }
        if n == 4 {
            h = mix_h(h, k);
            k = 0;
            n = 0;
        }
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            h = mix_h(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        for &b in chunks.remainder() {
            k |= u32::from(b) << (8 * n);
            n += 1;
        }
        if n > 0 {
            h ^= mix_k(k);
        }
        fmix(h ^ self.len.wrapping_add(id.len() as u32))
    }

    /// Unleash's `normalizedHash` of `"<group>:<id>"`: a value in `1..=modulus`.
    #[inline]
    pub fn normalize(&self, id: &str, modulus: u32) -> u32 {
        self.hash(id) % modulus + 1
    }
}

#[inline(always)]
fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The fine-grained rollout position of a context, in `1..=10_000`.
///
/// The whole-percent bucket is Unleash's (`hash % 100 + 1`); the hundredths
/// come from the next digits of the same hash. So `position <= p * 100` is
/// exactly Unleash's `bucket <= p` for whole percentages, finer steps keep
/// every earlier user, and raising a rollout never removes anyone.
#[inline]
pub fn rollout_position(hash: u32) -> u32 {
    let bucket = hash % 100; // 0..=99, Unleash bucket - 1
    let sub = (hash / 100) % 100; // 0..=99
    bucket * 100 + sub + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(murmur3(b"", 0), 0);
        assert_eq!(murmur3(b"", 1), 1_364_076_727);
        assert_eq!(murmur3(b"hello", 0), 613_153_351);
        assert_eq!(murmur3(b"My hovercraft is full of eels.", 0), 2_953_494_853);
        assert_eq!(hash_group_id("AB12A", "122", 0), 1_062_108_722);
        assert_eq!(normalize("AB12A", "122", 100, 0), 23);
        assert_eq!(normalize("AB12A", "155", 100, 0), 100);
        assert_eq!(hash_group_id("Feature.flexibleRollout.10", "174", 0), 3_067_997_709);
        assert_eq!(normalize("Feature.flexibleRollout.10", "174", 100, 0), 10);
        assert_eq!(normalize("Feature.flexibleRollout.10", "499", 100, 0), 32);
        assert_eq!(normalize("Feature.Variants.D", "712", 100, VARIANT_SEED), 1);
        assert_eq!(normalize("Feature.Variants.D", "525", 100, VARIANT_SEED), 30);
        assert_eq!(normalize("Feature.Variants.D", "537", 100, VARIANT_SEED), 70);
        assert_eq!(hash_group_id("g", "ø", 0), 851_747_335);
    }

    #[test]
    fn group_hash_equals_hash_group_id() {
        let ids = ["", "a", "ab", "abc", "abcd", "abcde", "122", "user-4242", "ø", "日本語のユーザー", "0123456789abcdefXYZ"];
        for group in ["", "g", "ab", "abc", "AB12A", "Feature.flexibleRollout.10", "flag-001", "ø"] {
            for seed in [ROLLOUT_SEED, VARIANT_SEED, 7] {
                let g = GroupHash::new(group, seed);
                for id in ids {
                    assert_eq!(g.hash(id), hash_group_id(group, id, seed), "{group:?} {id:?} {seed}");
                    assert_eq!(g.normalize(id, 1000), normalize(group, id, 1000, seed));
                }
            }
        }
    }

    #[test]
    fn split_parts_equal_whole() {
        let whole = b"abcdefghijklmnopq:rstuvwxyz0123";
        for cut1 in 0..whole.len() {
            for cut2 in cut1..whole.len() {
                let parts: [&[u8]; 3] = [&whole[..cut1], &whole[cut1..cut2], &whole[cut2..]];
                assert_eq!(murmur3_parts(&parts, 7), murmur3(whole, 7));
            }
        }
    }

    #[test]
    fn rollout_position_agrees_with_whole_percent_buckets() {
        for h in [0u32, 1, 99, 100, 12_345, 3_067_997_709, u32::MAX] {
            let bucket = h % 100 + 1;
            for p in 0..=100u32 {
                assert_eq!(rollout_position(h) <= p * 100, bucket <= p, "h={h} p={p}");
            }
        }
    }
}
