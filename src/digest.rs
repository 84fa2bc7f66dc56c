//! Content digests (`sha256:<hex>`) for what the ledger refers to: the policy text, the
//! values files of a run. A digest lets a later run prove it reads exactly what an
//! earlier run recorded, without the ledger (readable by anyone who can read ConfigMaps
//! in the namespace) ever holding the values themselves.

use sha2::{Digest, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The first hex digits, for people: `sha256:3f2a9c1b`.
pub fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 1) + 8;
    &digest[..end.min(digest.len())]
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        assert_eq!(super::sha256(b"abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::short(&super::sha256(b"abc")), "sha256:ba7816bf");
    }
}
