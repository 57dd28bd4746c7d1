//! The collector's config loader: any text may be refused, none may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stacktop_collector::config::FileConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = FileConfig::parse(text, Path::new("fuzz.toml"));
    }
});
