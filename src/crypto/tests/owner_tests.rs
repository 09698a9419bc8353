//! Owner's text form: the AAD spelling, and nothing else, parses.

use super::super::owner::Owner;
use super::uuid;

#[test]
fn owner_displays_in_aad_form() {
    let id = uuid("9D8C7B6A-5F4E-4D3C-8B2A-1F0E9D8C7B6A");
    assert_eq!(Owner::Source(id).to_string(), "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a");
    assert_eq!(Owner::System.to_string(), "system");
}

#[test]
fn owner_parses_only_its_display_form() {
    let text = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    assert_eq!(text.parse::<Owner>(), Ok(Owner::Source(uuid(text))));
    assert_eq!("system".parse::<Owner>(), Ok(Owner::System));
    for bad in [
        "SYSTEM",
        "9D8C7B6A-5F4E-4D3C-8B2A-1F0E9D8C7B6A",
        "9d8c7b6a5f4e4d3c8b2a1f0e9d8c7b6a",
        "{9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a}",
        "",
    ] {
        assert!(bad.parse::<Owner>().is_err(), "{bad}");
    }
}
