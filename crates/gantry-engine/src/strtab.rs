//! Small-string helpers for the evaluation hot path.
//!
//! Flag keys, context field names and list values are short. Comparing them
//! with `==` calls `memcmp` through the C library, which costs more than the
//! comparison itself; [`str_eq`] compares inline with word loads. [`StrTable`]
//! is an open-addressing hash table of strings that stores a hash tag next to
//! each slot, so a lookup usually compares the key once.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;

/// Equality of two byte strings, inline (no `memcmp` call).
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        // Whole words, then the last (possibly overlapping) word.
        let whole = a.chunks_exact(8).zip(b.chunks_exact(8)).all(|(x, y)| word(x) == word(y));
        return whole && word(&a[n - 8..]) == word(&b[n - 8..]);
    }
    if n >= 4 {
        return half(&a[..4]) == half(&b[..4]) && half(&a[n - 4..]) == half(&b[n - 4..]);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Equality of two strings, inline (no `memcmp` call).
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

#[inline(always)]
fn word(s: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[..8]);
    u64::from_ne_bytes(w)
}

#[inline(always)]
fn half(s: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[..4]);
    u32::from_ne_bytes(w)
}

const SEED: u64 = 0x7374_7274_6162;

/// A string → `u32` map, built once and then only read.
#[derive(Debug, Clone)]
pub(crate) struct StrTable {
    slots: Box<[Slot]>,
    len: usize,
    mask: usize,
}

/// One slot: key, hash tag and value together, so a hit reads one slot.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// `None` marks an empty slot.
    key: Option<Box<str>>,
    tag: u32,
    value: u32,
}

impl Default for StrTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl StrTable {
    /// An empty table sized for `n` keys.
    pub(crate) fn with_capacity(n: usize) -> Self {
        // Load factor at most one half: most lookups probe one slot.
        let size = (n.max(4) * 2).next_power_of_two();
        StrTable { slots: vec![Slot::default(); size].into_boxed_slice(), len: 0, mask: size - 1 }
    }

    #[inline(always)]
    fn hash(key: &str) -> u64 {
        // The bytes only: `str`'s `Hash` adds a terminator round.
        let mut h = FixedState::with_seed(SEED).build_hasher();
        h.write(key.as_bytes());
        h.finish()
    }

    /// Inserts or replaces; returns whether the key was already present.
    pub(crate) fn insert(&mut self, key: &str, value: u32) -> bool {
        if let Some(i) = self.find(key) {
            self.slots[i].value = value;
            return true;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.len += 1;
        self.place(Self::hash(key), Slot { key: Some(key.into()), tag: 0, value });
        false
    }

    fn place(&mut self, h: u64, mut slot: Slot) {
        slot.tag = (h >> 32) as u32;
        let mut i = h as usize & self.mask;
        while self.slots[i].key.is_some() {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size].into_boxed_slice());
        self.mask = size - 1;
        for slot in old.into_vec() {
            if let Some(key) = &slot.key {
                let h = Self::hash(key);
                self.place(h, slot);
            }
        }
    }

    /// The slot holding `key`.
    #[inline(always)]
    fn find(&self, key: &str) -> Option<usize> {
        let h = Self::hash(key);
        let tag = (h >> 32) as u32;
        let mut i = h as usize & self.mask;
        loop {
            let slot = &self.slots[i];
            match &slot.key {
                None => return None,
                Some(k) if slot.tag == tag && str_eq(k, key) => return Some(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }

    /// The value stored for `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        self.find(key).map(|i| self.slots[i].value)
    }

    /// Whether `key` is present.
    #[inline]
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.find(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_eq_agrees_with_slice_eq() {
        let samples: Vec<Vec<u8>> = (0..40usize).flat_map(|n| [vec![b'a'; n], (0..n as u8).collect::<Vec<u8>>()]).collect();
        for a in &samples {
            for b in &samples {
                assert_eq!(bytes_eq(a, b), a == b, "{a:?} {b:?}");
            }
            for i in 0..a.len() {
                let mut c = a.clone();
                c[i] ^= 1;
                assert!(!bytes_eq(a, &c));
            }
        }
    }

    #[test]
    fn table_finds_every_key_and_nothing_else() {
        let mut t = StrTable::with_capacity(3);
        for i in 0..1000u32 {
            assert!(!t.insert(&format!("key-{i}"), i * 2));
        }
        assert!(t.insert("key-7", 1));
        assert_eq!(t.len, 1000);
        for i in 0..1000u32 {
            let want = if i == 7 { 1 } else { i * 2 };
            assert_eq!(t.get(&format!("key-{i}")), Some(want));
            assert!(!t.contains(&format!("key-{i}x")));
        }
        assert!(!t.contains(""));
        assert!(!StrTable::default().contains("a"));
    }
}
