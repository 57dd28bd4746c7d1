//! What the `stacktop-agent` package ships: the committed man pages and completions
//! are current, the systemd unit verifies, and the .deb built by cargo-deb
//! holds the binary, the unit and the example config where an install puts
//! them. The checks live in packaging/tests/support.rs, shared with the
//! other binaries.

#[path = "../../packaging/tests/support.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop-agent");

#[test]
fn man_pages_and_completions_are_current() {
    support::generated_files_are_current(BIN, "stacktop-agent");
}

#[test]
fn systemd_unit_verifies() {
    support::unit_verifies(BIN, "stacktop-agent", 3.0);
}

#[test]
fn deb_holds_the_binary_unit_and_example_config() {
    let Some(deb) = support::build_deb(BIN, "stacktop-agent") else {
        return;
    };
    deb.check_common("stacktop-agent");
    deb.check_service("stacktop-agent", "agent.toml");
    deb.check_install(
        "stacktop-agent",
        &[
            "/usr/lib/systemd/system/stacktop-agent.service",
            "/etc/stacktop/agent.toml",
        ],
    );
}
