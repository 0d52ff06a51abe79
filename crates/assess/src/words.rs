//! ICD 203 estimative language: the words and their probability bands.
//!
//! Intelligence Community Directive 203, "Analytic Standards" (ODNI, 2015),
//! section D.6.e(2): almost no chance 01–05 %, very unlikely 05–20 %, unlikely
//! 20–45 %, roughly even chance 45–55 %, likely 55–80 %, very likely 80–95 %,
//! almost certain 95–99 %. The directive offers nothing above 99 % or below 1 %, so
//! relaytrace never states a probability outside [1 %, 99 %] ([`clamp`]). Where two
//! bands share an edge, the edge belongs to the band nearer 50 % (0.05 is "very
//! unlikely", 0.55 "roughly even chance", 0.80 "likely"): a stated word never
//! overstates.

/// Lowest probability relaytrace states.
pub const FLOOR: f64 = 0.01;
/// Highest probability relaytrace states.
pub const CEILING: f64 = 0.99;

/// The bands, lowest first: (word, lower bound, upper bound).
pub const BANDS: [(&str, f64, f64); 7] = [
    ("almost no chance", 0.01, 0.05),
    ("very unlikely", 0.05, 0.20),
    ("unlikely", 0.20, 0.45),
    ("roughly even chance", 0.45, 0.55),
    ("likely", 0.55, 0.80),
    ("very likely", 0.80, 0.95),
    ("almost certain", 0.95, 0.99),
];

/// `p` limited to [1 %, 99 %].
pub fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        return FLOOR;
    }
    p.clamp(FLOOR, CEILING)
}

/// The ICD 203 word for `p` (clamped first). A shared edge goes to the band
/// nearer 50 %, the less extreme word.
pub fn word(p: f64) -> &'static str {
    let p = clamp(p);
    let i = if p < 0.05 {
        0
    } else if p < 0.20 {
        1
    } else if p < 0.45 {
        2
    } else if p <= 0.55 {
        3
    } else if p <= 0.80 {
        4
    } else if p <= 0.95 {
        5
    } else {
        6
    };
    BANDS[i].0
}

/// The band index (0 = almost no chance) of `p`.
pub fn band(p: f64) -> usize {
    let w = word(p);
    BANDS.iter().position(|b| b.0 == w).unwrap_or(0)
}

/// The lower bound of the band called `w`, if it is an ICD 203 word.
pub fn lower_bound(w: &str) -> Option<f64> {
    BANDS.iter().find(|b| b.0 == w).map(|b| b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_words() {
        let cases = [
            (0.0, "almost no chance"),
            (0.03, "almost no chance"),
            (0.0499, "almost no chance"),
            (0.05, "very unlikely"),
            (0.1999, "very unlikely"),
            (0.2, "unlikely"),
            (0.3, "unlikely"),
            (0.4499, "unlikely"),
            (0.45, "roughly even chance"),
            (0.5, "roughly even chance"),
            (0.55, "roughly even chance"),
            (0.56, "likely"),
            (0.8, "likely"),
            (0.81, "very likely"),
            (0.95, "very likely"),
            (0.96, "almost certain"),
            (1.0, "almost certain"),
        ];
        for (p, w) in cases {
            assert_eq!(word(p), w, "p = {p}");
        }
    }

    #[test]
    fn never_beyond_the_directive() {
        assert_eq!(clamp(1.0), 0.99);
        assert_eq!(clamp(0.0), 0.01);
        assert_eq!(clamp(f64::NAN), 0.01);
        assert_eq!(lower_bound("likely"), Some(0.55));
        assert_eq!(lower_bound("probable"), None);
    }
}
