use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn parse(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_the_valid_upstream_examples() {
    for s in [
        "",
        "x=a",
        "x=a,y=b,z=c",
        "x!=a,y=b",
        "x=",
        "x= ",
        "x=,z= ",
        "x= ,z= ",
        "!x",
        "x>1",
        "x>1,z<5",
        "x in (a)",
        "x in (a,b)",
        "x notin (a)",
        "x in (foo,,baz),y,z notin ()",
        "x in (foo,bar,baz),y,z notin (a,b)",
        "a.b/c-d=e",
        "x==a",
        "  x  in  (  a , b  )  ",
        "x,y",
        "!x,!y",
        "w in (a),x notin (b),y,!z",
    ] {
        parse(s);
    }
}

#[test]
fn rejects_the_invalid_upstream_examples() {
    for s in [
        "x=a||y=b",
        "x==a==b",
        "!x=a",
        "x<a",
        "x>1.1",
        "x in a",
        "x in (a",
        "x notin ( a b )",
        "x=a,",
        ",x=a",
        "(x)",
        "x in (,,",
        "x ! y",
        "!",
        "x=a b",
    ] {
        assert!(LabelSelector::parse(s).is_err(), "{s:?} should not parse");
    }
}

#[test]
fn invalid_values_are_reported_with_their_key() {
    assert_eq!(
        parse_err("x=a||y=b"),
        "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn parse_error_texts() {
    assert_eq!(
        parse_err("x==a==b"),
        "found '==', expected: ',' or 'end of string'"
    );
    assert_eq!(
        parse_err(",x=a"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        parse_err("x=a,"),
        "found '', expected: identifier after ','"
    );
    assert_eq!(
        parse_err("x in a"),
        "unable to parse requirement: found 'a' expected: '('"
    );
    assert_eq!(
        parse_err("x in (a"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        parse_err("x in ("),
        "unable to parse requirement: found '', expected: ',', ')' or identifier"
    );
    assert_eq!(
        parse_err("x in (a=)"),
        "unable to parse requirement: found '=', expected: ',' or ')'"
    );
    assert_eq!(
        parse_err("x in (,="),
        "unable to parse requirement: found '=', expected: ',', or identifier"
    );
    assert_eq!(
        parse_err("!"),
        "unable to parse requirement: found '', expected: identifier"
    );
    assert_eq!(
        parse_err("x (a)"),
        "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        parse_err("x=("),
        "unable to parse requirement: found '(', expected: identifier"
    );
    assert_eq!(
        parse_err("x>1.1"),
        "unable to parse requirement: values[0]: Invalid value: \"1.1\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        parse_err("a/b/c=d"),
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    assert_eq!(
        parse_err("x=-a"),
        "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn errors_carry_the_given_path() {
    let e = LabelSelector::parse_with_path("x>a", &Path::new("labelSelector")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to parse requirement: labelSelector.values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    let e = LabelSelector::parse_with_path("a/b/c", &Path::new("labelSelector")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unable to parse requirement: labelSelector: Invalid value: \"a/b/c\""),
        "{e}"
    );
}

#[test]
fn canonical_strings_are_sorted_by_key_and_value() {
    for (input, want) in [
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("z=c,y=b,x=a", "x=a,y=b,z=c"),
        (
            "x in (foo,,baz),y,z notin ()",
            "x in (,baz,foo),y,z notin ()",
        ),
        ("  x  in  (  b , a  )  ", "x in (a,b)"),
        ("x==a", "x==a"),
        ("x!=a", "x!=a"),
        ("!x", "!x"),
        ("x>1,z<5", "x>1,z<5"),
        ("x=", "x="),
        ("x notin (b,a,b)", "x notin (a,b)"),
        ("y,!x", "!x,y"),
        ("", ""),
    ] {
        assert_eq!(parse(input).to_string(), want, "{input}");
    }
}

#[test]
fn in_and_notin_are_identifiers_in_value_position() {
    let sel = parse("x in (in,notin)");
    assert!(sel.matches(&labels(&[("x", "in")])));
    assert_eq!(sel.to_string(), "x in (in,notin)");
    assert!(parse("x=in").matches(&labels(&[("x", "in")])));
}

#[test]
fn matching_follows_upstream_semantics() {
    let l = labels(&[("x", "a"), ("y", "b"), ("n", "5")]);
    let cases = [
        ("", true),
        ("x=a", true),
        ("x=b", false),
        ("x==a", true),
        ("x!=a", false),
        ("x!=b", true),
        ("z!=a", true),
        ("x in (a,b)", true),
        ("x in (b)", false),
        ("z in (a)", false),
        ("x notin (a)", false),
        ("z notin (a)", true),
        ("x", true),
        ("z", false),
        ("!z", true),
        ("!x", false),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("x>1", false),
        ("z>1", false),
        ("x=a,y=b", true),
        ("x=a,y=c", false),
        ("x=", false),
    ];
    for (s, want) in cases {
        assert_eq!(parse(s).matches(&l), want, "{s}");
    }
    assert!(parse("x=").matches(&labels(&[("x", "")])));
    assert!(LabelSelector::everything().matches(&BTreeMap::new()));
    assert!(!LabelSelector::nothing().matches(&BTreeMap::new()));
    assert!(parse("!x").matches_opt(None));
    assert!(!parse("x").matches_opt(None));
}

#[test]
fn requirement_validation_messages() {
    let e = Requirement::new("x", Operator::In, vec![], None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    );
    let e =
        Requirement::new("x", Operator::Equals, vec!["a".into(), "b".into()], None).unwrap_err();
    assert_eq!(e.to_string(), "values: Invalid value: []string{\"a\", \"b\"}: exact-match compatibility requires one single value");
    let e = Requirement::new("x", Operator::Exists, vec!["a".into()], None).unwrap_err();
    assert_eq!(e.to_string(), "values: Invalid value: []string{\"a\"}: values set must be empty for exists and does not exist");
    let e = Requirement::new(
        "x",
        Operator::GreaterThan,
        vec!["1".into(), "b".into()],
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[values: Invalid value: []string{\"1\", \"b\"}: for 'Gt', 'Lt' operators, exactly one value is required, values[1]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer]"
    );
    let e = Requirement::new("a b", Operator::Exists, vec![], None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("key: Invalid value: \"a b\": name part must consist of"),
        "{e}"
    );
}

#[test]
fn converts_metav1_label_selectors() {
    assert_eq!(LabelSelector::from_metav1(None), Ok(LabelSelector::Nothing));
    assert!(
        LabelSelector::from_metav1(Some(&metav1::LabelSelector::default()))
            .unwrap()
            .is_empty()
    );
    let ps = metav1::LabelSelector {
        match_labels: Some([("foo".to_string(), "bar".to_string())].into()),
        match_expressions: Some(vec![
            metav1::LabelSelectorRequirement {
                key: "baz".into(),
                operator: "In".into(),
                values: Some(vec!["qux".into(), "norf".into()]),
            },
            metav1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    let sel = LabelSelector::from_metav1(Some(&ps)).unwrap();
    assert_eq!(sel.to_string(), "!a,baz in (norf,qux),foo=bar");
    assert!(sel.matches(&labels(&[("foo", "bar"), ("baz", "qux")])));
    assert!(!sel.matches(&labels(&[("foo", "bar"), ("baz", "qux"), ("a", "")])));
    assert_eq!(format_metav1(Some(&ps)), "!a,baz in (norf,qux),foo=bar");
    assert_eq!(
        format_metav1(Some(&metav1::LabelSelector::default())),
        "<none>"
    );

    let bad_op = metav1::LabelSelector {
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "a".into(),
            operator: "Equals".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_metav1(Some(&bad_op))
            .unwrap_err()
            .to_string(),
        "\"Equals\" is not a valid pod selector operator"
    );
    assert_eq!(format_metav1(Some(&bad_op)), "<error>");
    let empty_in = metav1::LabelSelector {
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "a".into(),
            operator: "In".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_metav1(Some(&empty_in))
            .unwrap_err()
            .to_string(),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
}

#[test]
fn parses_into_metav1_label_selectors() {
    let ps = parse_to_metav1("app=web,tier in (b,a),!canary").unwrap();
    assert_eq!(
        ps.match_labels,
        Some([("app".to_string(), "web".to_string())].into())
    );
    let exprs = ps.match_expressions.unwrap();
    assert_eq!(exprs[0].key, "canary");
    assert_eq!(exprs[0].operator, "DoesNotExist");
    assert_eq!(exprs[1].operator, "In");
    assert_eq!(
        exprs[1].values,
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(
        parse_to_metav1("x>1").unwrap_err().to_string(),
        "\"gt\" isn't supported in label selectors"
    );
    assert_eq!(
        parse_to_metav1("x!=1").unwrap_err().to_string(),
        "\"!=\" is not a valid label selector operator"
    );
    assert_eq!(
        parse_to_metav1("x in a").unwrap_err().to_string(),
        "couldn't parse the selector string \"x in a\": unable to parse requirement: found 'a' expected: '('"
    );
}

#[test]
fn metav1_as_map_accepts_only_equality() {
    let ps = metav1::LabelSelector {
        match_labels: Some([("a".to_string(), "1".to_string())].into()),
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "b".into(),
            operator: "In".into(),
            values: Some(vec!["2".into()]),
        }]),
    };
    assert_eq!(
        metav1_as_map(Some(&ps)).unwrap(),
        Some(labels(&[("a", "1"), ("b", "2")]))
    );
    let ps = metav1::LabelSelector {
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "b".into(),
            operator: "Exists".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert_eq!(
        metav1_as_map(Some(&ps)).unwrap_err().to_string(),
        "operator \"Exists\" cannot be converted into the old label selector format"
    );
    assert_eq!(metav1_as_map(None).unwrap(), None);
}

#[test]
fn requires_exact_match_finds_single_values() {
    let sel = parse("a=1,b in (2),c in (3,4),d!=5");
    assert_eq!(sel.requires_exact_match("a"), Some("1"));
    assert_eq!(sel.requires_exact_match("b"), Some("2"));
    assert_eq!(sel.requires_exact_match("c"), None);
    assert_eq!(sel.requires_exact_match("d"), None);
    assert_eq!(sel.requires_exact_match("e"), None);
}

#[test]
fn selectors_from_sets() {
    let set = labels(&[("b", "2"), ("a", "1")]);
    let sel = LabelSelector::from_set(&set);
    assert_eq!(sel.to_string(), "a=1,b=2");
    assert!(sel.matches(&set));
    assert!(LabelSelector::from_set_validated(&labels(&[("a b", "1")])).is_err());
    let added = sel.add([Requirement::new("0", Operator::Exists, vec![], None).unwrap()]);
    assert_eq!(added.to_string(), "0,a=1,b=2");
}

#[test]
fn odd_input_never_panics() {
    for s in [
        "\u{0}",
        "é=ü",
        "x in (é)",
        "(((",
        ")))",
        "!!!",
        "==",
        "x in ((a))",
        "x=a=b",
        "\t\n",
        "x notin",
        "x in (a,b",
        "<>",
        "x<",
        "x>",
    ] {
        let _ = LabelSelector::parse(s);
    }
}
