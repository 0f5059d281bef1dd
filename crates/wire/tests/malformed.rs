//! Bad input gives a clear WireError, never a panic: random bytes,
//! truncations and bit flips of real messages, wrong JSON types, unknown
//! kinds, and envelopes nested without end. Also the watch framing.

use prost::encoding::{encode_key, encode_varint, WireType};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wire::WireError;

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                 "resources": {"limits": {"cpu": "1"}}, "livenessProbe": {"httpGet": {"port": "http"}}}]},
        "status": {"phase": "Running", "startTime": "2024-01-02T03:04:05Z"}
    })
}

fn field_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw}, built by hand.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    field_bytes(&mut type_meta, 1, api_version.as_bytes());
    field_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    field_bytes(&mut out, 1, &type_meta);
    field_bytes(&mut out, 2, raw);
    out
}

#[test]
fn bodies_without_the_magic_are_refused() {
    for body in [&b""[..], b"k8s", b"{\"kind\":\"Pod\"}", b"\x00k8s"] {
        assert!(
            matches!(wire::decode(body), Err(WireError::MissingMagic)),
            "{body:?}"
        );
    }
    let message = wire::decode(b"{}").unwrap_err().to_string();
    assert!(message.contains("k8s\\0"), "{message}");
}

#[test]
fn every_truncation_of_a_real_message_fails_cleanly_or_decodes() {
    let bytes = wire::encode(&pod()).unwrap();
    let mut errors = 0;
    for end in 0..bytes.len() {
        match wire::decode(&bytes[..end]) {
            Ok(obj) => assert_eq!(obj["kind"], "Pod"),
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(
        errors > bytes.len() / 2,
        "most truncations are errors ({errors} of {})",
        bytes.len()
    );
    assert_eq!(wire::decode(&bytes).unwrap()["metadata"]["name"], "web");
}

#[test]
fn random_bytes_and_bit_flips_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b38_7300);
    let valid = wire::encode(&pod()).unwrap();
    for _ in 0..3000 {
        let len = rng.gen_range(0..200);
        let mut body = b"k8s\0".to_vec();
        body.extend((0..len).map(|_| rng.gen::<u8>()));
        let _ = wire::decode(&body);

        let mut flipped = valid.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(4..flipped.len());
            flipped[i] ^= 1 << rng.gen_range(0..8);
        }
        let _ = wire::decode(&flipped);

        // Random bytes as the typed message inside a valid envelope.
        let raw: Vec<u8> = (0..len).map(|_| rng.gen::<u8>()).collect();
        let _ = wire::decode(&envelope("apps/v1", "Deployment", &raw));
        let _ = wire::decode_watch_event(&body);
    }
}

#[test]
fn malformed_messages_name_the_kind() {
    // A length prefix running past the end of the typed message.
    let err = wire::decode(&envelope("v1", "ConfigMap", &[0x0a, 0x05, b'x'])).unwrap_err();
    assert!(matches!(err, WireError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("v1 ConfigMap"), "{err}");

    let err = wire::decode(b"k8s\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
    assert!(err.to_string().contains("envelope"), "{err}");
}

#[test]
fn unknown_kinds_and_empty_type_meta_are_reported() {
    let err = wire::decode(&envelope("example.com/v1", "Widget", b"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no protobuf schema for apiVersion \"example.com/v1\" kind \"Widget\""
    );
    assert!(matches!(
        wire::decode(&envelope("", "Pod", b"")),
        Err(WireError::EmptyTypeMeta("apiVersion"))
    ));
    assert!(matches!(
        wire::decode(&envelope("v1", "", b"")),
        Err(WireError::EmptyTypeMeta("kind"))
    ));

    let mut gzipped = envelope("v1", "Pod", b"");
    field_bytes(&mut gzipped, 3, b"gzip");
    let err = wire::decode(&gzipped).unwrap_err();
    assert!(
        err.to_string().contains("contentEncoding \"gzip\""),
        "{err}"
    );

    let err = wire::encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}))
        .unwrap_err();
    assert!(matches!(err, WireError::UnsupportedKind { .. }), "{err:?}");
    assert!(!wire::supports("example.com/v1", "Widget"));
    assert!(wire::supports("v1", "ConfigMap") && wire::supports("apps/v1", "DeploymentList"));
    let err = wire::encode(&json!({"kind": "ConfigMap"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot encode to protobuf: the object has no string \"apiVersion\""
    );
}

#[test]
fn json_of_the_wrong_type_names_the_field() {
    let cases = [
        (json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}}), "ConfigMap data[\"a\"]: expected a string, got a number"),
        (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}), "ConfigMap metadata: expected an object, got a string"),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 4294967296u64}]}]}}),
            "Pod spec.containers[0].ports[0].containerPort: 4294967296 is not an integer in [-2147483648, 2147483647]",
        ),
        (json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}}), "Pod metadata.creationTimestamp: \"yesterday\" is not an RFC 3339 time"),
        (json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}}), "Secret data[\"k\"]: not base64"),
        (json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": true}]}}), "Service spec.ports[0].targetPort: expected an integer or a string, got a boolean"),
        (json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": {"name": "a"}}}), "Pod spec.containers: expected an array, got an object"),
    ];
    for (obj, expected) in cases {
        let err = wire::encode(&obj).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
    }
}

