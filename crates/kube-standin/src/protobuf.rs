//! Decoding of the protobuf request bodies typed clients send: helm's release storage
//! (Secrets, ConfigMaps and DeleteOptions) and `kubectl auth can-i`
//! (SelfSubjectAccessReview), wrapped in `k8s\0` + `runtime.Unknown`. Only decoding:
//! every response is JSON, which those clients also accept.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The body is not the protobuf the stand-in understands.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("protobuf body does not start with the k8s magic")]
    Magic,
    #[error("truncated or malformed protobuf body")]
    Malformed,
    #[error(
        "protobuf bodies are only understood for Secret, ConfigMap, DeleteOptions and SelfSubjectAccessReview, not {0:?}"
    )]
    Kind(String),
}

/// One field of a protobuf message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ProtoError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(ProtoError::Malformed)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(ProtoError::Malformed)
}

/// Splits a message into `(field number, value)` pairs.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ProtoError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let field = match tag & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| ProtoError::Malformed)?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len()).ok_or(ProtoError::Malformed)?;
                let b = &buf[pos..end];
                pos = end;
                Field::Bytes(b)
            }
            1 => {
                pos += 8;
                Field::Varint(0)
            }
            5 => {
                pos += 4;
                Field::Varint(0)
            }
            _ => return Err(ProtoError::Malformed),
        };
        out.push((tag >> 3, field));
    }
    if pos > buf.len() {
        return Err(ProtoError::Malformed);
    }
    Ok(out)
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `map<string, string|bytes>` entry: field 1 key, field 2 value.
fn map_entry(b: &[u8]) -> Result<(String, &[u8]), ProtoError> {
    let (mut k, mut v): (String, &[u8]) = (String::new(), &[]);
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = string(x),
            (2, Field::Bytes(x)) => v = x,
            _ => {}
        }
    }
    Ok((k, v))
}

fn object_meta(b: &[u8]) -> Result<Value, ProtoError> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for (n, f) in fields(b)? {
        let Field::Bytes(x) = f else { continue };
        // Go writes empty strings and a zero creationTimestamp explicitly; they mean "unset".
        match n {
            1 if !x.is_empty() => _ = m.insert("name".into(), string(x).into()),
            2 if !x.is_empty() => _ = m.insert("generateName".into(), string(x).into()),
            3 if !x.is_empty() => _ = m.insert("namespace".into(), string(x).into()),
            5 if !x.is_empty() => _ = m.insert("uid".into(), string(x).into()),
            6 if !x.is_empty() => _ = m.insert("resourceVersion".into(), string(x).into()),
            11 => {
                let (k, v) = map_entry(x)?;
                labels.insert(k, string(v).into());
            }
            12 => {
                let (k, v) = map_entry(x)?;
                annotations.insert(k, string(v).into());
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), labels.into());
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), annotations.into());
    }
    Ok(m.into())
}

fn b64(b: &[u8]) -> Value {
    base64::engine::general_purpose::STANDARD.encode(b).into()
}

fn secret(raw: &[u8]) -> Result<Value, ProtoError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret"});
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        let Field::Bytes(x) = f else {
            if n == 5 {
                obj["immutable"] = true.into();
            }
            continue;
        };
        match n {
            1 => obj["metadata"] = object_meta(x)?,
            2 => {
                let (k, v) = map_entry(x)?;
                data.insert(k, b64(v));
            }
            3 if !x.is_empty() => obj["type"] = string(x).into(),
            4 => {
                let (k, v) = map_entry(x)?;
                string_data.insert(k, string(v).into());
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = data.into();
    }
    if !string_data.is_empty() {
        obj["stringData"] = string_data.into();
    }
    Ok(obj)
}

fn config_map(raw: &[u8]) -> Result<Value, ProtoError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let (mut data, mut binary) = (Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        let Field::Bytes(x) = f else {
            if n == 4 {
                obj["immutable"] = true.into();
            }
            continue;
        };
        match n {
            1 => obj["metadata"] = object_meta(x)?,
            2 => {
                let (k, v) = map_entry(x)?;
                data.insert(k, string(v).into());
            }
            3 => {
                let (k, v) = map_entry(x)?;
                binary.insert(k, b64(v));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = data.into();
    }
    if !binary.is_empty() {
        obj["binaryData"] = binary.into();
    }
    Ok(obj)
}

fn delete_options(raw: &[u8]) -> Result<Value, ProtoError> {
    let mut obj = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
    for (n, f) in fields(raw)? {
        match (n, f) {
            (1, Field::Varint(v)) => obj["gracePeriodSeconds"] = v.into(),
            (4, Field::Bytes(x)) if !x.is_empty() => obj["propagationPolicy"] = string(x).into(),
            _ => {}
        }
    }
    Ok(obj)
}

/// `authorization.k8s.io/v1` `SelfSubjectAccessReview`: the spec's resource attributes
/// (namespace, verb, group, version, resource, subresource, name: fields 1–7) or
/// non-resource attributes (path, verb). Empty strings are left out, as JSON omits them.
fn self_subject_access_review(raw: &[u8]) -> Result<Value, ProtoError> {
    const RESOURCE: [&str; 7] = ["namespace", "verb", "group", "version", "resource", "subresource", "name"];
    const NON_RESOURCE: [&str; 2] = ["path", "verb"];
    let strings = |b: &[u8], names: &[&str]| -> Result<Value, ProtoError> {
        let mut m = Map::new();
        for (n, f) in fields(b)? {
            if let (Some(name), Field::Bytes(x)) = (n.checked_sub(1).and_then(|i| names.get(i as usize)), f)
                && !x.is_empty()
            {
                m.insert(name.to_string(), string(x).into());
            }
        }
        Ok(m.into())
    };
    let mut spec = Map::new();
    for (n, f) in fields(raw)? {
        if let (2, Field::Bytes(s)) = (n, f) {
            for (n, f) in fields(s)? {
                match (n, f) {
                    (1, Field::Bytes(x)) => _ = spec.insert("resourceAttributes".into(), strings(x, &RESOURCE)?),
                    (2, Field::Bytes(x)) => _ = spec.insert("nonResourceAttributes".into(), strings(x, &NON_RESOURCE)?),
                    _ => {}
                }
            }
        }
    }
    Ok(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}))
}

