use super::*;
use api::kinds::cron::parse;
use chrono_tz::Tz;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn next_utc(spec: &str, after: &str) -> Option<String> {
    next(&parse(spec).unwrap(), at(after), &Utc).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn next_in(spec: &str, zone: &str, after: &str) -> String {
    let tz: Tz = zone.parse().unwrap();
    next(&parse(spec).unwrap(), at(after), &tz)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[test]
fn steps_ranges_and_lists_pick_the_next_minute() {
    let cases = [
        ("* * * * *", "2024-05-01T10:07:30Z", "2024-05-01T10:08:00Z"),
        ("* * * * *", "2024-05-01T10:07:00Z", "2024-05-01T10:08:00Z"),
        (
            "*/15 * * * *",
            "2024-05-01T10:07:30Z",
            "2024-05-01T10:15:00Z",
        ),
        (
            "*/15 * * * *",
            "2024-05-01T10:45:00Z",
            "2024-05-01T11:00:00Z",
        ),
        (
            "5/20 * * * *",
            "2024-05-01T10:26:00Z",
            "2024-05-01T10:45:00Z",
        ),
        (
            "0,30 8-10 * * *",
            "2024-05-01T10:31:00Z",
            "2024-05-02T08:00:00Z",
        ),
        (
            "10-20/5 * * * *",
            "2024-05-01T10:16:00Z",
            "2024-05-01T10:20:00Z",
        ),
        (
            "0 0 1 */3 *",
            "2024-05-01T10:00:00Z",
            "2024-07-01T00:00:00Z",
        ),
        (
            "59 23 31 12 *",
            "2024-05-01T00:00:00Z",
            "2024-12-31T23:59:00Z",
        ),
        (
            "0 12 29 2 *",
            "2025-01-01T00:00:00Z",
            "2028-02-29T12:00:00Z",
        ),
    ];
    for (spec, after, want) in cases {
        assert_eq!(
            next_utc(spec, after).as_deref(),
            Some(want),
            "{spec} after {after}"
        );
    }
}

#[test]
fn month_and_weekday_names_are_case_insensitive() {
    // 2024-05-03 is a Friday.
    assert_eq!(
        next_utc("0 9 * * MON-FRI", "2024-05-03T10:00:00Z").as_deref(),
        Some("2024-05-06T09:00:00Z")
    );
    assert_eq!(
        next_utc("0 9 * jan,Jul sun", "2024-05-03T10:00:00Z").as_deref(),
        Some("2024-07-07T09:00:00Z")
    );
}

#[test]
fn day_of_month_and_weekday_combine_with_or_unless_one_is_a_star() {
    // The 13th or any Friday: Friday 2024-05-03 comes first.
    assert_eq!(
        next_utc("0 0 13 * FRI", "2024-05-01T00:00:00Z").as_deref(),
        Some("2024-05-03T00:00:00Z")
    );
    // `*/1` keeps the star; `*/2` does not (robfig's star bit).
    assert_eq!(
        next_utc("0 0 13 * */1", "2024-05-01T00:00:00Z").as_deref(),
        Some("2024-05-13T00:00:00Z")
    );
}

#[test]
fn descriptors_match_their_five_field_forms() {
    let after = "2024-05-15T10:30:00Z";
    for (d, want) in [
        ("@yearly", "2025-01-01T00:00:00Z"),
        ("@annually", "2025-01-01T00:00:00Z"),
        ("@monthly", "2024-06-01T00:00:00Z"),
        ("@weekly", "2024-05-19T00:00:00Z"),
        ("@daily", "2024-05-16T00:00:00Z"),
        ("@midnight", "2024-05-16T00:00:00Z"),
        ("@hourly", "2024-05-15T11:00:00Z"),
        ("@every 90s", "2024-05-15T10:31:30Z"),
    ] {
        assert_eq!(next_utc(d, after).as_deref(), Some(want), "{d}");
    }
}

#[test]
fn impossible_dates_have_no_next_run() {
    assert_eq!(next_utc("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
}

#[test]
fn time_zones_move_the_run_with_their_offset() {
    // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    assert_eq!(
        next_in("0 9 * * *", "America/New_York", "2024-01-10T00:00:00Z"),
        "2024-01-10T14:00:00Z"
    );
    assert_eq!(
        next_in("0 9 * * *", "America/New_York", "2024-07-10T00:00:00Z"),
        "2024-07-10T13:00:00Z"
    );
    assert_eq!(
        next_in("30 5 * * *", "Asia/Kolkata", "2024-07-10T00:00:00Z"),
        "2024-07-11T00:00:00Z"
    );
    assert_eq!(
        next_in("@daily", "Asia/Tokyo", "2024-07-10T16:00:00Z"),
        "2024-07-11T15:00:00Z"
    );
}

#[test]
fn a_wall_time_skipped_by_daylight_saving_is_skipped_that_day() {
    // 2024-03-10 02:30 does not exist in New York (02:00 EST -> 03:00 EDT).
    assert_eq!(
        next_in("30 2 * * *", "America/New_York", "2024-03-10T05:00:00Z"),
        "2024-03-11T06:30:00Z"
    );
    // A schedule at 03:00 still runs on the day of the change.
    assert_eq!(
        next_in("0 3 * * *", "America/New_York", "2024-03-10T05:00:00Z"),
        "2024-03-10T07:00:00Z"
    );
}

#[test]
fn a_wall_time_repeated_by_daylight_saving_runs_twice() {
    // 2024-11-03 01:30 happens in EDT (05:30Z) and again in EST (06:30Z).
    assert_eq!(
        next_in("30 1 * * *", "America/New_York", "2024-11-03T04:00:00Z"),
        "2024-11-03T05:30:00Z"
    );
    assert_eq!(
        next_in("30 1 * * *", "America/New_York", "2024-11-03T05:30:00Z"),
        "2024-11-03T06:30:00Z"
    );
    assert_eq!(
        next_in("30 1 * * *", "America/New_York", "2024-11-03T06:30:00Z"),
        "2024-11-04T06:30:00Z"
    );
}

#[test]
fn daily_runs_across_a_daylight_saving_change_stay_at_local_midnight() {
    assert_eq!(
        next_in("0 0 * * *", "Europe/Berlin", "2024-03-30T23:30:00Z"),
        "2024-03-31T22:00:00Z"
    );
    assert_eq!(
        next_in("0 0 * * *", "Europe/Berlin", "2024-03-30T22:30:00Z"),
        "2024-03-30T23:00:00Z"
    );
}
