use super::*;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn canonical_forms_match_upstream() {
    for (input, want) in [
        ("0", "0"),
        ("0n", "0"),
        ("0u", "0"),
        ("0m", "0"),
        ("0Ki", "0"),
        ("0k", "0"),
        ("0Mi", "0"),
        ("0M", "0"),
        ("0Gi", "0"),
        ("0.0", "0"),
        ("00", "0"),
        ("-0", "0"),
        ("1n", "1n"),
        ("1u", "1u"),
        ("1m", "1m"),
        ("1Ki", "1Ki"),
        ("1k", "1k"),
        ("1Mi", "1Mi"),
        ("1M", "1M"),
        ("1Gi", "1Gi"),
        ("1G", "1G"),
        ("1Ti", "1Ti"),
        ("1T", "1T"),
        ("1Pi", "1Pi"),
        ("1P", "1P"),
        ("1Ei", "1Ei"),
        ("1E", "1E"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("1100m", "1100m"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("0.1", "100m"),
        ("0.001", "1m"),
        ("0.0001", "100u"),
        ("0.1m", "100u"),
        ("0.0001m", "100n"),
        ("0.00000001m", "1n"),
        ("0.0000000001", "1n"),
        ("1.0000001", "1000000100n"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("0.5Ki", "512"),
        ("1.5Ki", "1536"),
        ("3072Ki", "3Mi"),
        ("100Mi", "100Mi"),
        ("2e3", "2e3"),
        ("1e3", "1e3"),
        ("1E6", "1E6"),
        ("1e-3", "1e-3"),
        ("1000e-3", "1"),
        ("1.5e3", "1500"),
        ("15e2", "1500"),
        ("1e21", "1e21"),
        ("1k", "1k"),
        ("1000", "1k"),
        ("1000000", "1M"),
        ("1200000", "1200k"),
        ("1000k", "1M"),
        ("-1", "-1"),
        ("-1.5", "-1500m"),
        ("-0.1m", "-100u"),
        ("-1000m", "-1"),
        ("-1024Mi", "-1Gi"),
        ("12345678901234567890", "12345678901234567890"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        ("9223372036854775807Ki", "9223372036854775807"),
        ("8Ei", "9223372036854775807"),
        ("4Ei", "4Ei"),
    ] {
        assert_eq!(q(input).to_string(), want, "{input}");
    }
}

#[test]
fn already_canonical_looking_text_is_kept_verbatim() {
    // Upstream reuses the input when its fast path sees a canonical shape.
    assert_eq!(q("+1").to_string(), "+1");
    assert_eq!(q("01").to_string(), "01");
    assert_eq!(q("01").canonical(), "1");
    assert_eq!(q("1E3").to_string(), "1E3");
    assert_eq!(q("1E3").canonical(), "1e3");
}

#[test]
fn parse_errors_are_worded_as_upstream() {
    let format = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    for bad in [
        "", "1.1.1", "x", "1x", "1e-3.5", "Mi5x", "1 ", " 1", "1Gi ", "1,5", "1KI",
    ] {
        assert_eq!(
            Quantity::parse(bad).unwrap_err().to_string(),
            format,
            "{bad:?}"
        );
    }
    for bad in ["1i", "1ee", "1E+", "1+1", "1Mi3", "1e", "1Kii"] {
        assert_eq!(
            Quantity::parse(bad).unwrap_err().to_string(),
            "unable to parse quantity's suffix",
            "{bad:?}"
        );
    }
    for bad in ["Ei", "-Ei", ".Pi", "e-10"] {
        assert_eq!(
            Quantity::parse(bad).unwrap_err().to_string(),
            "unable to parse numeric part of quantity",
            "{bad:?}"
        );
    }
}

#[test]
fn degenerate_inputs_parse_like_upstream() {
    // Upstream's fast path turns these into zero.
    for s in [".", "Mi", "-", "+", "e-9", "k"] {
        assert!(q(s).is_zero(), "{s}");
    }
}

#[test]
fn comparison_is_numeric_across_suffixes() {
    assert_eq!(q("1000m"), q("1"));
    assert_eq!(q("1Ki"), q("1024"));
    assert!(q("1Gi") > q("1G"));
    assert!(q("-1") < q("0"));
    assert!(q("-2") < q("-1"));
    assert!(q("1e100") > q("999999999999999999999999"));
    assert!(q("1n") > q("0"));
    assert_eq!(q("500m").cmp_i64(1), Ordering::Less);
    assert_eq!(q("2").cmp_i64(1), Ordering::Greater);
    assert_eq!(q("1e-9"), q("1n"));
}

#[test]
fn addition_and_subtraction() {
    let mut a = q("100m");
    a.add(&q("200m"));
    assert_eq!(a.to_string(), "300m");
    let mut a = q("1Gi");
    a.sub(&q("512Mi"));
    assert_eq!(a.to_string(), "512Mi");
    assert_eq!((q("1") + q("500m")).to_string(), "1500m");
    assert_eq!((q("1") - q("1")).to_string(), "0");
    let mut z = Quantity::zero();
    z.add(&q("1Ki"));
    assert_eq!(z.to_string(), "1Ki");
    let mut z = Quantity::zero();
    z.sub(&q("1Ki"));
    assert_eq!(z.to_string(), "-1Ki");
    assert_eq!((q("1e3") + q("1")).to_string(), "1001");
    assert!(q("1") + q("1e1000000000") > q("1e999999999"));
}

#[test]
fn scaled_values_round_away_from_zero() {
    assert_eq!(q("1.5").milli_value(), 1500);
    assert_eq!(q("1m").milli_value(), 1);
    assert_eq!(q("1u").milli_value(), 1);
    assert_eq!(q("1.5").value(), 2);
    assert_eq!(q("-1.5").value(), -2);
    assert_eq!(q("1Gi").value(), 1 << 30);
    assert_eq!(q("1e30").value(), i64::MAX);
    assert_eq!(q("-1e30").value(), i64::MIN);
    assert_eq!(q("1k").scaled_value(scale::KILO), 1);
    assert_eq!(q("1").scaled_value(scale::NANO), 1_000_000_000);
    assert_eq!(q("2").as_i64(), Some(2));
    assert_eq!(q("2.5").as_i64(), None);
    assert!((q("1.5Gi").as_f64() - 1610612736.0).abs() < 1e-3);
}

#[test]
fn round_up_reports_lost_precision() {
    let mut a = q("1.5");
    assert!(!a.round_up(0));
    assert_eq!(a.to_string(), "2");
    let mut b = q("2");
    assert!(b.round_up(0));
    let mut c = q("1234m");
    assert!(!c.round_up(-1));
    assert_eq!(c.to_string(), "1300m");
}

#[test]
fn constructors_print_like_upstream() {
    assert_eq!(Quantity::new(1024, Format::BinarySI).to_string(), "1Ki");
    assert_eq!(Quantity::new(1000, Format::DecimalSI).to_string(), "1k");
    assert_eq!(
        Quantity::new(1000, Format::DecimalExponent).to_string(),
        "1e3"
    );
    assert_eq!(Quantity::new(100, Format::BinarySI).to_string(), "100");
    assert_eq!(
        Quantity::new_milli(1500, Format::DecimalSI).to_string(),
        "1500m"
    );
    assert_eq!(
        Quantity::new_milli(1500, Format::BinarySI).to_string(),
        "1500m"
    );
    assert_eq!(
        Quantity::new_milli(2048000, Format::BinarySI).to_string(),
        "2Ki"
    );
    assert_eq!(Quantity::new_scaled(5, scale::MEGA).to_string(), "5M");
    assert_eq!(Quantity::new(-1025, Format::BinarySI).to_string(), "-1025");
    let mut m = Quantity::new(3, Format::DecimalSI);
    assert!(m.mul(1000));
    assert_eq!(m.to_string(), "3k");
    let mut n = q("5");
    n.neg();
    assert_eq!(n.to_string(), "-5");
}

#[test]
fn json_round_trips_through_strings_and_numbers() {
    let v: Quantity = serde_json::from_str("\"1.5Gi\"").unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), "\"1536Mi\"");
    let v: Quantity = serde_json::from_str("0.5").unwrap();
    assert_eq!(v.to_string(), "500m");
    let v: Quantity = serde_json::from_str("\" 100m \"").unwrap();
    assert_eq!(v.to_string(), "100m");
    let v: Quantity = serde_json::from_str("null").unwrap();
    assert!(v.is_zero());
    assert!(serde_json::from_str::<Quantity>("\"abc\"").is_err());
    assert!(serde_json::from_str::<Quantity>("true").is_err());
}

#[test]
fn converts_to_and_from_k8s_openapi() {
    let o = k8s_openapi::apimachinery::pkg::api::resource::Quantity("1024Mi".into());
    let ours = Quantity::try_from(&o).unwrap();
    assert_eq!(OpenApiQuantity::from(&ours).0, "1Gi");
    assert_eq!(Quantity::canonicalize("2000m").unwrap(), "2");
}

#[test]
fn huge_exponents_do_not_blow_up() {
    for s in [
        "1e2147483647",
        "1e-2147483648",
        "1.5e999999999",
        "123456789012345678901234e-999999999",
        "1e4294967296",
    ] {
        let v = q(s);
        let _ = v.to_string();
        let _ = v.value();
        let _ = v.milli_value();
        let _ = v.as_f64();
        let _ = v.cmp_quantity(&q("1"));
    }
    assert_eq!(q("1e2147483647").to_string(), "10e2147483646");
    // Go truncates the exponent to int32: 2^32 becomes 0.
    assert_eq!(q("1e4294967296").canonical(), "1");
    assert_eq!(q("1e-2147483648").to_string(), "1e-9");
}

#[test]
fn milli_quantities_print_canonically_as_upstream() {
    // Upstream TestQuantityString's decQuantity(n, -3, DecimalSI) cases and
    // the HPA's NewMilliQuantity(rawUtilization, DecimalSI).
    for (milli, text) in [
        (1, "1m"),
        (80, "80m"),
        (1080, "1080m"),
        (1000, "1"),
        (3_000_000, "3k"),
        (335_872_000, "335872"),
        (335_872_000_000, "335872k"),
        (1_234_567, "1234567m"),
        (1_000_000_000_000, "1G"),
        (-1080, "-1080m"),
    ] {
        assert_eq!(
            Quantity::new_milli(milli, Format::DecimalSI).to_string(),
            text,
            "{milli}m"
        );
    }
}
