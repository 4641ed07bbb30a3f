//! Client API keys → app. Keys are held as SHA-256 digests and compared in constant time.
//!
//! The table is looked up by the first 8 bytes of the digest, then the whole digest is
//! compared with `subtle`, so neither the lookup nor the comparison tells an attacker
//! how much of a guess was right. Manifest keys (`sha256:` or `env:`) and store keys
//! (`psf keys create`) live in one table; the store's part is reloaded when it changes,
//! so a revoked key is refused within a second.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The key's id (shown in audit records instead of the key).
    pub key_id: String,
    /// The app it belongs to.
    pub app: String,
    /// The subject of every request with this key, as its hash, for a per-person key.
    pub subject: Option<String>,
}

/// The keys the gateway accepts.
#[derive(Debug, Default, Clone)]
pub struct KeyTable {
    buckets: HashMap<[u8; 8], Vec<([u8; 32], KeyOwner)>>,
}

/// Parses a hex SHA-256.
pub(crate) fn digest_from_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl KeyTable {
    /// Adds a key by its digest.
    pub fn insert(&mut self, digest: [u8; 32], owner: KeyOwner) {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&digest[..8]);
        self.buckets.entry(prefix).or_default().push((digest, owner));
    }

    /// The owner of `key`, if the gateway accepts it.
    pub fn lookup(&self, key: &str) -> Option<&KeyOwner> {
        let d = digest(key);
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&d[..8]);
        let bucket = self.buckets.get(&prefix)?;
        let mut found = None;
        for (candidate, owner) in bucket {
            if bool::from(candidate.ct_eq(&d)) {
                found = Some(owner);
            }
        }
        found
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_digest_only() {
        let mut t = KeyTable::default();
        t.insert(digest("psf_secret"), KeyOwner { key_id: "k1".into(), app: "chat".into(), subject: None });
        assert_eq!(t.lookup("psf_secret").map(|o| o.app.as_str()), Some("chat"));
        assert!(t.lookup("psf_secreT").is_none());
        assert!(t.lookup("").is_none());
        let hex = psf_store::key_digest("psf_secret");
        assert_eq!(digest_from_hex(&hex), Some(digest("psf_secret")));
        assert_eq!(digest_from_hex("zz"), None);
    }
}
