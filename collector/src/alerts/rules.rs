//! Alert rules: the `[[rules]]` tables of the collector's config, the
//! built-in rules they override, and what each rule's condition is.
//!
//! A rule matches checks or metrics by name, labels and node role, and its
//! condition is one of: a check's status at least warn or crit; a metric
//! above or below a threshold (optionally averaged over a window); a node
//! down; a tier with fewer healthy nodes than a minimum. Every rule has a
//! `for` (how long the condition must hold before it fires), a
//! `keep-firing-for` (how long it keeps firing after the condition stopped,
//! so a flapping check makes one alert, not many), a severity, labels and a
//! summary template.
//!
//! # Built-in rules
//!
//! On by default; a `[[rules]]` table with the same `name` overrides the
//! keys it sets (`disabled = true` turns one off):
//!
//! | name | condition | for | severity |
//! |---|---|---|---|
//! | `node-down` | the node's agent is silent (3 intervals) | 0s | critical |
//! | `check-failed` | any check is crit | 10s | critical |
//! | `tier-spof` | a tier with nodes has exactly one healthy | 30s | warning |
//! | `tier-down` | a tier with nodes has none healthy | 5s | critical |
//! | `replication-lag` | `mysql_replication_lag_seconds` above 30 | 30s | warning |
//! | `disk-full` | a filesystem over 90 % used | 1m | warning |
//!
//! These are seconds, not Prometheus' minutes: stacktop samples every
//! second and detects a fault in one to four.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stacktop_proto::metrics;
use stacktop_proto::{Health, Role};

/// An alert's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Degraded, look soon.
    Warning,
    /// Broken, look now.
    Critical,
}

impl Severity {
    /// As the contract has it.
    pub fn proto(self) -> stacktop_proto::v1::Severity {
        match self {
            Severity::Warning => stacktop_proto::v1::Severity::Warning,
            Severity::Critical => stacktop_proto::v1::Severity::Critical,
        }
    }

    /// `warning` or `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule's condition is, as written in `condition = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKind {
    /// A check's status.
    Check,
    /// A metric against a threshold.
    Metric,
    /// A node down.
    NodeDown,
    /// A tier with too few healthy nodes.
    Tier,
}

/// One `[[rules]]` table. Every key is optional so that a table can
/// override a built-in rule by name with just the keys it changes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name: a built-in's to override it, or a new one.
    pub name: String,
    /// Turns the rule off.
    pub disabled: Option<bool>,
    /// What the condition is (required for a new rule).
    pub condition: Option<ConditionKind>,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Option<Duration>,
    /// How long it keeps firing after the condition stopped.
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Option<Duration>,
    /// `warning` or `critical`.
    pub severity: Option<Severity>,
    /// The summary: `{node}`, `{check}`, `{status}`, `{message}`, `{value}`,
    /// `{tier}`, `{healthy}`, `{total}`, `{threshold}`, `{rule}` are filled in.
    pub summary: Option<String>,
    /// Labels added to the alert.
    pub labels: Option<BTreeMap<String, String>>,
    /// Only nodes (or the tier) of this role.
    pub role: Option<String>,
    /// Only nodes or series carrying these labels.
    #[serde(rename = "match")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Check condition: the check's name (`*` matches any run of characters).
    pub check: Option<String>,
    /// Check condition: the check's kind.
    pub kind: Option<String>,
    /// Check condition: the least bad status that holds: `warn` or `crit`.
    pub status: Option<String>,
    /// Metric condition: the metric's name.
    pub metric: Option<String>,
    /// Metric condition: divide by this metric (same labels), e.g. a
    /// filesystem's size.
    pub divided_by: Option<String>,
    /// Metric condition: holds above this value.
    pub above: Option<f64>,
    /// Metric condition: holds below this value.
    pub below: Option<f64>,
    /// Metric condition: average over this window first.
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    /// Tier condition: holds when fewer nodes than this are healthy.
    pub min_healthy: Option<u32>,
}

/// What must hold for a rule's alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A check (matching name and kind) at least this bad.
    Check {
        /// Name pattern (`*` wildcards); `None`: any.
        name: Option<String>,
        /// Kind; `None`: any.
        kind: Option<String>,
        /// `Warn` or `Crit`.
        at_least: Health,
    },
    /// A metric (optionally a ratio of two, optionally averaged) beyond a
    /// threshold.
    Metric {
        /// The metric.
        metric: String,
        /// Divided by this metric with the same labels.
        divided_by: Option<String>,
        /// Holds above.
        above: Option<f64>,
        /// Holds below.
        below: Option<f64>,
        /// Averaging window (0: the latest value).
        window_ms: i64,
    },
    /// The node is down.
    NodeDown,
    /// The tier has nodes and fewer than `min_healthy` healthy ones (and,
    /// with `at_least_one`, at least one: the down case is another rule's).
    Tier {
        /// The minimum.
        min_healthy: u32,
        /// Holds only while some node is healthy.
        at_least_one: bool,
    },
}

