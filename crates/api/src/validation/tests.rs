use super::*;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

#[test]
fn dns1123_subdomain_accepts_names_and_rejects_uppercase() {
    for ok in ["a", "example.com", "a-b.c-d", "0", "a.1"] {
        assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
    }
    assert_eq!(is_dns1123_subdomain("Foo"), vec![SUBDOMAIN_MSG.to_string()]);
    for bad in ["", "-a", "a-", "a..b", ".a", "a_b", "a b"] {
        assert_eq!(is_dns1123_subdomain(bad).len(), 1, "{bad}");
    }
    let long = "a".repeat(254);
    assert_eq!(
        is_dns1123_subdomain(&long),
        vec!["must be no more than 253 characters".to_string()]
    );
}

#[test]
fn dns1123_label_says_dots_are_the_problem_for_subdomains() {
    assert!(is_dns1123_label("my-name").is_empty());
    assert_eq!(
        is_dns1123_label("a.b"),
        vec!["must not contain dots".to_string()]
    );
    assert_eq!(
        is_dns1123_label("My_Name"),
        vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
    );
    let long = "a".repeat(64);
    assert_eq!(
        is_dns1123_label(&long),
        vec!["must be no more than 63 characters".to_string()]
    );
}

#[test]
fn dns1035_label_must_start_with_a_letter() {
    assert!(is_dns1035_label("abc-123").is_empty());
    assert_eq!(
        is_dns1035_label("1abc"),
        vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
    );
}

#[test]
fn qualified_name_checks_prefix_and_name_parts() {
    for ok in [
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "1234",
        "simple/simple",
        "now-with-dashes/simple",
        "now-with-dashes/now-with-dashes",
        "now.with.dots/simple",
        "now-with.dashes-and.dots/simple",
        "1-num.2-num/3-num",
        "1234/5678",
        "1.2.3.4/5678",
        "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123",
        "requests.storage-foo",
        &"a".repeat(63),
        &format!("{}/b", "a".repeat(253)),
    ] {
        assert!(is_qualified_name(ok).is_empty(), "{ok}");
    }
    assert_eq!(is_qualified_name("a b"), vec![NAME_PART_MSG.to_string()]);
    assert_eq!(
        is_qualified_name(""),
        vec![
            "name part must be non-empty".to_string(),
            NAME_PART_MSG.to_string()
        ]
    );
    assert_eq!(
        is_qualified_name("/b"),
        vec!["prefix part must be non-empty".to_string()]
    );
    assert_eq!(
        is_qualified_name("Example.com/b"),
        vec![format!("prefix part {SUBDOMAIN_MSG}")]
    );
    assert_eq!(
        is_qualified_name(&"a".repeat(64)),
        vec!["name part must be no more than 63 characters".to_string()]
    );
    assert_eq!(
        is_qualified_name("a/b/c"),
        vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
    );
}

#[test]
fn label_values_may_be_empty_but_not_malformed() {
    for ok in [
        "",
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "end-with-num-1",
        "1234",
        &"a".repeat(63),
        "Uppercase_Is_OK_123",
    ] {
        assert!(is_valid_label_value(ok).is_empty(), "{ok}");
    }
    assert_eq!(
        is_valid_label_value("nospecialchars%^=@"),
        vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
    );
    assert_eq!(
        is_valid_label_value(&"a".repeat(64)),
        vec!["must be no more than 63 characters".to_string()]
    );
}

