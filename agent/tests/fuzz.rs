//! Property tests over hostile input, the `cargo test` stand-in for
//! fuzzing: the access-log parser (every format, and a `log_format`
//! string) and the config loader get random bytes and mutations of the
//! real inputs kept in `tests/fuzz_corpus/`. Nothing may panic; a bad line
//! is an error for that line, a bad config an error naming where.
//!
//! The number of cases is bounded so CI stays fast (`PROPTEST_CASES`
//! raises it for a longer run by hand).

use std::path::Path;

use proptest::prelude::*;
use stacktop_agent::logs::{Format, Parser};

const FORMATS: [&str; 5] = [
    "nginx-combined",
    "nginx-timed",
    "stacktop",
    "haproxy-http",
    "$remote_addr [$time_local] \"$request\" $status $body_bytes_sent $request_time",
];

fn corpus(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_corpus")
            .join(name),
    )
    .unwrap()
}

fn lines() -> Vec<Vec<u8>> {
    corpus("log_lines.txt")
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// `seed` with `edits` applied: (position, byte) replaced, inserted or
/// removed, positions taken modulo the length.
fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(at, byte, how) in edits {
        let at = if out.is_empty() {
            0
        } else {
            at % (out.len() + 1)
        };
        match how % 3 {
            0 if at < out.len() => out[at] = byte,
            1 => out.insert(at, byte),
            _ if at < out.len() => {
                out.remove(at);
            }
            _ => out.push(byte),
        }
    }
    out
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_the_log_parser(
        format in 0..FORMATS.len(),
        line in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut parser = Parser::new(Format::parse(FORMATS[format]).unwrap());
        let _ = parser.parse(&line);
    }

    #[test]
    fn mutated_real_lines_never_panic_the_log_parser(
        format in 0..FORMATS.len(),
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12),
    ) {
        let lines = lines();
        let line = mutate(&lines[seed.index(lines.len())], &edits);
        let mut parser = Parser::new(Format::parse(FORMATS[format]).unwrap());
        let _ = parser.parse(&line);
    }

    #[test]
    fn random_text_never_panics_the_config_loader(text in "\\PC{0,300}") {
        let _ = stacktop_agent::config::parse_str(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn mutated_real_configs_never_panic_the_config_loader(
        edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f, any::<u8>()), 1..8),
    ) {
        let text = mutate(corpus("agent.toml").as_bytes(), &edits);
        if let Ok(text) = String::from_utf8(text) {
            match stacktop_agent::config::parse_str(Path::new("fuzz.toml"), &text) {
                Ok(_) => {}
                // A refusal names the file.
                Err(e) => prop_assert!(e.to_string().contains("fuzz.toml"), "{e}"),
            }
        }
    }
}

#[test]
fn the_corpus_is_what_it_claims() {
    // Every corpus line parses in at least one format, and the config
    // loads: mutations start from real input.
    for line in lines() {
        let parsed = FORMATS
            .iter()
            .any(|f| Parser::new(Format::parse(f).unwrap()).parse(&line).is_ok());
        assert!(parsed, "{}", String::from_utf8_lossy(&line));
    }
    stacktop_agent::config::parse_str(Path::new("agent.toml"), &corpus("agent.toml")).unwrap();
}