/// A resolved rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name (`alertname`).
    pub name: String,
    /// What must hold.
    pub condition: Condition,
    /// `for`, in ms.
    pub for_ms: i64,
    /// `keep-firing-for`, in ms.
    pub keep_firing_for_ms: i64,
    /// Severity.
    pub severity: Severity,
    /// Summary template.
    pub summary: String,
    /// Labels added.
    pub labels: BTreeMap<String, String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only nodes or series carrying these labels.
    pub match_labels: BTreeMap<String, String>,
}

/// A rule that cannot work, naming the rule and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule {rule:?}: key {key}: {reason}")]
pub struct RuleError {
    /// The rule's name.
    pub rule: String,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn secs(s: u64) -> i64 {
    (s * 1_000) as i64
}

/// The built-in rules, in the order they are evaluated.
pub fn builtins() -> Vec<Rule> {
    let rule = |name: &str, condition, for_ms, severity, summary: &str| Rule {
        name: name.to_string(),
        condition,
        for_ms,
        keep_firing_for_ms: secs(10),
        severity,
        summary: summary.to_string(),
        labels: BTreeMap::new(),
        role: None,
        match_labels: BTreeMap::new(),
    };
    vec![
        rule(
            "node-down",
            Condition::NodeDown,
            0,
            Severity::Critical,
            "{node} is down: its agent has been silent for {value} s",
        ),
        rule(
            "check-failed",
            Condition::Check {
                name: None,
                kind: None,
                at_least: Health::Crit,
            },
            secs(10),
            Severity::Critical,
            "{node}: {check} is {status}: {message}",
        ),
        rule(
            "tier-spof",
            Condition::Tier {
                min_healthy: 2,
                at_least_one: true,
            },
            secs(30),
            Severity::Warning,
            "{tier} tier: {healthy} of {total} nodes healthy, a single point of failure",
        ),
        rule(
            "tier-down",
            Condition::Tier {
                min_healthy: 1,
                at_least_one: false,
            },
            secs(5),
            Severity::Critical,
            "{tier} tier is down: none of its {total} nodes is healthy",
        ),
        rule(
            "replication-lag",
            Condition::Metric {
                metric: metrics::MYSQL_REPLICATION_LAG.into(),
                divided_by: None,
                above: Some(30.0),
                below: None,
                window_ms: 0,
            },
            secs(30),
            Severity::Warning,
            "{node}: the replica is {value} s behind its primary (over {threshold} s)",
        ),
        rule(
            "disk-full",
            Condition::Metric {
                metric: metrics::FILESYSTEM_USED.into(),
                divided_by: Some(metrics::FILESYSTEM_SIZE.into()),
                above: Some(0.9),
                below: None,
                window_ms: 0,
            },
            secs(60),
            Severity::Warning,
            "{node}: filesystem {mount} is {value} full (over {threshold})",
        ),
    ]
}

/// The rules to run: the built-ins with `configs` applied (overrides by
/// name, new rules appended, disabled ones left out).
pub fn resolve(configs: &[RuleConfig]) -> Result<Vec<Rule>, RuleError> {
    let mut rules: Vec<(Rule, bool)> = builtins().into_iter().map(|r| (r, true)).collect();
    let mut seen = Vec::new();
    for c in configs {
        let bad = |key: &'static str, reason: String| RuleError {
            rule: c.name.clone(),
            key,
            reason,
        };
        if c.name.trim().is_empty() || c.name.chars().any(char::is_control) {
            return Err(bad("name", "a rule needs a name".into()));
        }
        if seen.contains(&c.name) {
            return Err(bad("name", "two [[rules]] tables have this name".into()));
        }
        seen.push(c.name.clone());
        let enabled = !c.disabled.unwrap_or(false);
        match rules.iter_mut().find(|(r, _)| r.name == c.name) {
            Some((rule, on)) => {
                apply(rule, c, false)?;
                *on = enabled;
            }
            None => {
                let kind = c.condition.ok_or_else(|| {
                    bad(
                        "condition",
                        "a new rule needs a condition: check, metric, node-down or tier".into(),
                    )
                })?;
                let condition = match kind {
                    ConditionKind::Check => Condition::Check {
                        name: None,
                        kind: None,
                        at_least: Health::Crit,
                    },
                    ConditionKind::Metric => Condition::Metric {
                        metric: String::new(),
                        divided_by: None,
                        above: None,
                        below: None,
                        window_ms: 0,
                    },
                    ConditionKind::NodeDown => Condition::NodeDown,
                    ConditionKind::Tier => Condition::Tier {
                        min_healthy: 2,
                        at_least_one: false,
                    },
                };
                let mut rule = Rule {
                    name: c.name.clone(),
                    condition,
                    for_ms: 0,
                    keep_firing_for_ms: secs(10),
                    severity: Severity::Warning,
                    summary: "{rule}: {node}{tier} {message}{value}".into(),
                    labels: BTreeMap::new(),
                    role: None,
                    match_labels: BTreeMap::new(),
                };
                apply(&mut rule, c, true)?;
                rules.push((rule, enabled));
            }
        }
    }
    Ok(rules
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(r, _)| r)
        .collect())
}

