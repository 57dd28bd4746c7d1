//! Checks of what `packaging/` ships, shared by the `packaging` tests of
//! the agent, the collector and the dashboard (each includes this file with
//! `#[path]` and passes its own binary, which only its own crate's tests
//! can name).
//!
//! - the committed man pages and completions are what the binary generates
//!   now (`STACKTOP_BLESS=1` rewrites them instead);
//! - `systemd-analyze verify` accepts the unit with no warning, and
//!   `systemd-analyze security --offline` scores it at most a ceiling;
//! - `cargo deb` builds the package from the binary the test already has,
//!   and `dpkg-deb` finds in it the binary, the unit, the example config
//!   (a conffile), the man pages and the completions;
//! - under `STACKTOP_LAB=require` (CI, as root, on a throw-away machine)
//!   `dpkg -i` installs it for real: the binary, unit and config are in
//!   place and the binary runs; then `dpkg --purge` removes it. Elsewhere
//!   that step is skipped with the reason: it changes the machine.
//!
//! A missing tool (`systemd-analyze`, `cargo deb`, `dpkg-deb`) skips its
//! check with the reason printed, unless `STACKTOP_LAB=require`, which CI
//! sets: then it fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `packaging/` in the workspace.
pub fn packaging() -> PathBuf {
    root().join("packaging")
}

/// Whether a missing tool fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("STACKTOP_LAB").is_ok_and(|v| v == "require")
}

/// Skips (printing why), or fails when tools are required.
fn skip(reason: &str) {
    assert!(!required(), "STACKTOP_LAB=require, but {reason}");
    eprintln!("skipped: {reason}");
}

