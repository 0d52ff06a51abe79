//! Admiralty grading (NATO AJP-2.1 / STANAG 2511): source reliability A–F and
//! information credibility 1–6, and the weight relaytrace gives each grade.
//!
//! The Admiralty code is ordinal; no standard numeric reading exists, and analysts
//! read the same grade quite differently (Irwin & Mandel, "Improving information
//! evaluation for intelligence production", *Intelligence and National Security*
//! 34(4), 2019). relaytrace therefore states its own mapping here, in one place, and
//! prints it with `assess --explain`. The weight of an item is
//! `reliability_weight × credibility_weight`, a number in [0, 1] used as the
//! probability that the report is informative (see [`crate::engine`]). F ("reliability
//! cannot be judged") and 6 ("truth cannot be judged") weigh **0**: an ungradable
//! report moves nothing. They do not mean "50 % reliable".

use std::fmt;

/// Source reliability, A (completely reliable) to F (cannot be judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reliability {
    /// Completely reliable.
    A,
    /// Usually reliable.
    B,
    /// Fairly reliable.
    C,
    /// Not usually reliable.
    D,
    /// Unreliable.
    E,
    /// Reliability cannot be judged (weight 0).
    F,
}

impl Reliability {
    /// Every grade, best first.
    pub const ALL: [Reliability; 6] = [
        Reliability::A,
        Reliability::B,
        Reliability::C,
        Reliability::D,
        Reliability::E,
        Reliability::F,
    ];

    /// Parses `"A"`…`"F"` (upper case only, as written in the code).
    pub fn parse(s: &str) -> Option<Reliability> {
        Reliability::ALL.into_iter().find(|r| r.letter() == s)
    }

    /// The letter.
    pub fn letter(self) -> &'static str {
        match self {
            Reliability::A => "A",
            Reliability::B => "B",
            Reliability::C => "C",
            Reliability::D => "D",
            Reliability::E => "E",
            Reliability::F => "F",
        }
    }

    /// The weight of the grade: A 1.0, B 0.85, C 0.65, D 0.4, E 0.15, F 0.
    pub fn weight(self) -> f64 {
        match self {
            Reliability::A => 1.0,
            Reliability::B => 0.85,
            Reliability::C => 0.65,
            Reliability::D => 0.4,
            Reliability::E => 0.15,
            Reliability::F => 0.0,
        }
    }
}

impl fmt::Display for Reliability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// Information credibility, 1 (confirmed) to 6 (cannot be judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Credibility(u8);

impl Credibility {
    /// Accepts 1..=6.
    pub fn new(n: u8) -> Option<Credibility> {
        (1..=6).contains(&n).then_some(Credibility(n))
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The weight of the grade: 1 → 1.0, 2 → 0.85, 3 → 0.65, 4 → 0.4, 5 → 0.15,
    /// 6 → 0 (the same ladder as [`Reliability::weight`]).
    pub fn weight(self) -> f64 {
        [1.0, 0.85, 0.65, 0.4, 0.15, 0.0][usize::from(self.0 - 1)]
    }
}

impl fmt::Display for Credibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The weight of a grading: `reliability.weight() × credibility.weight()`.
pub fn weight(r: Reliability, c: Credibility) -> f64 {
    r.weight() * c.weight()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cannot_be_judged_weighs_nothing_not_half() {
        for c in 1..=6 {
            assert_eq!(weight(Reliability::F, Credibility::new(c).unwrap()), 0.0);
        }
        for r in Reliability::ALL {
            assert_eq!(weight(r, Credibility::new(6).unwrap()), 0.0);
        }
    }

    #[test]
    fn weights_fall_with_the_grade() {
        for pair in Reliability::ALL.windows(2) {
            assert!(pair[0].weight() > pair[1].weight());
        }
        for n in 1..6 {
            assert!(Credibility(n).weight() > Credibility(n + 1).weight());
        }
        assert_eq!(weight(Reliability::A, Credibility(1)), 1.0);
    }

    #[test]
    fn parse_rejects_lower_case_and_other_letters() {
        assert_eq!(Reliability::parse("B"), Some(Reliability::B));
        assert_eq!(Reliability::parse("b"), None);
        assert_eq!(Reliability::parse("G"), None);
        assert_eq!(Credibility::new(0), None);
        assert_eq!(Credibility::new(7), None);
    }
}