/// Applies the keys `c` sets to `rule`; `new` when the rule is not a
/// built-in (then the condition's keys are required).
fn apply(rule: &mut Rule, c: &RuleConfig, new: bool) -> Result<(), RuleError> {
    let bad = |key: &'static str, reason: String| RuleError {
        rule: c.name.clone(),
        key,
        reason,
    };
    if let Some(kind) = c.condition {
        let same = matches!(
            (&rule.condition, kind),
            (Condition::Check { .. }, ConditionKind::Check)
                | (Condition::Metric { .. }, ConditionKind::Metric)
                | (Condition::NodeDown, ConditionKind::NodeDown)
                | (Condition::Tier { .. }, ConditionKind::Tier)
        );
        if !same {
            return Err(bad(
                "condition",
                "a built-in rule's condition cannot be changed; give the rule another name".into(),
            ));
        }
    }
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if let Some(d) = c.for_ {
        rule.for_ms = ms(d);
    }
    if let Some(d) = c.keep_firing_for {
        rule.keep_firing_for_ms = ms(d);
    }
    if let Some(s) = c.severity {
        rule.severity = s;
    }
    if let Some(s) = &c.summary {
        rule.summary = s.clone();
    }
    if let Some(l) = &c.labels {
        for key in l.keys() {
            if !valid_label_name(key) {
                return Err(bad(
                    "labels",
                    format!("{key:?} is not a label name (letters, digits, _)"),
                ));
            }
        }
        rule.labels = l.clone();
    }
    if let Some(role) = &c.role {
        rule.role = Some(
            role.parse::<Role>()
                .map_err(|e| bad("role", e.to_string()))?,
        );
    }
    if let Some(m) = &c.match_labels {
        rule.match_labels = m.clone();
    }
    let wrong_kind = |key: &'static str, kind: &str| {
        bad(
            key,
            format!("{key} belongs to {kind} conditions, not to this rule's"),
        )
    };
    match &mut rule.condition {
        Condition::Check {
            name,
            kind,
            at_least,
        } => {
            if let Some(n) = &c.check {
                *name = Some(n.clone());
            }
            if let Some(k) = &c.kind {
                *kind = Some(k.clone());
            }
            if let Some(s) = &c.status {
                *at_least = match s.as_str() {
                    "warn" => Health::Warn,
                    "crit" => Health::Crit,
                    other => {
                        return Err(bad(
                            "status",
                            format!("{other:?}: expected \"warn\" or \"crit\""),
                        ));
                    }
                };
            }
        }
        Condition::Metric {
            metric,
            divided_by,
            above,
            below,
            window_ms,
        } => {
            if let Some(m) = &c.metric {
                *metric = m.clone();
            }
            if let Some(d) = &c.divided_by {
                *divided_by = Some(d.clone());
            }
            if c.above.is_some() || c.below.is_some() {
                *above = c.above;
                *below = c.below;
            }
            if let Some(w) = c.window {
                *window_ms = ms(w);
            }
            if metric.is_empty() {
                return Err(bad("metric", "a metric condition needs `metric`".into()));
            }
            if above.is_none() && below.is_none() {
                return Err(bad(
                    "above",
                    "a metric condition needs `above` or `below`".into(),
                ));
            }
            if above.is_some_and(|v| !v.is_finite()) || below.is_some_and(|v| !v.is_finite()) {
                return Err(bad("above", "thresholds must be finite numbers".into()));
            }
        }
        Condition::NodeDown => {}
        Condition::Tier {
            min_healthy,
            at_least_one,
        } => {
            if let Some(m) = c.min_healthy {
                if m == 0 {
                    return Err(bad("min-healthy", "must be at least 1".into()));
                }
                *min_healthy = m;
                if new {
                    *at_least_one = false;
                }
            }
        }
    }
    let kind_of = |cond: &Condition| match cond {
        Condition::Check { .. } => "check",
        Condition::Metric { .. } => "metric",
        Condition::NodeDown => "node-down",
        Condition::Tier { .. } => "tier",
    };
    let k = kind_of(&rule.condition);
    let check_keys = c.check.is_some() || c.kind.is_some() || c.status.is_some();
    let metric_keys = c.metric.is_some()
        || c.divided_by.is_some()
        || c.above.is_some()
        || c.below.is_some()
        || c.window.is_some();
    if check_keys && k != "check" {
        return Err(wrong_kind("check", "check"));
    }
    if metric_keys && k != "metric" {
        return Err(wrong_kind("metric", "metric"));
    }
    if c.min_healthy.is_some() && k != "tier" {
        return Err(wrong_kind("min-healthy", "tier"));
    }
    Ok(())
}

