use super::*;

#[test]
fn bad_schedules_are_refused_in_robfigs_words() {
    let err = |s: &str| parse(s).unwrap_err();
    assert_eq!(err(""), "empty spec string");
    assert_eq!(
        err("* * * *"),
        "expected exactly 5 fields, found 4: [* * * *]"
    );
    assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
    assert_eq!(
        err("TZ=Europe/Berlin"),
        "provided bad location Europe/Berlin: unknown time zone Europe/Berlin"
    );
}

#[test]
fn a_tz_prefix_is_parsed_off_the_schedule() {
    let s = parse("CRON_TZ=Europe/Berlin 0 6 * * *").unwrap();
    assert_eq!(s.zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(
        s,
        Schedule {
            zone: Some("Europe/Berlin".into()),
            ..parse("0 6 * * *").unwrap()
        }
    );
}

#[test]
fn fields_become_bit_sets_with_robfigs_star_bit() {
    let Kind::Spec { minute, dow, .. } = parse("*/20 * * * *").unwrap().kind else {
        panic!("not a five-field spec");
    };
    assert_eq!(minute, 1 | 1 << 20 | 1 << 40);
    assert_eq!(dow, 0b111_1111 | STAR_BIT);
    // Empty list items are skipped, as Go's `strings.FieldsFunc`.
    assert_eq!(
        parse("1,,2 * * * *").unwrap(),
        parse("1,2 * * * *").unwrap()
    );
    // `@every` keeps whole seconds, at least one.
    assert_eq!(
        parse("@every 90.5s").unwrap().kind,
        Kind::Every(Duration::from_secs(90))
    );
    assert_eq!(
        parse("@every 10ms").unwrap().kind,
        Kind::Every(Duration::from_secs(1))
    );
}
