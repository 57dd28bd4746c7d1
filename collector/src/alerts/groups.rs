//! Dependencies: one page, not five.
//!
//! The request path is user -> LB -> web -> app -> DB, and a failure deep
//! on it makes everything in front of it fail too: when the primary dies,
//! every app server's health check fails (they cannot reach it), HAProxy
//! marks every web server DOWN (their health checks reach the app), the
//! tiers in front lose their healthy nodes. Those are consequences, not
//! problems of their own.
//!
//! An active, critical alert about a role deeper on the path is the
//! **root** of the active alerts about roles in front of it that started
//! after it (or up to [`SLACK_MS`] before it, since checks notice in their
//! own time); and of the alerts about its own tier that started within
//! [`SLACK_MS`] after it (the primary's check, then the DB tier short of
//! healthy nodes: one problem).
//! A dependent alert is grouped under its root: the root is notified once,
//! naming them, and they are not notified on their own.

use stacktop_proto::Role;

/// How much earlier than its root a dependent may have started: checks on
/// different nodes notice the same failure a few seconds apart.
pub const SLACK_MS: i64 = 10_000;

/// How deep a role is on the request path (0: not on it).
pub fn depth(role: Role) -> u8 {
    match role {
        Role::Lb => 1,
        Role::Web => 2,
        Role::App => 3,
        Role::Db => 4,
        Role::Unspecified => 0,
    }
}

/// What grouping needs to know about one active alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its id.
    pub id: String,
    /// The role on the request path it is about (`None`: off the path, e.g.
    /// a full disk).
    pub role: Option<Role>,
    /// Critical (only critical alerts are roots).
    pub critical: bool,
    /// When its condition started to hold.
    pub started_ms: i64,
    /// About a whole tier (short of healthy nodes) rather than a node: the
    /// node's own alert explains it better, so it is the root first.
    pub about_tier: bool,
}

/// The root of each member (`None`: not grouped), in `members`' order.
pub fn roots(members: &[Member]) -> Vec<Option<String>> {
    // Deepest first, so a root's own root is known before anything is
    // grouped under it.
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(members[i].role.map_or(0, depth)),
            members[i].about_tier,
            members[i].started_ms,
            members[i].id.clone(),
        )
    });
    let mut roots: Vec<Option<String>> = vec![None; members.len()];
    for (pos, &i) in order.iter().enumerate() {
        let Some(role) = members[i].role.filter(|r| depth(*r) > 0) else {
            continue;
        };
        let a = &members[i];
        let root = order[..pos].iter().copied().find(|&j| {
            let r = &members[j];
            let Some(r_depth) = r.role.map(depth) else {
                return false;
            };
            r.critical
                && if r_depth > depth(role) {
                    r.started_ms <= a.started_ms + SLACK_MS
                } else {
                    // The same tier failing in several ways at once (the
                    // primary's check, then the tier short of nodes) is one
                    // problem; the first node alert to start stands for it
                    // (`order` puts it first).
                    r_depth == depth(role)
                        && roots[j].is_none()
                        && (a.started_ms - r.started_ms).abs() <= SLACK_MS
                }
        });
        if let Some(j) = root {
            roots[i] = Some(roots[j].clone().unwrap_or_else(|| members[j].id.clone()));
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, role: Option<Role>, critical: bool, started_ms: i64) -> Member {
        Member {
            id: id.into(),
            role,
            critical,
            started_ms,
            about_tier: false,
        }
    }

    #[test]
    fn a_node_alert_stands_for_its_tier_alert() {
        // The tier alert started first (tier-down has a shorter `for`, or
        // the same instant): the node's own alert is still the root.
        let tier = Member {
            about_tier: true,
            ..m("web-tier-down", Some(Role::Web), true, 1_000)
        };
        let members = [tier, m("web1-nginx", Some(Role::Web), true, 1_200)];
        assert_eq!(roots(&members), [Some("web1-nginx".to_string()), None]);
    }

    #[test]
    fn a_dead_primary_is_the_root_of_everything_in_front_of_it() {
        let members = [
            m("app-web1", Some(Role::App), true, 2_000),
            m("primary", Some(Role::Db), true, 1_000),
            m("app-web2", Some(Role::App), true, 3_000),
            m("haproxy", Some(Role::Lb), true, 4_000),
            m("disk", None, false, 0),
            m("replica", Some(Role::Db), true, 1_500),
        ];
        let roots = roots(&members);
        assert_eq!(roots[0].as_deref(), Some("primary"));
        assert_eq!(roots[1], None, "the root itself");
        assert_eq!(roots[2].as_deref(), Some("primary"));
        // The LB's failure is grouped under the deepest root, not under
        // the app alerts it stands behind.
        assert_eq!(roots[3].as_deref(), Some("primary"));
        assert_eq!(roots[4], None, "off the path");
        assert_eq!(
            roots[5].as_deref(),
            Some("primary"),
            "the same tier failing at once is one problem"
        );
    }

    #[test]
    fn the_same_tier_later_on_is_a_problem_of_its_own() {
        let members = [
            m("web1", Some(Role::Web), true, 0),
            m("web2", Some(Role::Web), true, 30_000),
            m("web3", Some(Role::Web), false, 2_000),
        ];
        assert_eq!(roots(&members), [None, None, Some("web1".to_string())]);
    }

    #[test]
    fn an_older_problem_is_not_a_consequence() {
        let members = [
            m("old-app", Some(Role::App), true, 0),
            m("primary", Some(Role::Db), true, 60_000),
        ];
        assert_eq!(roots(&members), [None, None]);
        // A warning is never a root.
        let members = [
            m("app", Some(Role::App), true, 5_000),
            m("lag", Some(Role::Db), false, 1_000),
        ];
        assert_eq!(roots(&members), [None, None]);
    }
}
