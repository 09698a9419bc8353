//! Grading schemes (DOMAIN.md): `4x4` (default), `3x5x2` and `admiralty`. Every grade is stored
//! with its scheme and never converted between schemes. Values are case-sensitive.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldErrors;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Scheme {
    /// UNODC / Europol 4x4: source A B C X, information 1–4, handling H0–H3.
    #[default]
    #[serde(rename = "4x4")]
    FourByFour,
    /// College of Policing 3x5x2: source 1–3, intelligence A–E, handling P or C.
    #[serde(rename = "3x5x2")]
    ThreeFiveTwo,
    /// Admiralty / NATO 6x6: source A–F, information 1–6, no handling code.
    #[serde(rename = "admiralty")]
    Admiralty,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FourByFour => "4x4",
            Self::ThreeFiveTwo => "3x5x2",
            Self::Admiralty => "admiralty",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "4x4" => Some(Self::FourByFour),
            "3x5x2" => Some(Self::ThreeFiveTwo),
            "admiralty" => Some(Self::Admiralty),
            _ => None,
        }
    }

    /// The source (reliability) scale: what a reliability review grades.
    pub fn source_values(self) -> &'static [&'static str] {
        match self {
            Self::FourByFour => &["A", "B", "C", "X"],
            Self::ThreeFiveTwo => &["1", "2", "3"],
            Self::Admiralty => &["A", "B", "C", "D", "E", "F"],
        }
    }

    pub fn information_values(self) -> &'static [&'static str] {
        match self {
            Self::FourByFour => &["1", "2", "3", "4"],
            Self::ThreeFiveTwo => &["A", "B", "C", "D", "E"],
            Self::Admiralty => &["1", "2", "3", "4", "5", "6"],
        }
    }

    /// Handling codes; empty when the scheme has none.
    pub fn handling_values(self) -> &'static [&'static str] {
        match self {
            Self::FourByFour => &["H0", "H1", "H2", "H3"],
            Self::ThreeFiveTwo => &["P", "C"],
            Self::Admiralty => &[],
        }
    }

    /// The handling code whose conditions must be stated in free text.
    fn conditional_handling(self) -> Option<&'static str> {
        match self {
            Self::FourByFour => Some("H3"),
            Self::ThreeFiveTwo => Some("C"),
            Self::Admiralty => None,
        }
    }
}

/// A grading as sent by clients.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grading {
    #[serde(default)]
    pub scheme: Scheme,
    pub source: String,
    pub information: String,
    #[serde(default)]
    pub handling: Option<String>,
    /// Required for `H3` (4x4) and `C` (3x5x2), rejected otherwise; stored encrypted.
    #[serde(default)]
    pub handling_conditions: Option<String>,
}

pub const MAX_CONDITIONS_CHARS: usize = 20_000;

impl Grading {
    /// Checks every value against its scheme; errors are keyed `{prefix}.source` etc.
    pub fn check(&self, prefix: &str, errors: &mut FieldErrors) {
        let mut fail = |field: &str, message: String| {
            errors.entry(format!("{prefix}.{field}")).or_default().push(message);
        };
        let s = self.scheme;
        let one_of = |values: &[&str]| format!("must be one of {} for scheme {}", values.join(", "), s.as_str());
        if !s.source_values().contains(&self.source.as_str()) {
            fail("source", one_of(s.source_values()));
        }
        if !s.information_values().contains(&self.information.as_str()) {
            fail("information", one_of(s.information_values()));
        }
        match (&self.handling, s.handling_values().is_empty()) {
            (Some(_), true) => fail("handling", format!("must be absent for scheme {}", s.as_str())),
            (None, false) => fail("handling", format!("is required for scheme {}", s.as_str())),
            (Some(h), false) if !s.handling_values().contains(&h.as_str()) => {
                fail("handling", one_of(s.handling_values()))
            }
            _ => {}
        }
        let needs_conditions =
            s.conditional_handling().is_some() && self.handling.as_deref() == s.conditional_handling();
        match (&self.handling_conditions, needs_conditions) {
            (None, true) => fail("handling_conditions", "is required for this handling code".into()),
            (Some(c), true) if c.trim().is_empty() || c.chars().count() > MAX_CONDITIONS_CHARS => {
                fail("handling_conditions", "must be 1 to 20000 characters".into())
            }
            (Some(_), false) => fail("handling_conditions", "is only allowed with H3 (4x4) or C (3x5x2)".into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(g: &Grading) -> FieldErrors {
        let mut e = FieldErrors::new();
        g.check("g", &mut e);
        e
    }

    fn g(scheme: Scheme, source: &str, information: &str, handling: Option<&str>, conditions: Option<&str>) -> Grading {
        Grading {
            scheme,
            source: source.into(),
            information: information.into(),
            handling: handling.map(Into::into),
            handling_conditions: conditions.map(Into::into),
        }
    }

    #[test]
    fn every_valid_value_of_every_scheme_passes() {
        for scheme in [Scheme::FourByFour, Scheme::ThreeFiveTwo, Scheme::Admiralty] {
            for s in scheme.source_values() {
                for i in scheme.information_values() {
                    let handlings: Vec<Option<&str>> = if scheme.handling_values().is_empty() {
                        vec![None]
                    } else {
                        scheme.handling_values().iter().map(|h| Some(*h)).collect()
                    };
                    for h in handlings {
                        let conditions =
                            (h.is_some() && h == scheme.conditional_handling()).then_some("only to the prosecutor");
                        let e = errors(&g(scheme, s, i, h, conditions));
                        assert!(e.is_empty(), "{scheme:?} {s} {i} {h:?}: {e:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_outside_the_scheme_are_named() {
        let cases = [
            (g(Scheme::FourByFour, "D", "1", Some("H0"), None), "g.source"),
            (g(Scheme::FourByFour, "a", "1", Some("H0"), None), "g.source"),
            (g(Scheme::FourByFour, "A", "5", Some("H0"), None), "g.information"),
            (g(Scheme::FourByFour, "A", "1", Some("h0"), None), "g.handling"),
            (g(Scheme::FourByFour, "A", "1", None, None), "g.handling"),
            (g(Scheme::FourByFour, "A", "1", Some("H3"), None), "g.handling_conditions"),
            (g(Scheme::FourByFour, "A", "1", Some("H2"), Some("x")), "g.handling_conditions"),
            (g(Scheme::ThreeFiveTwo, "4", "A", Some("P"), None), "g.source"),
            (g(Scheme::ThreeFiveTwo, "1", "F", Some("P"), None), "g.information"),
            (g(Scheme::ThreeFiveTwo, "1", "A", Some("H0"), None), "g.handling"),
            (g(Scheme::ThreeFiveTwo, "1", "A", Some("C"), None), "g.handling_conditions"),
            (g(Scheme::Admiralty, "G", "1", None, None), "g.source"),
            (g(Scheme::Admiralty, "A", "7", None, None), "g.information"),
            (g(Scheme::Admiralty, "A", "1", Some("H0"), None), "g.handling"),
            (g(Scheme::Admiralty, "A", "1", None, Some("x")), "g.handling_conditions"),
        ];
        for (grading, field) in cases {
            let e = errors(&grading);
            assert!(e.contains_key(field), "{grading:?} must name {field}: {e:?}");
        }
    }
}
