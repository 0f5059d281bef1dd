//! The JSON forms of metav1.Time, metav1.MicroTime and metav1.Duration, as Go
//! writes and reads them.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2024-01-02T03:04:05Z` (metav1.Time: seconds precision, UTC).
pub(crate) fn format_time(seconds: i64) -> Result<String, String> {
    let t = DateTime::<Utc>::from_timestamp(seconds, 0)
        .ok_or_else(|| format!("time {seconds}s since the epoch is out of range"))?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `2024-01-02T03:04:05.123456Z` (metav1.MicroTime).
pub(crate) fn format_micro_time(seconds: i64, nanos: i32) -> Result<String, String> {
    let nanos = u32::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| format!("nanos {nanos} is out of range"))?;
    let t = DateTime::<Utc>::from_timestamp(seconds, nanos / 1000 * 1000)
        .ok_or_else(|| format!("time {seconds}s since the epoch is out of range"))?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Parses an RFC 3339 time (any offset, optional fraction) to (seconds, nanos).
pub(crate) fn parse_time(s: &str) -> Result<(i64, i32), String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    // timestamp_subsec_nanos is below 2e9 (leap second), which fits an i32.
    Ok((t.timestamp(), t.timestamp_subsec_nanos() as i32))
}

/// Formats nanoseconds as Go's `time.Duration.String()`: "1h2m3.5s", "150ms", "0s".
pub fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, scale) = match u {
            0 => return "0s".to_owned(),
            1..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        out.push_str(&fraction(u, scale));
        out.push_str(unit);
    } else {
        let hours = u / 3_600_000_000_000;
        u -= hours * 3_600_000_000_000;
        let minutes = u / 60_000_000_000;
        u -= minutes * 60_000_000_000;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&fraction(u, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `value / scale` with the fraction's trailing zeros trimmed ("1.5", "2").
fn fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let frac = format!("{rest:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses Go's `time.ParseDuration` syntax ("1h30m", "1.5s", "-2ms", "0") to nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration (like \"1h30m\" or \"1.5s\")");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        total = total
            .checked_add(whole.checked_mul(scale).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        let mut place = scale;
        for d in frac.chars() {
            let d = d.to_digit(10).ok_or_else(bad)? as u128;
            place /= 10;
            total += d * place;
        }
        rest = tail;
    }
    let total = i64::try_from(total).map_err(|_| format!("{s:?} overflows a duration"))?;
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_go() {
        assert_eq!(format_time(1_704_164_645).unwrap(), "2024-01-02T03:04:05Z");
        assert_eq!(
            format_micro_time(1_704_164_645, 123_456_789).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            format_micro_time(1_704_164_645, 0).unwrap(),
            "2024-01-02T03:04:05.000000Z"
        );
        assert_eq!(
            parse_time("2024-01-02T04:04:05+01:00").unwrap(),
            (1_704_164_645, 0)
        );
        assert_eq!(
            parse_time("2024-01-02T03:04:05.5Z").unwrap(),
            (1_704_164_645, 500_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(format_time(i64::MAX).is_err());
    }

    #[test]
    fn durations_format_and_parse_like_go() {
        for (nanos, text) in [
            (0, "0s"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (150_000_000, "150ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-5_000_000_000, "-5s"),
        ] {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text).unwrap(), nanos, "{text}");
        }
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        for bad in ["", "5", "1x", "h", ".s", "-", "99999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
