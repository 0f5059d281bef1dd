//! Cron schedules as CronJobs read them: `github.com/robfig/cron/v3`'s
//! standard parser (five fields with lists, ranges, steps, month and weekday
//! names, `@yearly` .. `@hourly` and `@every` descriptors, an optional
//! `TZ=`/`CRON_TZ=` prefix) and its `Next` arithmetic, walked in the
//! schedule's time zone with Go's rules for wall times that a daylight-saving
//! change skips or repeats. No IO.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

/// Set when a field was `*` or `?`: day-of-month and day-of-week then
/// combine with "and" instead of "or", as in robfig's `dayMatches`.
const STAR_BIT: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed schedule. `zone` is the `TZ=`/`CRON_TZ=` prefix, if any; the
/// caller resolves it (and `spec.timeZone`) to a time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub zone: Option<String>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every <duration>`: a fixed delay, whole seconds, at least one.
    Every(Duration),
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    if step == 1 {
        return !(u64::MAX << (max + 1)) & (u64::MAX << min);
    }
    let mut b = 0;
    let mut i = min;
    while i <= max {
        b |= 1 << i;
        i += step;
    }
    b
}

fn all(r: Bounds) -> u64 {
    bits(r.min, r.max, 1) | STAR_BIT
}

/// `cron.ParseStandard`, with robfig's error texts.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(sp) = spec.find(' ') else {
            let name = &spec[eq + 1..];
            return Err(format!(
                "provided bad location {name}: unknown time zone {name}"
            ));
        };
        zone = Some(spec[eq + 1..sp].to_string());
        spec = spec[sp..].trim();
    }
    let kind = if spec.starts_with('@') {
        descriptor(spec)?
    } else {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        Kind::Spec {
            minute: field(fields[0], MINUTES)?,
            hour: field(fields[1], HOURS)?,
            dom: field(fields[2], DOM)?,
            month: field(fields[3], MONTHS)?,
            dow: field(fields[4], DOW)?,
        }
    };
    Ok(Schedule { zone, kind })
}

fn descriptor(d: &str) -> Result<Kind, String> {
    let spec = |minute, hour, dom, month, dow| Kind::Spec {
        minute,
        hour,
        dom,
        month,
        dow,
    };
    Ok(match d {
        "@yearly" | "@annually" => spec(1, 1, 1 << 1, 1 << 1, all(DOW)),
        "@monthly" => spec(1, 1, 1 << 1, all(MONTHS), all(DOW)),
        "@weekly" => spec(1, 1, all(DOM), all(MONTHS), 1),
        "@daily" | "@midnight" => spec(1, 1, all(DOM), all(MONTHS), all(DOW)),
        "@hourly" => spec(1, all(HOURS), all(DOM), all(MONTHS), all(DOW)),
        _ => match d.strip_prefix("@every ") {
            Some(dur) => {
                let secs =
                    go_duration(dur).map_err(|e| format!("failed to parse duration {d}: {e}"))?;
                // robfig: under a second rounds up to one; otherwise whole seconds.
                let secs = if secs < 1.0 { 1 } else { secs.trunc() as u64 };
                Kind::Every(Duration::from_secs(secs))
            }
            None => return Err(format!("unrecognized descriptor: {d}")),
        },
    })
}

fn field(field: &str, r: Bounds) -> Result<u64, String> {
    let mut b = 0;
    for expr in field.split(',') {
        b |= range(expr, r)?;
    }
    Ok(b)
}

fn range(expr: &str, r: Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end);
    let mut extra = 0;
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = r.min;
        end = r.max;
        extra = STAR_BIT;
    } else {
        start = int_or_name(low_and_high[0], r.names)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], r.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn int_or_name(expr: &str, names: &[(&str, u32)]) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    int(expr)
}

fn int(expr: &str) -> Result<u32, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax"
        ));
    }
    let num: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range"
        )
    })?;
    if num < 0 {
        return Err(format!("negative number ({num}) not allowed: {expr}"));
    }
    // Anything past 63 is out of every field's range; keep it out.
    Ok(num.min(1000) as u32)
}

/// Go's `time.ParseDuration`, in seconds.
fn go_duration(s: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return Err(err());
        }
        let num: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        if u == 0 {
            return Err(format!("time: missing unit in duration \"{s}\""));
        }
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Ok(if neg { -total } else { total })
}

impl Schedule {
    /// The first activation strictly after `after`, reading the fields as
    /// wall-clock time in `tz` (robfig's `SpecSchedule.Next`); `None` when
    /// nothing matches within five years (e.g. `0 0 30 2 *`).
    pub fn next<Z: TimeZone>(&self, after: DateTime<Utc>, tz: &Z) -> Option<DateTime<Utc>> {
        let (minute, hour, dom, month, dow) = match self.kind {
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
            while !day_matches(dom, dow, &local(t)) {
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
}

fn truncate(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let ts = t.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(secs), 0).unwrap_or(t)
}

fn day_matches(dom: u64, dow: u64, t: &NaiveDateTime) -> bool {
    let dom_match = (1u64 << t.day()) & dom != 0;
    let dow_match = (1u64 << t.weekday().num_days_from_sunday()) & dow != 0;
    if dom & STAR_BIT != 0 || dow & STAR_BIT != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
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