/// Runs `cmd` and returns its output, or `None` when the program is not
/// there.
fn run(cmd: &mut Command) -> Option<Output> {
    match cmd.output() {
        Ok(out) => Some(out),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => panic!("{cmd:?}: {err}"),
    }
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd).unwrap_or_else(|| panic!("{cmd:?}: program not found"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The shells completions are shipped for, with the file each goes to in
/// `packaging/completions/`.
fn completion_files(package: &str) -> [(&'static str, String); 3] {
    [
        ("bash", format!("{package}.bash")),
        ("zsh", format!("_{package}")),
        ("fish", format!("{package}.fish")),
    ]
}

/// Compares the committed man pages and completions of `package` with what
/// `bin` generates now; `STACKTOP_BLESS=1` writes them instead.
pub fn generated_files_are_current(bin: &str, package: &str) {
    let bless = std::env::var_os("STACKTOP_BLESS").is_some_and(|v| v == "1");
    let mut generated: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (shell, file) in completion_files(package) {
        let out = ok(Command::new(bin).args(["completions", shell]));
        generated.push((packaging().join("completions").join(file), out.stdout));
    }
    let man = tempfile::tempdir().unwrap();
    ok(Command::new(bin).arg("man").arg(man.path()));
    let man_dir = packaging().join("man").join(package);
    let mut pages: Vec<PathBuf> = std::fs::read_dir(man.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    assert!(
        pages.iter().any(|p| p.ends_with(format!("{package}.1"))),
        "no {package}.1 in {pages:?}"
    );
    for page in &pages {
        let name = page.file_name().unwrap();
        generated.push((man_dir.join(name), std::fs::read(page).unwrap()));
    }
    if bless {
        std::fs::create_dir_all(&man_dir).unwrap();
        for entry in std::fs::read_dir(&man_dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (path, bytes) in &generated {
            std::fs::write(path, bytes).unwrap();
        }
        return;
    }
    let mut committed: Vec<PathBuf> = std::fs::read_dir(&man_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", man_dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    committed.sort();
    let expected: Vec<PathBuf> = pages
        .iter()
        .map(|p| man_dir.join(p.file_name().unwrap()))
        .collect();
    assert_eq!(
        committed, expected,
        "the man pages in packaging/ are not the ones {package} makes: \
         regenerate with STACKTOP_BLESS=1"
    );
    for (path, bytes) in &generated {
        let on_disk = std::fs::read(path).unwrap_or_default();
        assert!(
            on_disk == *bytes,
            "{} is stale: regenerate with STACKTOP_BLESS=1 cargo test -p {} --test packaging",
            path.display(),
            env!("CARGO_PKG_NAME")
        );
    }
}

/// The unit file of `package`, with `ExecStart=` pointing at `bin` so that
/// `systemd-analyze verify` finds an executable; written into `dir`.
fn unit_using(unit: &Path, package: &str, bin: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(unit).unwrap();
    let installed = format!("/usr/bin/{package}");
    assert!(
        text.contains(&format!("ExecStart={installed} ")),
        "{} does not start {installed}",
        unit.display()
    );
    let path = dir.join(format!("{package}.service"));
    std::fs::write(&path, text.replace(&installed, bin.to_str().unwrap())).unwrap();
    path
}

/// `systemd-analyze verify` accepts the unit with no warning, and its
/// offline security exposure is at most `max_exposure` (0.0 to 10.0,
/// systemd's scale: under 3 reads "OK").
pub fn unit_verifies(bin: &str, package: &str, max_exposure: f32) {
    let unit = packaging()
        .join("systemd")
        .join(format!("{package}.service"));
    let dir = tempfile::tempdir().unwrap();
    let copy = unit_using(&unit, package, Path::new(bin), dir.path());
    let Some(out) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy))
    else {
        return skip("systemd-analyze is not installed (Debian package systemd)");
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}",
        unit.display(),
        out.status
    );
    // Documentation=man:PACKAGE(1) names a page the package ships.
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(&format!("Documentation=man:{package}(1)")));
    assert!(
        packaging()
            .join("man")
            .join(package)
            .join(format!("{package}.1"))
            .exists()
    );

    // The threshold is in tenths.
    let threshold = format!("--threshold={}", (max_exposure * 10.0).round() as u32);
    let out = ok(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", &threshold])
        .arg(&copy)
        .env("SYSTEMD_COLORS", "0"));
    let report = String::from_utf8_lossy(&out.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    eprintln!("{overall}");
}

/// Whether `cargo deb` can run here; skips (or fails when required) if not.
fn cargo_deb_available() -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match run(Command::new(&cargo).args(["deb", "--version"])) {
        Some(out) if out.status.success() => {}
        _ => {
            skip("`cargo deb` is not installed (cargo install cargo-deb)");
            return false;
        }
    }
    if run(Command::new("dpkg-deb").arg("--version")).is_none() {
        skip("dpkg-deb is not installed");
        return false;
    }
    true
}

/// A .deb built by `cargo deb -p package` and unpacked.
pub struct Deb {
    /// Holds the target directory, the .deb and the unpacked tree.
    dir: tempfile::TempDir,
    /// The .deb file.
    pub file: PathBuf,
    /// Where `dpkg-deb -x` unpacked it: the files as an install lays them.
    pub tree: PathBuf,
    /// `dpkg-deb --info`.
    pub info: String,
    /// `dpkg-deb --contents`.
    pub contents: String,
    /// The control file `conffiles`, empty when there is none.
    pub conffiles: String,
    /// The maintainer script `postinst`, empty when there is none.
    pub postinst: String,
}

/// Builds the .deb of `package` around `bin` (the binary this test run
/// already built: `cargo deb --no-build` packs whatever sits in the target
/// directory's `release/`, so the test puts it there rather than spend
/// minutes on a release build), then inspects it with `dpkg-deb`. `None`
/// when the tools are not there.
pub fn build_deb(bin: &str, package: &str) -> Option<Deb> {
    if !cargo_deb_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("target").join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(bin, release.join(package)).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ok(Command::new(&cargo)
        .args([
            "deb",
            "-p",
            package,
            "--no-build",
            "--fast",
            "--locked",
            "-o",
        ])
        .arg(&out_dir)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", dir.path().join("target")));
    let file = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb wrote no .deb");
    let text = |out: Output| String::from_utf8(out.stdout).unwrap();
    let info = text(ok(Command::new("dpkg-deb").arg("--info").arg(&file)));
    let contents = text(ok(Command::new("dpkg-deb").arg("--contents").arg(&file)));
    let tree = dir.path().join("tree");
    ok(Command::new("dpkg-deb").arg("-x").arg(&file).arg(&tree));
    let control = dir.path().join("control");
    ok(Command::new("dpkg-deb").arg("-e").arg(&file).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap_or_default();
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap_or_default();
    Some(Deb {
        dir,
        file,
        tree,
        info,
        contents,
        conffiles,
        postinst,
    })
}

/// `dpkg --purge PACKAGE` when dropped: what a test installed goes, even
/// when an assertion failed.
struct Purge<'a>(&'a str);

impl Drop for Purge<'_> {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", self.0]).output();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap_or(false)
}

impl Deb {
    /// Installs the package with `dpkg -i` and checks that `paths` (and
    /// `/usr/bin/PACKAGE`, which must run) are where an install puts them,
    /// then purges it. Only under `STACKTOP_LAB=require` as root: a real
    /// install changes the machine.
    pub fn check_install(&self, package: &str, paths: &[&str]) {
        if !required() {
            eprintln!(
                "skipped: dpkg -i {package} (it changes this machine; CI does it, with \
                 STACKTOP_LAB=require as root)"
            );
            return;
        }
        assert!(is_root(), "STACKTOP_LAB=require, but dpkg -i needs root");
        let installed = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
            .unwrap_or(false);
        if installed {
            eprintln!("skipped: dpkg -i {package}: a {package} package is installed here already");
            return;
        }
        let _purge = Purge(package);
        ok(Command::new("dpkg")
            .arg("-i")
            .arg(&self.file)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        let bin = format!("/usr/bin/{package}");
        for path in std::iter::once(bin.as_str()).chain(paths.iter().copied()) {
            assert!(Path::new(path).is_file(), "dpkg -i {package}: no {path}");
        }
        let version = ok(Command::new(&bin).arg("--version"));
        assert!(
            String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{bin} --version: {version:?}"
        );
        eprintln!("dpkg -i {package}: {bin} runs, {paths:?} in place; purged");
    }

    /// Asserts that `path` (absolute, as installed) is in the package,
    /// listed and unpacked, and returns where it was unpacked.
    pub fn has(&self, path: &str) -> PathBuf {
        assert!(
            self.contents.contains(&format!(".{path}\n")),
            "{path} is not listed in dpkg-deb --contents:\n{}",
            self.contents
        );
        let unpacked = self.tree.join(path.trim_start_matches('/'));
        assert!(
            unpacked.is_file(),
            "{} was not unpacked",
            unpacked.display()
        );
        unpacked
    }

    /// Asserts that `path` is in the package with the same bytes as `source`
    /// (relative to the workspace root).
    pub fn has_copy_of(&self, path: &str, source: &str) {
        let unpacked = self.has(path);
        assert!(
            std::fs::read(&unpacked).unwrap() == std::fs::read(root().join(source)).unwrap(),
            "{path} in the package differs from {source}"
        );
    }

    /// The checks every stacktop package passes: its control fields, its
    /// binary (which runs: `--version`), its man pages and completions.
    pub fn check_common(&self, package: &str) {
        for field in [
            format!("Package: {package}\n"),
            format!("Version: {}-1\n", env!("CARGO_PKG_VERSION")),
            "Section: admin\n".to_string(),
            "Maintainer: ".to_string(),
            "Depends: libc6".to_string(),
        ] {
            assert!(
                self.info.contains(&field),
                "no {field:?} in:\n{}",
                self.info
            );
        }
        let bin = self.has(&format!("/usr/bin/{package}"));
        let out = ok(Command::new(&bin).arg("--version"));
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(
            version.contains(env!("CARGO_PKG_VERSION")),
            "{package} --version: {version}"
        );
        // Every committed man page, gzipped as Debian wants.
        for entry in std::fs::read_dir(packaging().join("man").join(package)).unwrap() {
            let name = entry.unwrap().file_name();
            self.has(&format!(
                "/usr/share/man/man1/{}.gz",
                name.to_string_lossy()
            ));
        }
        self.has_copy_of(
            &format!("/usr/share/bash-completion/completions/{package}"),
            &format!("packaging/completions/{package}.bash"),
        );
        self.has_copy_of(
            &format!("/usr/share/zsh/vendor-completions/_{package}"),
            &format!("packaging/completions/_{package}"),
        );
        self.has_copy_of(
            &format!("/usr/share/fish/vendor_completions.d/{package}.fish"),
            &format!("packaging/completions/{package}.fish"),
        );
    }

    /// The checks of a service's package: the unit in place and accepted by
    /// `systemd-analyze verify` where it was unpacked (its ExecStart
    /// pointed at the unpacked binary), not enabled or started by the
    /// maintainer scripts, and `config` in /etc/stacktop as a conffile and
    /// under the docs' examples.
    pub fn check_service(&self, package: &str, config: &str) {
        let unit = self.has(&format!("/usr/lib/systemd/system/{package}.service"));
        assert!(
            std::fs::read(&unit).unwrap()
                == std::fs::read(
                    packaging()
                        .join("systemd")
                        .join(format!("{package}.service"))
                )
                .unwrap(),
            "the packaged unit differs from packaging/systemd"
        );
        let etc = format!("/etc/stacktop/{config}");
        self.has_copy_of(&etc, &format!("packaging/{config}"));
        self.has_copy_of(
            &format!("/usr/share/doc/{package}/examples/{config}"),
            &format!("packaging/{config}"),
        );
        assert!(
            self.conffiles.lines().any(|l| l == etc),
            "{etc} is not a conffile: {:?}",
            self.conffiles
        );
        // Installing neither enables nor starts it (the config must name
        // the fleet first); an upgrade restarts it only if it runs.
        // (cargo-deb's "dont-enable" script re-enables only a unit that
        // was enabled before.)
        assert!(
            self.postinst
                .contains(&format!("was-enabled {package}.service"))
                && !self.postinst.contains("_dh_action=start")
                && !self.postinst.contains("deb-systemd-invoke start"),
            "postinst enables or starts the unit:\n{}",
            self.postinst
        );
        // The unit's config path is the one the package installs.
        let text = std::fs::read_to_string(&unit).unwrap();
        assert!(text.contains(&format!("--config {etc}")), "{text}");
        let bin = self.tree.join("usr/bin").join(package);
        let dir = self.dir.path().join("verify");
        std::fs::create_dir_all(&dir).unwrap();
        let copy = unit_using(&unit, package, &bin, &dir);
        if let Some(out) = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy))
        {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "systemd-analyze verify of the packaged unit: {stderr}"
            );
        }
    }
}
