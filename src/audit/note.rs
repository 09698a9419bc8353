//! The checkpoint note, the exact text that is signed:
//! `humint-audit-checkpoint\n{seq}\n{hash_hex}\n` (fixed format).

use super::record::{HASH_LEN, parse_hash_hex};

/// First line of every note; it names the format so a signature can never be replayed as a
/// signature over some other kind of message made with the same key.
pub const NOTE_ORIGIN: &str = "humint-audit-checkpoint";

/// Renders the note for a chain position.
pub fn format_note(seq: i64, hash: &[u8; HASH_LEN]) -> String {
    format!("{NOTE_ORIGIN}\n{seq}\n{}\n", hex::encode(hash))
}

/// Parses a note whose signature has already been verified. Accepts only the one spelling
/// `format_note` produces: a positive seq without sign or leading zeros, 64 lowercase hex
/// digits, each line ended by a single `\n`, nothing after.
pub fn parse_note(note: &str) -> Option<(i64, [u8; HASH_LEN])> {
    let rest = note.strip_prefix(NOTE_ORIGIN)?.strip_prefix('\n')?;
    let (seq_text, rest) = rest.split_once('\n')?;
    let (hash_text, rest) = rest.split_once('\n')?;
    if !rest.is_empty() {
        return None;
    }
    let seq = parse_positive_decimal(seq_text)?;
    let hash = parse_hash_hex(hash_text)?;
    Some((seq, hash))
}

fn parse_positive_decimal(s: &str) -> Option<i64> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_text_is_exact() {
        let hash = [0xab; 32];
        assert_eq!(format_note(42, &hash), format!("humint-audit-checkpoint\n42\n{}\n", "ab".repeat(32)));
    }

    #[test]
    fn parse_inverts_format() {
        let hash = [0x01; 32];
        assert_eq!(parse_note(&format_note(1000, &hash)), Some((1000, hash)));
    }

    #[test]
    fn parse_refuses_every_other_spelling() {
        let h = "ab".repeat(32);
        let bad = [
            format!("humint-audit-checkpoint\n42\n{h}"),
            format!("humint-audit-checkpoint\n42\n{h}\n\n"),
            format!("humint-audit-checkpoint\r\n42\n{h}\n"),
            format!("humint-audit-checkpoint\n042\n{h}\n"),
            format!("humint-audit-checkpoint\n+42\n{h}\n"),
            format!("humint-audit-checkpoint\n0\n{h}\n"),
            format!("humint-audit-checkpoint\n-1\n{h}\n"),
            format!("humint-audit-checkpoint\n 42\n{h}\n"),
            format!("humint-audit-checkpoint\n99999999999999999999\n{h}\n"),
            format!("humint-audit-checkpoint\n42\n{}\n", h.to_uppercase()),
            format!("humint-audit-checkpoint\n42\n{}\n", &h[2..]),
            format!("other-origin\n42\n{h}\n"),
            "humint-audit-checkpoint\n42\n".to_owned(),
            String::new(),
        ];
        for note in bad {
            assert_eq!(parse_note(&note), None, "{note:?}");
        }
    }
}