#[test]
fn envelopes_nested_without_end_are_cut_off() {
    let mut body = wire::encode(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leaf"}}),
    )
    .unwrap();
    for _ in 0..2000 {
        // v1 List{items: [RawExtension{raw: body}]}
        let mut extension = Vec::new();
        field_bytes(&mut extension, 1, &body);
        let mut list = Vec::new();
        field_bytes(&mut list, 2, &extension);
        body = envelope("v1", "List", &list);
    }
    let err = wire::decode(&body).unwrap_err();
    assert!(err.to_string().contains("more than 8 deep"), "{err}");
}

#[test]
fn protobuf_lists_embedding_protobuf_objects_decode() {
    let inner = wire::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leaf"}, "data": {"a": "b"}})).unwrap();
    let mut extension = Vec::new();
    field_bytes(&mut extension, 1, &inner);
    let mut list = Vec::new();
    field_bytes(&mut list, 2, &extension);
    let decoded = wire::decode(&envelope("v1", "List", &list)).unwrap();
    assert_eq!(decoded["items"][0]["kind"], "ConfigMap");
    assert_eq!(decoded["items"][0]["data"], json!({"a": "b"}));
}

#[test]
fn watch_events_are_length_prefixed_bare_watch_events() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default", "resourceVersion": "9", "creationTimestamp": "2024-01-02T03:04:05Z"}, "data": {"a": "b"}});
    let frame = wire::encode_watch_event("ADDED", &obj).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    // A bare metav1.WatchEvent: field 1 (type) first, no k8s\0 envelope.
    assert_eq!(&frame[4..7], b"\x0a\x05A");
    let object_at = frame
        .windows(4)
        .position(|w| w == b"k8s\0")
        .expect("the object inside is enveloped");
    assert!(object_at > 7);
    let (event_type, back) = wire::decode_watch_event(&frame).unwrap();
    assert_eq!(event_type, "ADDED");
    assert_eq!(back, obj);

    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "too old resource version: 1 (9)", "reason": "Expired", "code": 410});
    let (event_type, back) =
        wire::decode_watch_event(&wire::encode_watch_event("ERROR", &status).unwrap()).unwrap();
    assert_eq!((event_type.as_str(), back), ("ERROR", status));

    for end in 0..frame.len() {
        let err = wire::decode_watch_event(&frame[..end]).unwrap_err();
        assert!(matches!(err, WireError::Frame(_)), "{err:?}");
    }
    let mut huge = frame.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(wire::decode_watch_event(&huge)
        .unwrap_err()
        .to_string()
        .contains("exceeds"));
    assert!(wire::encode_watch_event(
        "ADDED",
        &json!({"apiVersion": "example.com/v1", "kind": "Widget"})
    )
    .is_err());
}