/// Decodes a `k8s\0`-framed protobuf body into the JSON form of the object it carries.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body.strip_prefix(b"k8s\0").ok_or(ProtoError::Magic)?;
    let (mut kind, mut raw): (String, &[u8]) = (String::new(), &[]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    if let (2, Field::Bytes(x)) = (n, f) {
                        kind = string(x);
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    match kind.as_str() {
        "Secret" => secret(raw),
        "ConfigMap" => config_map(raw),
        "DeleteOptions" => delete_options(raw),
        "SelfSubjectAccessReview" => self_subject_access_review(raw),
        other => Err(ProtoError::Kind(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u64, wire: u64) -> Vec<u8> {
        enc_varint((n << 3) | wire)
    }
    fn enc_varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }
    fn bytes(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = tag(n, 2);
        out.extend(enc_varint(b.len() as u64));
        out.extend_from_slice(b);
        out
    }
    fn entry(n: u64, k: &str, v: &[u8]) -> Vec<u8> {
        bytes(n, &[bytes(1, k.as_bytes()), bytes(2, v)].concat())
    }
    fn unknown(kind: &str, raw: &[u8]) -> Vec<u8> {
        let tm = [bytes(1, b"v1"), bytes(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), bytes(1, &tm), bytes(2, raw), bytes(3, b""), bytes(4, b"")].concat()
    }

    #[test]
    fn decodes_a_helm_release_secret() {
        // Shaped like helm's storage driver output: empty strings and a zero timestamp are
        // written explicitly.
        let meta = [
            bytes(1, b"sh.helm.release.v1.demo.v1"),
            bytes(2, b""),
            bytes(3, b"default"),
            bytes(5, b""),
            bytes(8, b""),
            entry(11, "owner", b"helm"),
            entry(11, "status", b"deployed"),
        ]
        .concat();
        let raw = [bytes(1, &meta), entry(2, "release", b"H4sI"), bytes(3, b"helm.sh/release.v1")].concat();
        let obj = decode(&unknown("Secret", &raw)).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                "metadata": {"name": "sh.helm.release.v1.demo.v1", "namespace": "default",
                    "labels": {"owner": "helm", "status": "deployed"}},
                "data": {"release": "SDRzSQ=="}})
        );
    }

    #[test]
    fn decodes_config_maps_and_delete_options() {
        let raw = [bytes(1, &bytes(1, b"cm")), entry(2, "k", b"v"), entry(3, "b", &[0, 1])].concat();
        let obj = decode(&unknown("ConfigMap", &raw)).unwrap();
        assert_eq!(obj["data"], json!({"k": "v"}));
        assert_eq!(obj["binaryData"], json!({"b": "AAE="}));
        assert_eq!(obj["metadata"]["name"], "cm");

        let raw = [tag(1, 0), enc_varint(30), bytes(4, b"Background")].concat();
        let obj = decode(&unknown("DeleteOptions", &raw)).unwrap();
        assert_eq!(obj["propagationPolicy"], "Background");
        assert_eq!(obj["gracePeriodSeconds"], 30);
    }

    #[test]
    fn decodes_self_subject_access_reviews() {
        let attrs = [bytes(1, b"bsr"), bytes(2, b"create"), bytes(3, b""), bytes(5, b"configmaps"), bytes(6, b"")];
        let raw = [bytes(1, b""), bytes(2, &bytes(1, &attrs.concat()))].concat();
        let obj = decode(&unknown("SelfSubjectAccessReview", &raw)).unwrap();
        assert_eq!(
            obj["spec"],
            json!({"resourceAttributes": {"namespace": "bsr", "verb": "create", "resource": "configmaps"}})
        );
        let raw = bytes(2, &bytes(2, &[bytes(1, b"/healthz"), bytes(2, b"get")].concat()));
        let obj = decode(&unknown("SelfSubjectAccessReview", &raw)).unwrap();
        assert_eq!(obj["spec"], json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(decode(b"{}"), Err(ProtoError::Magic)));
        assert!(matches!(decode(b"k8s\0\x0a\x05ab"), Err(ProtoError::Malformed)));
        assert!(matches!(decode(&unknown("Pod", b"")), Err(ProtoError::Kind(_))));
    }
}
