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
//! after it (within [`SLACK_MS`], since checks notice in their own time).
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
}

/// The root of each member (`None`: not grouped), in `members`' order.
pub fn roots(members: &[Member]) -> Vec<Option<String>> {
    // Deepest first, so a root's own root is known before anything is
    // grouped under it.
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(members[i].role.map_or(0, depth)),
            members[i].started_ms,
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
            r.critical
                && r.role.is_some_and(|rr| depth(rr) > depth(role))
                && r.started_ms <= a.started_ms + SLACK_MS
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
        }
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
        assert_eq!(roots[5], None, "same depth: not a dependent");
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
