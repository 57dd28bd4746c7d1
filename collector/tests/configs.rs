//! Config file fixtures: every file in `tests/valid_configs` loads and
//! validates; every file in `tests/invalid_configs` is refused with a
//! message that names the file or the field.

use std::path::{Path, PathBuf};

use stacktop_collector::{Config, FileConfig};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn load(path: &Path) -> Result<Config, String> {
    let file = FileConfig::load(path).map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.merge_file(file);
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[test]
fn valid_configs_load() {
    // The example config the package installs as /etc/stacktop/collector.toml.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/collector.toml");
    for path in fixtures("valid_configs").into_iter().chain([example]) {
        if let Err(err) = load(&path) {
            panic!("{}: {err}", path.display());
        }
    }
}

#[test]
fn invalid_configs_are_refused_with_a_useful_message() {
    for path in fixtures("invalid_configs") {
        let err = match load(&path) {
            Ok(config) => panic!("{} was accepted: {config:?}", path.display()),
            Err(err) => err,
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mentions_field = [
            "listen",
            "history",
            "max-agents",
            "max_agents",
            "insecure",
            "rule",
            "notify",
        ]
        .iter()
        .any(|f| err.contains(f));
        assert!(
            err.contains(&name) || mentions_field,
            "{name}: message names neither file nor field: {err}"
        );
    }
}

#[test]
fn a_rule_that_cannot_work_is_reported_at_its_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid_configs/rule_without_condition.toml");
    let err = load(&path).unwrap_err();
    assert!(err.contains("rule_without_condition.toml"), "{err}");
    assert!(err.contains("line 6"), "the second [[rules]] table: {err}");
    assert!(
        err.contains("mystery") && err.contains("condition"),
        "{err}"
    );
}

mod fuzz {
    //! The config loader on random and mutated text: never a panic, and a
    //! refusal names the file.
    use super::*;
    use proptest::prelude::*;

    fn seed() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid_configs/alerting.toml"),
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            if let Err(e) = FileConfig::parse(&text, Path::new("fuzz.toml")) {
                prop_assert!(e.to_string().contains("fuzz.toml"), "{e}");
            }
        }

        #[test]
        fn mutated_configs_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 1..8),
        ) {
            let mut text = seed().into_bytes();
            for (at, byte) in edits {
                let at = at % text.len();
                text[at] = byte;
            }
            let text = String::from_utf8(text).unwrap();
            if let Err(e) = FileConfig::parse(&text, Path::new("fuzz.toml")) {
                prop_assert!(e.to_string().contains("fuzz.toml"), "{e}");
            }
        }
    }
}