#[test]
fn object_names_render_upstream_invalid_messages() {
    let errs = validate_object_meta(
        &metav1::ObjectMeta {
            name: Some("Foo".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        true,
        name_is_dns_subdomain,
        &Path::new("metadata"),
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs.0[0].to_string(),
        format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
    );
    assert_eq!(
        errs.invalid_message("Pod", "Foo"),
        format!("Pod \"Foo\" is invalid: metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
    );
}

#[test]
fn object_meta_requires_a_name_and_the_right_namespace_scope() {
    let errs = validate_object_meta(
        &metav1::ObjectMeta::default(),
        true,
        name_is_dns_subdomain,
        &Path::new("metadata"),
    );
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        vec![
            "metadata.name: Required value: name or generateName is required",
            "metadata.namespace: Required value"
        ]
    );

    let errs = validate_object_meta(
        &metav1::ObjectMeta {
            name: Some("n".into()),
            namespace: Some("x".into()),
            ..Default::default()
        },
        false,
        name_is_dns_subdomain,
        &Path::new("metadata"),
    );
    assert_eq!(
        errs.0[0].to_string(),
        "metadata.namespace: Forbidden: not allowed on this type"
    );
}

#[test]
fn generate_name_may_end_with_a_dash() {
    assert!(name_is_dns_subdomain("web-", true).is_empty());
    assert!(!name_is_dns_subdomain("web-", false).is_empty());
    assert!(name_is_dns_label("x-", true).is_empty());
    // Multi-byte characters next to the dash must not panic.
    assert!(!name_is_dns_subdomain("é-", true).is_empty());
}

#[test]
fn nonnegative_field_message() {
    let errs = validate_nonnegative_field(-1, &Path::from_names(&["spec", "replicas"]));
    assert_eq!(
        errs.0[0].to_string(),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert!(validate_nonnegative_field(0, &Path::new("x")).is_empty());
}

#[test]
fn labels_are_validated_key_and_value() {
    let labels: BTreeMap<String, String> = [
        ("app".into(), "web".into()),
        ("bad key".into(), "-x".into()),
    ]
    .into();
    let errs = validate_labels(&labels, &Path::from_names(&["metadata", "labels"]));
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        msgs[0],
        format!("metadata.labels: Invalid value: \"bad key\": {NAME_PART_MSG}")
    );
    assert!(msgs[1].starts_with("metadata.labels: Invalid value: \"-x\": a valid label must be"));
}

#[test]
fn annotations_over_256k_are_too_long() {
    let mut ann = BTreeMap::new();
    ann.insert("a".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B));
    let errs = validate_annotations(&ann, &Path::from_names(&["metadata", "annotations"]));
    assert_eq!(
        errs.0[0].to_string(),
        "metadata.annotations: Too long: must have at most 262144 bytes"
    );
    assert_eq!(
        validate_annotations_size(&ann),
        Err("annotations size 262145 is larger than limit 262144".to_string())
    );
    ann.insert(
        "a".to_string(),
        "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1),
    );
    assert!(validate_annotations(&ann, &Path::new("a")).is_empty());
}

#[test]
fn annotation_keys_are_case_insensitive_qualified_names() {
    let ann: BTreeMap<String, String> = [("Example.COM/Key".into(), "v".into())].into();
    assert!(validate_annotations(&ann, &Path::new("a")).is_empty());
    let ann: BTreeMap<String, String> = [("a/b/c".into(), "v".into())].into();
    assert!(validate_annotations(&ann, &Path::new("a")).0[0]
        .to_string()
        .starts_with("a: Invalid value: \"a/b/c\": a qualified name"));
}

#[test]
fn label_selector_validation_messages() {
    let sel = metav1::LabelSelector {
        match_labels: Some([("app".to_string(), "ok".to_string())].into()),
        match_expressions: Some(vec![
            metav1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: None,
            },
            metav1::LabelSelectorRequirement {
                key: "b".into(),
                operator: "Exists".into(),
                values: Some(vec!["x".into()]),
            },
            metav1::LabelSelectorRequirement {
                key: "c".into(),
                operator: "Equals".into(),
                values: None,
            },
            metav1::LabelSelectorRequirement {
                key: "d".into(),
                operator: "In".into(),
                values: Some(vec!["-bad".into()]),
            },
        ]),
    };
    let errs = validate_label_selector(
        Some(&sel),
        LabelSelectorValidationOptions::default(),
        &Path::from_names(&["spec", "selector"]),
    );
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(msgs[0], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
    assert_eq!(msgs[1], "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    assert_eq!(msgs[2], "spec.selector.matchExpressions[2].operator: Invalid value: \"Equals\": not a valid selector operator");
    assert!(msgs[3].starts_with(
        "spec.selector.matchExpressions[3].values[0]: Invalid value: \"-bad\": a valid label must"
    ));
    assert_eq!(msgs.len(), 4);
    let relaxed = LabelSelectorValidationOptions {
        allow_invalid_label_value_in_selector: true,
    };
    assert_eq!(
        validate_label_selector(Some(&sel), relaxed, &Path::new("s")).len(),
        3
    );
    assert!(validate_label_selector(None, relaxed, &Path::new("s")).is_empty());
}

#[test]
fn port_names_and_numbers() {
    assert!(is_valid_port_name("http").is_empty());
    assert_eq!(
        is_valid_port_name("1234"),
        vec!["must contain at least one letter (a-z)".to_string()]
    );
    assert_eq!(
        is_valid_port_name("-a--b-"),
        vec![
            "must not contain consecutive hyphens".to_string(),
            "must not begin or end with a hyphen".to_string()
        ]
    );
    assert_eq!(
        is_valid_port_num(0),
        vec!["must be between 1 and 65535, inclusive".to_string()]
    );
    assert!(is_valid_port_num(80).is_empty());
}

#[test]
fn path_segment_names() {
    assert_eq!(
        is_valid_path_segment_name(".."),
        vec!["may not be '..'".to_string()]
    );
    assert_eq!(
        is_valid_path_segment_name("a/b%"),
        vec![
            "may not contain '/'".to_string(),
            "may not contain '%'".to_string()
        ]
    );
}

#[test]
fn immutable_field_message() {
    let errs = validate_immutable_field(&"b", &"a", "b", &Path::from_names(&["spec", "selector"]));
    assert_eq!(
        errs.0[0].to_string(),
        "spec.selector: Invalid value: \"b\": field is immutable"
    );
}