/// Prometheus label names: letters, digits and `_`, not starting with a
/// digit.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (including none) and everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// The metric names the rules read, so the store keeps their latest values
/// ready for the fleet view.
pub fn watched_metrics(rules: &[Rule]) -> Vec<String> {
    let mut names: Vec<String> = rules
        .iter()
        .filter_map(|r| match &r.condition {
            Condition::Metric {
                metric, divided_by, ..
            } => Some(std::iter::once(metric.clone()).chain(divided_by.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Vec<RuleConfig> {
        #[derive(Deserialize)]
        struct File {
            rules: Vec<RuleConfig>,
        }
        toml::from_str::<File>(text).unwrap().rules
    }

    #[test]
    fn builtins_are_on_and_overridable_by_name() {
        let rules = resolve(&[]).unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "node-down",
                "check-failed",
                "tier-spof",
                "tier-down",
                "replication-lag",
                "disk-full"
            ]
        );
        let rules = resolve(&config(
            "[[rules]]\nname = \"check-failed\"\nfor = \"2s\"\n\n[[rules]]\nname = \"disk-full\"\ndisabled = true\n",
        ))
        .unwrap();
        let check = rules.iter().find(|r| r.name == "check-failed").unwrap();
        assert_eq!(check.for_ms, 2_000);
        assert_eq!(
            check.severity,
            Severity::Critical,
            "unset keys keep the built-in's"
        );
        assert!(!rules.iter().any(|r| r.name == "disk-full"));
    }

    #[test]
    fn new_rules_need_a_whole_condition() {
        let err = resolve(&config("[[rules]]\nname = \"x\"\n")).unwrap_err();
        assert_eq!(err.key, "condition");
        let err = resolve(&config(
            "[[rules]]\nname = \"load\"\ncondition = \"metric\"\nmetric = \"node_load1\"\n",
        ))
        .unwrap_err();
        assert_eq!(err.key, "above");
        let rules = resolve(&config(
            "[[rules]]\nname = \"load\"\ncondition = \"metric\"\nmetric = \"node_load1\"\nabove = 8\nwindow = \"1m\"\nrole = \"web\"\nseverity = \"critical\"\n",
        ))
        .unwrap();
        let load = rules.last().unwrap();
        assert_eq!(load.role, Some(Role::Web));
        assert!(matches!(
            load.condition,
            Condition::Metric {
                window_ms: 60_000,
                above: Some(8.0),
                ..
            }
        ));
        let err = resolve(&config(
            "[[rules]]\nname = \"x\"\ncondition = \"check\"\nabove = 1\n",
        ))
        .unwrap_err();
        assert_eq!(err.key, "metric");
        let err = resolve(&config(
            "[[rules]]\nname = \"x\"\ncondition = \"check\"\nstatus = \"bad\"\n",
        ))
        .unwrap_err();
        assert_eq!(err.key, "status");
        let err = resolve(&config(
            "[[rules]]\nname = \"node-down\"\ncondition = \"tier\"\n",
        ))
        .unwrap_err();
        assert_eq!(err.key, "condition");
    }

    #[test]
    fn globs() {
        assert!(glob("mysql", "mysql"));
        assert!(glob("app:*", "app:127.0.0.1:9000/health"));
        assert!(glob("*health*", "app:/health"));
        assert!(!glob("app:*", "http:x"));
        assert!(glob("*", ""));
    }

    #[test]
    fn the_rules_say_which_metrics_to_keep() {
        assert_eq!(
            watched_metrics(&resolve(&[]).unwrap()),
            [
                metrics::MYSQL_REPLICATION_LAG,
                metrics::FILESYSTEM_SIZE,
                metrics::FILESYSTEM_USED,
            ]
        );
    }
}
