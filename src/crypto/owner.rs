//! Who a data key belongs to: one source, or the system.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The owner of a data key, and therefore of every field sealed under it.
///
/// `Display` gives the exact form used inside AADs: the source id as a
/// lowercase hyphenated UUID, or the literal `system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The per-source DEK of the source with this id.
    Source(Uuid),
    /// The one system DEK protecting non-source secrets (e.g. TOTP seeds).
    System,
}

/// The literal naming the system owner in AADs and in the database.
pub const SYSTEM_OWNER: &str = "system";

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // uuid's Display is the lowercase hyphenated form the AAD needs.
            Owner::Source(id) => write!(f, "{}", id.hyphenated()),
            Owner::System => f.write_str(SYSTEM_OWNER),
        }
    }
}

/// The text was neither `system` nor a lowercase hyphenated UUID.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("owner must be \"system\" or a lowercase hyphenated UUID")]
pub struct ParseOwnerError;

impl FromStr for Owner {
    type Err = ParseOwnerError;

    /// Accepts exactly what `Display` produces, so a stored owner string
    /// has one spelling (no braces, no upper case, no simple form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == SYSTEM_OWNER {
            return Ok(Owner::System);
        }
        let id = Uuid::try_parse(s).map_err(|_| ParseOwnerError)?;
        let owner = Owner::Source(id);
        if owner.to_string() == s { Ok(owner) } else { Err(ParseOwnerError) }
    }
}
