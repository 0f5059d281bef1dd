//! Next run times of a cron schedule (parsed by [`api::kinds::cron`], the
//! same parser API validation uses): robfig/cron v3's `Next` arithmetic,
//! walked in the schedule's time zone with Go's rules for wall times that a
//! daylight-saving change skips or repeats. No IO.

use api::kinds::cron::{day_matches, Kind, Schedule};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

/// The first activation of `sched` strictly after `after`, reading the
/// fields as wall-clock time in `tz` (robfig's `SpecSchedule.Next`); `None`
/// when nothing matches within five years (e.g. `0 0 30 2 *`).
pub fn next<Z: TimeZone>(sched: &Schedule, after: DateTime<Utc>, tz: &Z) -> Option<DateTime<Utc>> {
    let (minute, hour, dom, month, dow) = match sched.kind {
        Kind::Every(d) => {
            let base = after.with_nanosecond(0).unwrap_or(after);
            return Some(base + chrono::Duration::from_std(d).ok()?);
        }
        Kind::Spec {
            minute,
            hour,
            dom,
            month,
            dow,
        } => (minute, hour, dom, month, dow),
    };
    let local = |t: DateTime<Utc>| t.with_timezone(tz).naive_local();
    // The upcoming second, then seconds are always 0 in a standard spec.
    let mut t = after.with_nanosecond(0).unwrap_or(after) + chrono::Duration::seconds(1);
    let mut added = false;
    let year_limit = local(t).year() + 5;
    'wrap: loop {
        if local(t).year() > year_limit {
            return None;
        }
        while (1u64 << local(t).month()) & month == 0 {
            let l = local(t);
            if !added {
                added = true;
                t = go_date(tz, l.year(), l.month() as i64, 1, 0, 0, 0);
            }
            let l = local(t);
            t = go_date(
                tz,
                l.year(),
                l.month() as i64 + 1,
                l.day() as i64,
                l.hour() as i64,
                l.minute() as i64,
                l.second() as i64,
            );
            if local(t).month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(
            dom,
            dow,
            local(t).day(),
            local(t).weekday().num_days_from_sunday(),
        ) {
            let l = local(t);
            if !added {
                added = true;
                t = go_date(tz, l.year(), l.month() as i64, l.day() as i64, 0, 0, 0);
            }
            let l = local(t);
            t = go_date(
                tz,
                l.year(),
                l.month() as i64,
                l.day() as i64 + 1,
                l.hour() as i64,
                l.minute() as i64,
                l.second() as i64,
            );
            // Daylight saving can leave the day's start off midnight.
            let h = local(t).hour() as i64;
            if h != 0 {
                t = if h > 12 {
                    t + chrono::Duration::hours(24 - h)
                } else {
                    t - chrono::Duration::hours(h)
                };
            }
            if local(t).day() == 1 {
                continue 'wrap;
            }
        }
        while (1u64 << local(t).hour()) & hour == 0 {
            if !added {
                added = true;
                let l = local(t);
                t = go_date(
                    tz,
                    l.year(),
                    l.month() as i64,
                    l.day() as i64,
                    l.hour() as i64,
                    0,
                    0,
                );
            }
            t += chrono::Duration::hours(1);
            if local(t).hour() == 0 {
                continue 'wrap;
            }
        }
        while (1u64 << local(t).minute()) & minute == 0 {
            if !added {
                added = true;
                t = truncate(t, 60);
            }
            t += chrono::Duration::minutes(1);
            if local(t).minute() == 0 {
                continue 'wrap;
            }
        }
        while local(t).second() != 0 {
            if !added {
                added = true;
                t = truncate(t, 1);
            }
            t += chrono::Duration::seconds(1);
            if local(t).second() == 0 {
                continue 'wrap;
            }
        }
        return Some(t);
    }
}

fn truncate(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let ts = t.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(secs), 0).unwrap_or(t)
}

/// Go's `time.Date`: fields out of range carry over (month 13 is January
/// of the next year), and a wall time that a zone change skips or repeats
/// resolves as Go resolves it.
fn go_date<Z: TimeZone>(
    tz: &Z,
    year: i32,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
) -> DateTime<Utc> {
    let m0 = month - 1;
    let year = year as i64 + m0.div_euclid(12);
    let month = m0.rem_euclid(12) + 1;
    let first = NaiveDate::from_ymd_opt(year as i32, month as u32, 1).unwrap_or_default();
    let naive = first.and_hms_opt(0, 0, 0).unwrap_or_default()
        + chrono::Duration::days(day - 1)
        + chrono::Duration::hours(hour)
        + chrono::Duration::minutes(min)
        + chrono::Duration::seconds(sec);
    // The offset in force at the instant whose UTC reading equals this wall
    // time; if the result falls outside that offset's period, the offset in
    // force at the result.
    let offset =
        |at: NaiveDateTime| tz.offset_from_utc_datetime(&at).fix().local_minus_utc() as i64;
    let guess = offset(naive);
    let utc = naive - chrono::Duration::seconds(guess);
    let actual = offset(utc);
    let utc = if actual != guess {
        naive - chrono::Duration::seconds(actual)
    } else {
        utc
    };
    Utc.from_utc_datetime(&utc)
}

#[cfg(test)]
mod tests;
