//! What the `stacktop-collector` package ships: the committed man pages and completions
//! are current, the systemd unit verifies, and the .deb built by cargo-deb
//! holds the binary, the unit and the example config where an install puts
//! them. The checks live in packaging/tests/support.rs, shared with the
//! other binaries.

#[path = "../../packaging/tests/support.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-collector");

#[test]
fn man_pages_and_completions_are_current() {
    support::generated_files_are_current(BIN, "stacktop-collector");
}

#[test]
fn systemd_unit_verifies() {
    support::unit_verifies(BIN, "stacktop-collector", 2.0);
}

#[test]
fn deb_holds_the_binary_unit_and_example_config() {
    let Some(deb) = support::build_deb(BIN, "stacktop-collector") else {
        return;
    };
    deb.check_common("stacktop-collector");
    deb.check_service("stacktop-collector", "collector.toml");
    deb.check_install(
        "stacktop-collector",
        &[
            "/usr/lib/systemd/system/stacktop-collector.service",
            "/etc/stacktop/collector.toml",
        ],
    );
}
