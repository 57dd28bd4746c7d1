//! What HAProxy's stats do not say, read from its config file: whether
//! each backend server is reached over TLS (`ssl`), with its certificate
//! verified (`verify`), and at which address. The dashboard marks a
//! plain-text hop behind the load balancer from this.
//!
//! A small, tolerant line parser, not HAProxy's grammar. The config is
//! line-based: a section keyword (`global`, `defaults`, `backend NAME`,
//! `listen NAME`, ...) starts a section; inside `backend` and `listen`,
//! `server NAME ADDR:PORT [options]` names a server and `default-server
//! [options]` gives options every later server line of the section starts
//! from. A `defaults` section's `default-server` is inherited by the
//! sections after it (or by `backend NAME from DEFAULTS`), and `global`'s
//! `ssl-server-verify` is what `verify` defaults to (HAProxy's default:
//! `required`). Words split on blanks, `#` starts a comment, `"..."` and
//! `'...'` quote, `\` escapes one character. Options are applied in
//! order: `ssl` / `no-ssl`, `verify none|required`; the arguments of the
//! options known to take one are skipped so that `cookie ssl` is not
//! read as `ssl`. Lines it does not understand are ignored.
//!
//! Not handled (the server is then reported as not in the config, which
//! makes its TLS unknown, never "fine"): `server-template`, `include`d or
//! several config files, environment variables in names.

use std::collections::HashMap;

/// One `server` line, with its section's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConf {
    /// The address word as written (`10.0.0.11:80`, `web1.lan:80`).
    pub address: String,
    /// HAProxy speaks TLS to it.
    pub ssl: bool,
    /// With `ssl`: the certificate is verified (`verify required`).
    pub verify: bool,
}

/// Every server of a config, by (backend or listen section, server name).
pub type Servers = HashMap<(String, String), ServerConf>;

/// Server options that take one argument (from HAProxy's "Server and
/// default-server options"): their argument is not an option itself.
const WITH_ARGUMENT: &[&str] = &[
    "addr",
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "alpn",
    "ca-file",
    "check-alpn",
    "check-proto",
    "check-sni",
    "ciphers",
    "ciphersuites",
    "client-sigalgs",
    "cookie",
    "crl-file",
    "crt",
    "curves",
    "downinter",
    "error-limit",
    "fall",
    "fastinter",
    "guid",
    "hash-key",
    "id",
    "init-addr",
    "inter",
    "log-proto",
    "max-reuse",
    "maxconn",
    "maxqueue",
    "minconn",
    "namespace",
    "npn",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-conn-name",
    "pool-low-conn",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "proxy-v2-options",
    "redir",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "rise",
    "shard",
    "sigalgs",
    "slowstart",
    "sni",
    "socks4",
    "source",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "track",
    "usesrc",
    "verify",
    "verifyhost",
    "weight",
    "ws",
];

/// Section keywords: a line starting with one opens a new section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "cache",
    "program",
    "http-errors",
    "ring",
    "mailers",
    "fcgi-app",
    "log-forward",
    "crt-store",
    "traces",
];

/// TLS settings as options set them, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tls {
    /// `ssl` (true) or `no-ssl` (false); `None`: not said.
    ssl: Option<bool>,
    /// `verify required` (true) or `verify none` (false); `None`: not said.
    verify: Option<bool>,
}

impl Tls {
    /// `base` with `options` applied on top.
    fn apply(mut self, options: &[String]) -> Tls {
        let mut words = options.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "ssl" => self.ssl = Some(true),
                "no-ssl" => self.ssl = Some(false),
                "verify" => match words.next().map(String::as_str) {
                    Some("required") => self.verify = Some(true),
                    Some("none") => self.verify = Some(false),
                    _ => {}
                },
                w if WITH_ARGUMENT.contains(&w) => {
                    words.next();
                }
                _ => {}
            }
        }
        self
    }
}

/// The section a line belongs to.
enum Section {
    Global,
    /// A `defaults` section, with its name when it has one.
    Defaults(Option<String>),
    /// `backend` or `listen`: where servers are.
    Proxy {
        name: String,
        tls: Tls,
    },
    Other,
}

/// Every server line of `text` (see the module docs for what is read).
pub fn parse(text: &str) -> Servers {
    let mut servers = Servers::new();
    // `ssl-server-verify` from `global`: what `verify` defaults to.
    let mut verify_default = true;
    // The last `defaults` section's `default-server`, and the named ones.
    let mut defaults = Tls::default();
    let mut named: HashMap<String, Tls> = HashMap::new();
    let mut section = Section::Other;
    for line in text.lines() {
        let words = words(line);
        let Some(first) = words.first() else { continue };
        if SECTIONS.contains(&first.as_str()) {
            let name = words.get(1).cloned();
            section = match first.as_str() {
                "global" => Section::Global,
                "defaults" => {
                    // A new defaults section starts over, unless it says
                    // `from` another.
                    defaults = from(&words, &named).unwrap_or_default();
                    let name = name.filter(|n| n != "from");
                    if let Some(name) = &name {
                        named.insert(name.clone(), defaults);
                    }
                    Section::Defaults(name)
                }
                "backend" | "listen" => Section::Proxy {
                    tls: from(&words, &named).unwrap_or(defaults),
                    name: name.unwrap_or_default(),
                },
                _ => Section::Other,
            };
            continue;
        }
        let rest = &words[1..];
        match (&mut section, first.as_str()) {
            (Section::Global, "ssl-server-verify") => {
                verify_default = rest.first().map(String::as_str) != Some("none");
            }
            (Section::Defaults(name), "default-server") => {
                defaults = defaults.apply(rest);
                if let Some(name) = name {
                    named.insert(name.clone(), defaults);
                }
            }
            (Section::Proxy { tls, .. }, "default-server") => *tls = tls.apply(rest),
            (Section::Proxy { name, tls }, "server") if rest.len() >= 2 => {
                let own = tls.apply(&rest[2..]);
                let ssl = own.ssl.unwrap_or(false);
                servers.insert(
                    (name.clone(), rest[0].clone()),
                    ServerConf {
                        address: rest[1].clone(),
                        ssl,
                        verify: ssl && own.verify.unwrap_or(verify_default),
                    },
                );
            }
            _ => {}
        }
    }
    servers
}

