//! `resource.Quantity`: fixed-point amounts like `100m`, `1.5Gi` or `2e3`,
//! parsed, compared, added and printed exactly as upstream's
//! `k8s.io/apimachinery/pkg/api/resource` does (including its canonical form,
//! e.g. `1000m` → `1`, `0.5` → `500m`, `1024Mi` → `1Gi`, `1.5Gi` → `1536Mi`).
//!
//! A quantity is an exact decimal `mantissa × 10^exp` (never a float), rounded
//! up to nano precision when parsed, plus the suffix family it prints with.
//! Upstream keeps the caller's text when it is already canonical-looking (so
//! `+1` or `01` round-trip unchanged); so do we.

use num_bigint::{BigInt, Sign};
use num_traits::{Signed, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The suffix family a quantity prints with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M` (powers of 1000)
    DecimalSI,
}

/// The parse errors, worded as upstream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// Base-10 exponents of the named scales.
pub mod scale {
    pub const NANO: i32 = -9;
    pub const MICRO: i32 = -6;
    pub const MILLI: i32 = -3;
    pub const KILO: i32 = 3;
    pub const MEGA: i32 = 6;
    pub const GIGA: i32 = 9;
    pub const TERA: i32 = 12;
    pub const PETA: i32 = 15;
    pub const EXA: i32 = 18;
}

/// Exponent gaps beyond this are not aligned digit by digit in `add`/`sub`
/// (upstream would allocate the full number); the far smaller operand is
/// dropped instead.
const MAX_ALIGN_DIGITS: u64 = 100_000;

/// A resource quantity.
#[derive(Clone, Debug)]
pub struct Quantity {
    mantissa: BigInt,
    exp: i64,
    format: Format,
    /// The parsed text, when upstream would re-emit it verbatim.
    cached: Option<String>,
}

impl Default for Quantity {
    fn default() -> Quantity {
        Quantity::zero()
    }
}

fn pow10(n: u64) -> BigInt {
    num_traits::pow(BigInt::from(10u8), usize::try_from(n).unwrap_or(usize::MAX))
}

fn parse_quantity_string(s: &str) -> Result<(bool, &str, &str, &str, &str), QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    // Leading zeros.
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, "0", "0", "", ""));
    }
    // The integer part.
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, &s[..end], &s[num_start..end], "", ""));
    }
    let mut num = &s[num_start..pos];
    if num.is_empty() {
        num = "0";
    }
    // The fraction.
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Ok((positive, &s[..end], num, denom, ""));
        }
    }
    let value = &s[..pos];
    // The suffix: letters, an optional sign, digits.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, value, num, denom, &s[suffix_start..]));
    }
    if b[pos] == b'-' || b[pos] == b'+' {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, value, num, denom, &s[suffix_start..]));
    }
    Err(QuantityError::FormatWrong)
}

/// Upstream's suffixer: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            // Go parses an int64 and truncates it to int32.
            let parsed: i64 = s[1..].parse().ok()?;
            Some((10, i64::from(parsed as i32), Format::DecimalExponent))
        }
        _ => None,
    }
}

fn decimal_si_suffix(exp: i64) -> &'static str {
    match exp {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        // Upstream prints no suffix for exponents outside its table.
        _ => "",
    }
}

fn binary_si_suffix(exp: i64) -> &'static str {
    match exp {
        10 => "Ki",
        20 => "Mi",
        30 => "Gi",
        40 => "Ti",
        50 => "Pi",
        60 => "Ei",
        _ => "",
    }
}

/// Removes all factors of `base` from `m`, returning the rest and the count.
fn remove_factors(m: &BigInt, base: u32) -> (BigInt, i64) {
    let mut m = m.clone();
    let mut times = 0;
    if m.is_zero() {
        return (m, 0);
    }
    let b = BigInt::from(base);
    loop {
        let (q, r) = (&m / &b, &m % &b);
        if !r.is_zero() || q.is_zero() {
            break;
        }
        m = q;
        times += 1;
    }
    (m, times)
}

/// Number of decimal digits of |m| (m != 0).
fn digit_count(m: &BigInt) -> u64 {
    m.magnitude().to_str_radix(10).len() as u64
}

/// `m × 10^exp` rounded away from zero to a multiple of `10^scale`, as
/// `(mantissa, scale)`; `exact` tells whether nothing was lost.
fn round_up_to_scale(m: &BigInt, exp: i64, scale: i64) -> (BigInt, bool) {
    if exp >= scale {
        let shift = (exp - scale) as u64;
        return (m * pow10(shift), true);
    }
    if m.is_zero() {
        return (BigInt::zero(), true);
    }
    let shift = (scale - exp) as u64;
    if shift > digit_count(m) {
        // Everything is below the rounding unit.
        let one = if m.is_negative() {
            BigInt::from(-1)
        } else {
            BigInt::from(1)
        };
        return (one, false);
    }
    let d = pow10(shift);
    let (q, r) = (m / &d, m % &d);
    if r.is_zero() {
        (q, true)
    } else if m.is_negative() {
        (q - 1, false)
    } else {
        (q + 1, false)
    }
}

impl Quantity {
    /// Zero, printed `0`.
    pub fn zero() -> Quantity {
        Quantity {
            mantissa: BigInt::zero(),
            exp: 0,
            format: Format::DecimalSI,
            cached: None,
        }
    }

    /// `value` in `format` (upstream's `NewQuantity`).
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity {
            mantissa: BigInt::from(value),
            exp: 0,
            format,
            cached: None,
        }
    }

    /// `value / 1000` in `format` (upstream's `NewMilliQuantity`).
    pub fn new_milli(value: i64, format: Format) -> Quantity {
        Quantity {
            mantissa: BigInt::from(value),
            exp: -3,
            format,
            cached: None,
        }
    }

    /// `value × 10^scale`, DecimalSI (upstream's `NewScaledQuantity`).
    pub fn new_scaled(value: i64, scale: i32) -> Quantity {
        Quantity {
            mantissa: BigInt::from(value),
            exp: i64::from(scale),
            format: Format::DecimalSI,
            cached: None,
        }
    }

    /// Parses a quantity (upstream's `ParseQuantity`).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                cached: Some(s.to_string()),
                ..Quantity::zero()
            });
        }
        let (positive, value, num, denom, suffix) = parse_quantity_string(s)?;
        let (base, exponent, format) = interpret_suffix(suffix).ok_or(QuantityError::Suffix)?;

        // Upstream's int64 fast path: it decides whether the input text is
        // kept as the printed form, and which degenerate inputs parse.
        let (precision, scale) = match format {
            Format::DecimalExponent | Format::DecimalSI => (
                18 - (num.len() + denom.len()) as i64,
                exponent - denom.len() as i64,
            ),
            Format::BinarySI if exponent >= 0 && denom.is_empty() => {
                // int32(float32(exponent)*3/10): exponent is a multiple of 10.
                (15 - num.len() as i64 - exponent * 3 / 10 - 1, 0)
            }
            Format::BinarySI => (-1, 0),
        };
        if precision >= 0 && scale >= i64::from(scale::NANO) {
            let shifted = format!("{num}{denom}");
            let v: i64 = shifted.parse().map_err(|_| QuantityError::Numeric)?;
            let factor: i64 = if base == 2 { 1i64 << exponent } else { 1 };
            if let Some(mut result) = v.checked_mul(factor) {
                if !positive {
                    result = -result;
                }
                let keep_text = match format {
                    Format::BinarySI => exponent % 10 == 0 && v & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                return Ok(Quantity {
                    mantissa: BigInt::from(result),
                    exp: scale,
                    format,
                    cached: keep_text.then(|| s.to_string()),
                });
            }
        }

        // The arbitrary-precision path.
        if !value.bytes().any(|c| c.is_ascii_digit()) {
            return Err(QuantityError::Numeric);
        }
        let digits = format!("{num}{denom}");
        let mut mantissa: BigInt = digits.parse().map_err(|_| QuantityError::Numeric)?;
        let mut exp = -(denom.len() as i64);
        if base == 10 {
            exp += exponent;
        } else {
            mantissa <<= usize::try_from(exponent).map_err(|_| QuantityError::Suffix)?;
        }
        // Round non-zero values up to the nano unit: asking for a tiny amount
        // of a resource should give some of it.
        if !mantissa.is_zero() && exp < i64::from(scale::NANO) {
            let (m, _) = round_up_to_scale(&mantissa, exp, i64::from(scale::NANO));
            mantissa = m;
            exp = i64::from(scale::NANO);
        }
        let mut format = format;
        if format == Format::BinarySI {
            let max = BigInt::from(i64::MAX);
            let q = Quantity {
                mantissa: mantissa.clone(),
                exp,
                format,
                cached: None,
            };
            if q.cmp_mag(&max, 0) == Ordering::Greater {
                mantissa = max;
                exp = 0;
            }
            let q = Quantity {
                mantissa: mantissa.clone(),
                exp,
                format,
                cached: None,
            };
            if q.cmp_mag(&BigInt::from(1), 0) == Ordering::Less && !mantissa.is_zero() {
                format = Format::DecimalSI;
            }
        }
        if !positive {
            mantissa = -mantissa;
        }
        Ok(Quantity {
            mantissa,
            exp,
            format,
            cached: None,
        })
    }

    /// Compares |self| with |m × 10^exp|.
    fn cmp_mag(&self, m: &BigInt, exp: i64) -> Ordering {
        cmp_decimal(
            &BigInt::from_biguint(Sign::Plus, self.mantissa.magnitude().clone()),
            self.exp,
            &m.abs(),
            exp,
        )
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Changes the suffix family used for printing.
    pub fn set_format(&mut self, format: Format) {
        self.format = format;
        self.cached = None;
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa.is_zero()
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        match self.mantissa.sign() {
            Sign::Minus => -1,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        }
    }

    /// Upstream's `Cmp`.
    pub fn cmp_quantity(&self, other: &Quantity) -> Ordering {
        cmp_decimal(&self.mantissa, self.exp, &other.mantissa, other.exp)
    }

    /// Upstream's `CmpInt64`.
    pub fn cmp_i64(&self, v: i64) -> Ordering {
        cmp_decimal(&self.mantissa, self.exp, &BigInt::from(v), 0)
    }

    /// Adds `y` (upstream's `Add`); a zero quantity takes `y`'s format.
    pub fn add(&mut self, y: &Quantity) {
        self.cached = None;
        if self.is_zero() {
            self.format = y.format;
        }
        let (m, e) = add_decimal(&self.mantissa, self.exp, &y.mantissa, y.exp);
        self.mantissa = m;
        self.exp = e;
    }

    /// Subtracts `y` (upstream's `Sub`); a zero quantity takes `y`'s format.
    pub fn sub(&mut self, y: &Quantity) {
        self.cached = None;
        if self.is_zero() {
            self.format = y.format;
        }
        let neg = -y.mantissa.clone();
        let (m, e) = add_decimal(&self.mantissa, self.exp, &neg, y.exp);
        self.mantissa = m;
        self.exp = e;
    }

    /// Multiplies by `y`; false when the result does not fit an int64 mantissa
    /// (upstream's `Mul` reports inexactness that way).
    pub fn mul(&mut self, y: i64) -> bool {
        self.cached = None;
        self.mantissa *= y;
        self.mantissa.to_i64().is_some()
    }

    /// Negates the quantity.
    pub fn neg(&mut self) {
        self.cached = None;
        self.mantissa = -self.mantissa.clone();
    }

    /// Rounds away from zero to a multiple of `10^scale`; false when precision
    /// was lost (upstream's `RoundUp`).
    pub fn round_up(&mut self, scale: i32) -> bool {
        let scale = i64::from(scale);
        if self.exp >= scale {
            return true;
        }
        self.cached = None;
        let (m, exact) = round_up_to_scale(&self.mantissa, self.exp, scale);
        self.mantissa = m;
        self.exp = scale;
        exact
    }

    /// `ceil(q / 10^scale)` away from zero, saturating at the int64 bounds
    /// (upstream's `ScaledValue`).
    pub fn scaled_value(&self, scale: i32) -> i64 {
        if !self.is_zero() && digit_count(&self.mantissa) as i64 + self.exp - i64::from(scale) > 20
        {
            return if self.mantissa.is_negative() {
                i64::MIN
            } else {
                i64::MAX
            };
        }
        let (m, _) = round_up_to_scale(&self.mantissa, self.exp, i64::from(scale));
        m.to_i64()
            .unwrap_or(if m.is_negative() { i64::MIN } else { i64::MAX })
    }

    /// The value rounded up to an integer (upstream's `Value`).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(scale::MILLI)
    }

    /// The value as an exact int64, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        if !self.is_zero() && digit_count(&self.mantissa) as i64 + self.exp > 20 {
            return None;
        }
        let (m, exact) = round_up_to_scale(&self.mantissa, self.exp, 0);
        if exact {
            m.to_i64()
        } else {
            None
        }
    }

    /// A float approximation (upstream's `AsApproximateFloat64`).
    pub fn as_f64(&self) -> f64 {
        let base = self.mantissa.to_f64().unwrap_or(f64::NAN);
        if self.exp == 0 {
            return base;
        }
        base * 10f64.powi(i32::try_from(self.exp).unwrap_or(if self.exp > 0 {
            i32::MAX
        } else {
            i32::MIN
        }))
    }

    /// The canonical text (upstream's `CanonicalizeBytes`), ignoring any kept
    /// input text.
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut format = self.format;
        let mut rounded = None;
        if format == Format::BinarySI && self.exp > MAX_ALIGN_DIGITS as i64 {
            // Far beyond 2^63; not worth writing out as an integer.
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            if self.cmp_i64(-1024) == Ordering::Greater && self.cmp_i64(1024) == Ordering::Less {
                format = Format::DecimalSI;
            } else {
                let (m, exact) = round_up_to_scale(&self.mantissa, self.exp, 0);
                if exact {
                    rounded = Some(m);
                } else {
                    format = Format::DecimalSI;
                }
            }
        }
        match (format, rounded) {
            (Format::BinarySI, Some(v)) => {
                let (amount, times) = remove_factors(&v, 1024);
                format!("{amount}{}", binary_si_suffix(times * 10))
            }
            _ => {
                let (mut amount, times) = remove_factors(&self.mantissa, 10);
                let mut exp = self.exp + times;
                while exp % 3 != 0 {
                    amount *= 10;
                    exp -= 1;
                }
                let suffix = match format {
                    Format::DecimalExponent if exp == 0 => String::new(),
                    Format::DecimalExponent => format!("e{exp}"),
                    _ => decimal_si_suffix(exp).to_string(),
                };
                format!("{amount}{suffix}")
            }
        }
    }

    /// Parses and re-prints a quantity the way the API server stores it.
    pub fn canonicalize(s: &str) -> Result<String, QuantityError> {
        Ok(Quantity::parse(s)?.to_string())
    }

    /// Reads a quantity from JSON as upstream's `UnmarshalJSON` does: a
    /// string (trimmed) or a bare number; `null` is zero.
    pub fn from_json(value: &serde_json::Value) -> Result<Quantity, QuantityError> {
        match value {
            serde_json::Value::Null => Ok(Quantity::zero()),
            serde_json::Value::String(s) => Quantity::parse(s.trim()),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::FormatWrong),
        }
    }
}

/// Compares `a × 10^ea` with `b × 10^eb` without building huge numbers.
fn cmp_decimal(a: &BigInt, ea: i64, b: &BigInt, eb: i64) -> Ordering {
    let (sa, sb) = (a.sign(), b.sign());
    if sa != sb {
        return sign_rank(sa).cmp(&sign_rank(sb));
    }
    if sa == Sign::NoSign {
        return Ordering::Equal;
    }
    // Same sign: compare magnitudes by order of magnitude first.
    let oa = digit_count(a) as i64 + ea;
    let ob = digit_count(b) as i64 + eb;
    let mag = if oa != ob {
        oa.cmp(&ob)
    } else {
        let e = ea.min(eb);
        let a_al = a.magnitude() * pow10((ea - e) as u64).magnitude();
        let b_al = b.magnitude() * pow10((eb - e) as u64).magnitude();
        a_al.cmp(&b_al)
    };
    if sa == Sign::Minus {
        mag.reverse()
    } else {
        mag
    }
}

fn sign_rank(s: Sign) -> i8 {
    match s {
        Sign::Minus => -1,
        Sign::NoSign => 0,
        Sign::Plus => 1,
    }
}

fn add_decimal(a: &BigInt, ea: i64, b: &BigInt, eb: i64) -> (BigInt, i64) {
    if b.is_zero() {
        return (a.clone(), ea);
    }
    if a.is_zero() {
        return (b.clone(), eb);
    }
    let e = ea.min(eb);
    let (ga, gb) = ((ea - e) as u64, (eb - e) as u64);
    if ga > MAX_ALIGN_DIGITS {
        return (a.clone(), ea);
    }
    if gb > MAX_ALIGN_DIGITS {
        return (b.clone(), eb);
    }
    (a * pow10(ga) + b * pow10(gb), e)
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.cmp_quantity(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.cmp_quantity(other)
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(mut self, rhs: Quantity) -> Quantity {
        Quantity::add(&mut self, &rhs);
        self
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(mut self, rhs: Quantity) -> Quantity {
        Quantity::sub(&mut self, &rhs);
        self
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
        let v = serde_json::Value::deserialize(deserializer)?;
        Quantity::from_json(&v).map_err(serde::de::Error::custom)
    }
}

type OpenApiQuantity = k8s_openapi::apimachinery::pkg::api::resource::Quantity;

impl TryFrom<&OpenApiQuantity> for Quantity {
    type Error = QuantityError;
    fn try_from(q: &OpenApiQuantity) -> Result<Quantity, QuantityError> {
        Quantity::parse(q.0.trim())
    }
}

impl From<&Quantity> for OpenApiQuantity {
    fn from(q: &Quantity) -> OpenApiQuantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.to_string())
    }
}

#[cfg(test)]
mod tests;
