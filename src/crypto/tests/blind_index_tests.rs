//! Blind index: equal after normalisation means equal index.

use chrono::NaiveDate;

use super::super::blind_index::{blind_index, normalise_name};
use super::super::keys::BlindIndexKey;
use super::counting_key;

fn key() -> BlindIndexKey {
    BlindIndexKey::new(counting_key(0x60))
}

fn dob() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1985, 7, 14)
}

fn index(name: &str) -> Option<u32> {
    blind_index(&key(), name, dob())
}

#[test]
fn case_differences_give_the_same_index() {
    assert!(index("Renée Dubois").is_some());
    assert_eq!(index("Renée Dubois"), index("RENÉE DUBOIS"));
    assert_eq!(index("Renée Dubois"), index("renée dubois"));
    // Full folding: ß and ss, final sigma and sigma.
    assert_eq!(index("Hans Straße"), index("HANS STRASSE"));
    assert_eq!(index("ΟΔΥΣΣΕΥΣ"), index("οδυσσευς"));
    assert_eq!(index("ΟΔΥΣΣΕΥΣ"), index("οδυσσευσ"));
}

#[test]
fn spacing_differences_give_the_same_index() {
    let reference = index("Renée Dubois");
    assert_eq!(index("  Renée   Dubois  "), reference);
    assert_eq!(index("Renée\tDubois\n"), reference);
    assert_eq!(index("Renée\u{00A0}Dubois"), reference);
    assert_eq!(index("Renée\u{3000}\u{2003} Dubois"), reference);
}

#[test]
fn unicode_form_differences_give_the_same_index() {
    let composed = "Ren\u{00E9}e Dubois";
    let decomposed = "Rene\u{0301}e Dubois";
    assert_ne!(composed, decomposed);
    assert_eq!(index(composed), index(decomposed));
    // Full-width letters (U+FF21..) are compatibility forms of ASCII.
    assert_eq!(index("ＪＯＨＮ ＳＭＩＴＨ"), index("John Smith"));
    assert_eq!(normalise_name("ＪＯＨＮ　ＳＭＩＴＨ").as_str(), "john smith");
}

#[test]
fn different_names_or_dates_give_different_indexes() {
    let reference = index("Renée Dubois");
    assert_ne!(index("Rene Dubois"), reference);
    assert_ne!(index("Renée Dubois-Martin"), reference);
    let other_day = blind_index(&key(), "Renée Dubois", NaiveDate::from_ymd_opt(1985, 7, 15));
    assert!(other_day.is_some());
    assert_ne!(other_day, reference);
}

#[test]
fn a_different_key_gives_a_different_index() {
    let other = BlindIndexKey::new(counting_key(0x61));
    assert_ne!(blind_index(&other, "Renée Dubois", dob()), index("Renée Dubois"));
}

#[test]
fn no_date_of_birth_means_no_index() {
    assert_eq!(blind_index(&key(), "Renée Dubois", None), None);
}

#[test]
fn blank_name_means_no_index() {
    assert_eq!(index(""), None);
    assert_eq!(index(" \t\u{3000} "), None);
}

#[test]
fn blind_index_key_debug_is_redacted() {
    assert_eq!(format!("{:?}", key()), "BlindIndexKey(<redacted>)");
}
