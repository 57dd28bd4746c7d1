//! What the `stacktop` package ships: the committed man pages and completions
//! are current, and the .deb built by cargo-deb holds the binary, the man
//! pages and the completions. The checks live in
//! packaging/tests/support.rs, shared with the agent and the collector.

#[path = "../../packaging/tests/support.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_stacktop");

#[test]
fn man_pages_and_completions_are_current() {
    support::generated_files_are_current(BIN, "stacktop");
}

#[test]
fn deb_holds_the_binary_man_pages_and_completions() {
    let Some(deb) = support::build_deb(BIN, "stacktop") else {
        return;
    };
    deb.check_common("stacktop");
    assert!(
        !deb.contents.contains("systemd"),
        "the dashboard has no unit:\n{}",
        deb.contents
    );
    deb.check_install(
        "stacktop",
        &["/usr/share/bash-completion/completions/stacktop"],
    );
}
