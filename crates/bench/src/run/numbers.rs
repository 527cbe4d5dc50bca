//! How the report rounds and prints numbers: medians, signed percentages, thousands separators,
//! and a dash for what was not measured.

/// The median; NaN when there is nothing.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// A ratio's distance from 1 as a signed percentage (`0.3` is `+30%`).
pub(crate) fn pct(x: f64) -> String {
    format!("{:+.0}%", x * 100.0)
}

/// `v` with `decimals` decimals, or a dash when it is missing or not finite.
pub(crate) fn opt(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite()).map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "–".into())
}

/// `v` rounded, with commas between thousands.
pub(crate) fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