/// The named defaults a `... NAME from DEFAULTS` line inherits.
fn from(words: &[String], named: &HashMap<String, Tls>) -> Option<Tls> {
    let at = words.iter().position(|w| w == "from")?;
    named.get(words.get(at + 1)?).copied()
}

/// The words of one line: split on blanks, without the comment, quotes
/// and escapes resolved.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word is open even when empty (`""`).
    let mut open = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                    open = true;
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                open = true;
            }
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if open {
                    words.push(std::mem::take(&mut word));
                    open = false;
                }
            }
            (None, c) => {
                word.push(c);
                open = true;
            }
        }
    }
    if open {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(servers: &Servers, backend: &str, name: &str) -> ServerConf {
        servers
            .get(&(backend.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("{backend}/{name} in {servers:?}"))
            .clone()
    }

    #[test]
    fn the_labs_config_has_three_plain_text_servers() {
        let servers = parse(include_str!("../../../tests/fixtures/haproxy_lab.cfg"));
        assert_eq!(servers.len(), 3, "{servers:?}");
        for (n, addr) in [(1, "127.0.0.11:8080"), (2, "127.0.0.12:8080")] {
            let s = server(&servers, "be_web", &format!("web{n}"));
            assert_eq!(s.address, addr);
            assert!(!s.ssl && !s.verify);
        }
    }

    /// The fixture is what lab/up writes, and HAProxy itself accepts it
    /// (when HAProxy is installed: otherwise said and skipped).
    #[test]
    fn haproxy_accepts_the_lab_fixture() {
        let haproxy = std::path::Path::new("/usr/sbin/haproxy");
        if !haproxy.exists() {
            eprintln!("skipped: {} is not installed", haproxy.display());
            return;
        }
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/haproxy_lab.cfg"
        );
        let out = std::process::Command::new(haproxy)
            .args(["-c", "-q", "-f", fixture])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn default_server_is_inherited_and_overridden_in_order() {
        let text = "
global
    ssl-server-verify none
defaults
    default-server ssl verify required ca-file /etc/ssl/ca.pem
backend api
    server a 10.0.0.1:443
    server b 10.0.0.2:80 no-ssl
    server c 10.0.0.3:443 verify none
backend web
    default-server no-ssl
    server d 10.0.0.4:80 check inter 2s
    server e 10.0.0.5:443 ssl
defaults
    mode http
backend later
    server f 10.0.0.6:80
    server g 10.0.0.7:443 ssl
";
        let s = parse(text);
        let tls = |b: &str, n: &str| {
            let c = server(&s, b, n);
            (c.ssl, c.verify)
        };
        assert_eq!(tls("api", "a"), (true, true));
        assert_eq!(tls("api", "b"), (false, false));
        assert_eq!(tls("api", "c"), (true, false));
        assert_eq!(tls("web", "d"), (false, false));
        // `no-ssl` leaves the inherited `verify required` in place.
        assert_eq!(tls("web", "e"), (true, true));
        // A new defaults section starts over; with no verify said
        // anywhere, global's ssl-server-verify none decides.
        assert_eq!(tls("later", "f"), (false, false));
        assert_eq!(tls("later", "g"), (true, false));
    }

    #[test]
    fn named_defaults_are_inherited_with_from() {
        let text = "
defaults tls
    default-server ssl
defaults plain
    mode http
backend a from tls
    server x 10.0.0.1:443
backend b
    server y 10.0.0.2:80
";
        let s = parse(text);
        assert!(server(&s, "a", "x").ssl);
        assert!(!server(&s, "b", "y").ssl);
    }

    #[test]
    fn comments_quotes_escapes_and_arguments_are_not_options() {
        let text = r#"
listen "be main" # a listen section holds servers too
    # server ghost 10.0.0.9:80 ssl
    server web1 10.0.0.1:80 cookie ssl # the cookie's value, not the option
    server 'web 2' 10.0.0.2:443 sni str(ssl) ssl#comment right after
    server web3 10.0.0.3:80 check\ ssl
frontend fe
    server nope 10.0.0.4:80 ssl
"#;
        let s = parse(text);
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(!server(&s, "be main", "web1").ssl);
        assert!(server(&s, "be main", "web 2").ssl);
        // `check ssl` escaped into one unknown word.
        assert!(!server(&s, "be main", "web3").ssl);
    }

    #[test]
    fn words_split_like_haproxy() {
        assert_eq!(
            words(r#"  server  "a b" 'c#d' e\ f "" # g"#),
            ["server", "a b", "c#d", "e f", ""]
        );
        assert!(words("   # only a comment").is_empty());
        assert!(words("").is_empty());
    }

    #[test]
    fn a_server_line_without_an_address_or_outside_a_backend_is_ignored() {
        let s = parse("backend b\n    server lonely\nglobal\n    server g 1.2.3.4:80\n");
        assert!(s.is_empty(), "{s:?}");
    }
}
