//! The cron schedule syntax CronJobs use: `github.com/robfig/cron/v3`'s
//! standard parser (five fields, ranges, lists, steps, month and weekday
//! names, `@`-descriptors, an optional `TZ=`/`CRON_TZ=` prefix), with its
//! error messages. API validation accepts or refuses a schedule with it; the
//! CronJob controller walks the parsed [`Schedule`] to its next run times.

use std::time::Duration;

/// Set in a field's bits when the field was `*` or `?` (and not stepped by
/// more than one): day-of-month and day-of-week then combine with "and"
/// instead of "or", as in robfig's `dayMatches`.
const STAR_BIT: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
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
    pub kind: Kind,
}

/// What a schedule fires on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Five fields as bit sets: bit `n` set when value `n` matches (months
    /// from 1, weekdays from 0 = Sunday), as robfig's `SpecSchedule`.
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

/// robfig's `dayMatches`: day-of-month `day` and weekday `weekday` (0 =
/// Sunday) against the `dom` and `dow` bits; "or" unless either was a star.
pub fn day_matches(dom: u64, dow: u64, day: u32, weekday: u32) -> bool {
    let dom_match = (1u64 << day) & dom != 0;
    let dow_match = (1u64 << weekday) & dow != 0;
    if dom & STAR_BIT != 0 || dow & STAR_BIT != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
}

fn bits(min: u64, max: u64, step: u64) -> u64 {
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
        parse_descriptor(spec)?
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
            minute: get_field(fields[0], MINUTES)?,
            hour: get_field(fields[1], HOURS)?,
            dom: get_field(fields[2], DOM)?,
            month: get_field(fields[3], MONTHS)?,
            dow: get_field(fields[4], DOW)?,
        }
    };
    Ok(Schedule { zone, kind })
}

/// Validation's view of [`parse`]: `Ok(())` for a valid schedule, else
/// upstream's error.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    parse(spec).map(|_| ())
}

fn parse_descriptor(d: &str) -> Result<Kind, String> {
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
                let secs = crate::gofmt::parse_duration(dur)
                    .map_err(|e| format!("failed to parse duration {d}: {e}"))?;
                // robfig: under a second rounds up to one; otherwise whole seconds.
                let secs = if secs < 1.0 { 1 } else { secs.trunc() as u64 };
                Kind::Every(Duration::from_secs(secs))
            }
            None => return Err(format!("unrecognized descriptor: {d}")),
        },
    })
}

/// `getField`: the union of the comma-separated ranges (empty ones skipped,
/// as Go's `strings.FieldsFunc`).
fn get_field(field: &str, r: Bounds) -> Result<u64, String> {
    let mut b = 0;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        b |= get_range(expr, r)?;
    }
    Ok(b)
}

fn get_range(expr: &str, r: Bounds) -> Result<u64, String> {
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
        start = parse_int_or_name(low_and_high[0], r.names)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], r.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
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

fn parse_int_or_name(expr: &str, names: &[(&str, u64)]) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

/// `mustParseInt` with Go's `strconv.Atoi` error texts.
fn must_parse_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            crate::gofmt::quote(expr)
        ));
    }
    let Ok(num) = expr.parse::<i64>() else {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            crate::gofmt::quote(expr)
        ));
    };
    if num < 0 {
        return Err(format!("negative number ({num}) not allowed: {expr}"));
    }
    Ok(num as u64)
}

#[cfg(test)]
mod tests;
