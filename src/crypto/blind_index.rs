//! The deconfliction blind index — fixed format.
//!
//! ```text
//! index = first 4 bytes, big-endian, of
//!         HMAC-SHA256(blind_index_key, normalised(legal_name) || "|" || YYYY-MM-DD)
//! ```
//! Used only to flag `duplicate_suspected`; never returned by the API.
//!
//! The index is a `u32`: it is exactly 32 bits of hash, and an unsigned
//! type holds every value with no sign convention to agree on. The database
//! column is BIGINT (SQL has no unsigned 32-bit type, and INTEGER would
//! need a wrap-around rule); `i64::from(index)` is lossless and never
//! negative, so both backends store the same number.

use chrono::{Datelike, NaiveDate};
use ring::hmac;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::keys::BlindIndexKey;

/// Normalises a legal name: Unicode NFKC, then full case folding (Unicode
/// `CaseFolding.txt`, statuses C and F), then every run of White_Space
/// characters collapsed to one U+0020, then trimmed.
///
/// NFKC first makes composed/decomposed forms, full-width letters and
/// compatibility spaces (U+00A0, U+3000) agree before folding; folding is
/// full (ß -> ss) so names typed with or without such letters match.
pub fn normalise_name(legal_name: &str) -> Zeroizing<String> {
    let nfkc: Zeroizing<String> = Zeroizing::new(legal_name.nfkc().collect());
    let folded = Zeroizing::new(caseless::default_case_fold_str(&nfkc));
    let mut out = Zeroizing::new(String::with_capacity(folded.len()));
    for word in folded.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The blind index of a person, or `None` when there is no date of birth
/// (no index without one), when the name normalises to nothing (an empty
/// name would make everyone born that day a suspected duplicate), or when
/// the year lies outside 0000..=9999 (no four-digit `YYYY` form).
pub fn blind_index(key: &BlindIndexKey, legal_name: &str, date_of_birth: Option<NaiveDate>) -> Option<u32> {
    let dob = date_of_birth?;
    if !(0..=9999).contains(&dob.year()) {
        return None;
    }
    let name = normalise_name(legal_name);
    if name.is_empty() {
        return None;
    }
    let mut message = Zeroizing::new(Vec::with_capacity(name.len() + 11));
    message.extend_from_slice(name.as_bytes());
    message.push(b'|');
    message.extend_from_slice(format!("{:04}-{:02}-{:02}", dob.year(), dob.month(), dob.day()).as_bytes());
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.key_bytes());
    let tag = hmac::sign(&key, &message);
    let mut first = [0u8; 4];
    first.copy_from_slice(&tag.as_ref()[..4]);
    Some(u32::from_be_bytes(first))
}

impl BlindIndexKey {
    /// Same as [`blind_index`].
    pub fn index(&self, legal_name: &str, date_of_birth: Option<NaiveDate>) -> Option<u32> {
        blind_index(self, legal_name, date_of_birth)
    }
}
