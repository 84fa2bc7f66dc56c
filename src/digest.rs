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

/// The digest of a JSON value in canonical form (object keys sorted at every depth, no
/// spaces): the same values give the same digest however they were written or ordered.
/// `null` (helm's "no user values") counts as `{}`.
pub fn json_sha256(value: &serde_json::Value) -> String {
    fn canonical(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    match value {
        serde_json::Value::Null => text.push_str("{}"),
        other => canonical(other, &mut text),
    }
    sha256(text.as_bytes())
}

/// The 64 hex digits of a digest that is exactly `sha256:` and 64 lowercase hex digits;
/// None for anything else. What a digest from outside (a repository, a registry, the
/// shared ledger) must be before it names a file or goes into a URL.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
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
        let abc = super::sha256(b"abc");
        assert_eq!(super::sha256_hex(&abc), abc.strip_prefix("sha256:"));
        let hex = &abc["sha256:".len()..];
        for not in
            [hex.to_string(), format!("sha256:{}", hex.to_uppercase()), format!("sha256:{hex}0"), "sha256:../x".into()]
        {
            assert_eq!(super::sha256_hex(&not), None, "{not}");
        }
    }

    #[test]
    fn json_digests_ignore_key_order_and_count_null_as_empty() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":{"y":1,"x":[2,"z"]},"a":"s"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":"s","b":{"x":[2,"z"],"y":1}}"#).unwrap();
        assert_eq!(super::json_sha256(&a), super::json_sha256(&b));
        assert_eq!(super::json_sha256(&serde_json::Value::Null), super::json_sha256(&serde_json::json!({})));
        let c: serde_json::Value = serde_json::from_str(r#"{"a":"s","b":{"x":["z",2],"y":1}}"#).unwrap();
        assert_ne!(super::json_sha256(&a), super::json_sha256(&c), "list order counts");
    }
}
