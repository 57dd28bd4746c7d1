//! The agent's config loader: any text may be refused (naming the file),
//! none may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(err) = stacktop_agent::config::parse_str(Path::new("fuzz.toml"), text)
    {
        assert!(err.to_string().contains("fuzz.toml"), "{err}");
    }
});
