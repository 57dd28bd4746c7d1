//! The dashboard's state and the only place it changes.
//!
//! # Layout
//!
//! - [`App`] holds the fleet as last reported by the collector (a
//!   [`FleetSnapshot`] with every later delta applied), the connection state,
//!   the open screen, the selection and `now`.
//! - [`Action`] is everything that can happen to it; [`App::update`] applies
//!   one. Keys become actions in [`App::action_for_key`], one small `match`
//!   per screen.
//! - [`tier_groups`] orders nodes by tier (LB, Web, App, DB, Unassigned) for
//!   both the dashboard and `stacktop status`.
//!
//! Nothing here computes health: node, tier and site health are shown as the
//! collector decided them.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use stacktop_proto::v1::{FleetSnapshot, FleetUpdate, NodeState, TierState, fleet_update};
use stacktop_proto::{Health, ROLES, Role};

use crate::event::Event;

/// Rows the screen chrome takes around the node list (two header lines,
/// the column heading, the footer).
const LIST_CHROME_ROWS: u16 = 4;

/// Where the dashboard stands with its collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Dialing, or waiting for the Watch stream to open.
    Connecting,
    /// The Watch stream is open.
    Connected,
    /// The last attempt failed; the next one starts at `retry_at_ms`.
    Disconnected {
        /// When the next attempt starts (Unix ms).
        retry_at_ms: i64,
        /// Why the last attempt failed, for the banner.
        error: String,
    },
}

/// Chart data for the detail screen: `(timestamp_ms, value)` pairs, oldest
/// first, as fetched with Fleet.History.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Total CPU usage ratio (0..1).
    pub cpu: Vec<(i64, f64)>,
    /// Memory used / total (0..1).
    pub memory: Vec<(i64, f64)>,
    /// Received bytes per second, summed over non-loopback devices.
    pub receive: Vec<(i64, f64)>,
    /// Transmitted bytes per second, summed over non-loopback devices.
    pub transmit: Vec<(i64, f64)>,
}

/// The detail screen's charts: waiting, drawn, or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryState {
    /// Nothing has arrived yet for this node.
    Loading,
    /// The latest fetched history.
    Loaded(History),
    /// The first fetch failed; the message says why.
    Failed(String),
}

/// Which screen is in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// All nodes by tier.
    Fleet,
    /// One node, by name.
    Detail(String),
}

/// One row of the fleet list: a node under one of its tiers. A node with
/// two roles has two entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tier heading the row sits under (`Role::Unspecified`: Unassigned).
    pub tier: Role,
    /// The node's name.
    pub name: String,
    /// Index of the node in the snapshot's `nodes`.
    pub node: usize,
}

/// Everything that can change the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave the dashboard.
    Quit,
    /// Move the selection one row up.
    Up,
    /// Move the selection one row down.
    Down,
    /// Move the selection one page up.
    PageUp,
    /// Move the selection one page down.
    PageDown,
    /// Select the first row.
    Home,
    /// Select the last row.
    End,
    /// Open the detail screen of the selected node.
    Open,
    /// Go back from the detail screen to the fleet.
    Back,
    /// Show the key help.
    ShowHelp,
    /// Hide the key help.
    CloseHelp,
    /// The clock moved on (Unix ms).
    Tick(i64),
    /// The terminal has a new size.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// The collector sent a snapshot or a delta.
    Update(Box<FleetUpdate>),
    /// The connection to the collector changed.
    Connection(ConnState),
    /// History for a node's charts arrived (or failed).
    History {
        /// The node the history belongs to.
        node: String,
        /// The charts' data, or why fetching failed.
        result: Result<History, String>,
    },
}

/// The dashboard's whole state. Rendering reads it and never changes it.
#[derive(Debug, Clone)]
pub struct App {
    /// The collector's address, as shown in the header.
    pub collector_url: String,
    /// The connection to the collector.
    pub connection: ConnState,
    /// The fleet with every delta applied; `None` before the first snapshot.
    pub fleet: Option<FleetSnapshot>,
    /// The fleet list's rows, rebuilt whenever the fleet changes.
    pub entries: Vec<Entry>,
    /// Index into `entries` of the highlighted row.
    pub selected: usize,
    /// The row the user last chose (tier, node name): the selection returns
    /// to it when a node vanishes and comes back (e.g. a collector restart).
    pub chosen: Option<(Role, String)>,
    /// First list line shown (the list scrolls when it is taller than the
    /// screen).
    pub scroll: usize,
    /// The screen in front.
    pub screen: Screen,
    /// Whether the key help is shown over the screen.
    pub help: bool,
    /// History for the open detail screen.
    pub history: HistoryState,
    /// The current time (Unix ms), moved on by ticks so rendering never
    /// reads a clock.
    pub now_ms: i64,
    /// When the last update arrived (Unix ms at the last tick); 0: never.
    pub last_update_ms: i64,
    /// Terminal size, for paging and scrolling.
    pub size: (u16, u16),
    /// Set by [`Action::Quit`]; the event loop ends.
    pub should_quit: bool,
}

impl App {
    /// An empty dashboard for `collector_url` at time `now_ms`.
    pub fn new(collector_url: impl Into<String>, now_ms: i64) -> Self {
        Self {
            collector_url: collector_url.into(),
            connection: ConnState::Connecting,
            fleet: None,
            entries: Vec::new(),
            selected: 0,
            chosen: None,
            scroll: 0,
            screen: Screen::Fleet,
            help: false,
            history: HistoryState::Loading,
            now_ms,
            last_update_ms: 0,
            size: (80, 24),
            should_quit: false,
        }
    }

    /// The node the detail screen shows, if it is open.
    pub fn detail_node(&self) -> Option<&str> {
        match &self.screen {
            Screen::Detail(name) => Some(name),
            Screen::Fleet => None,
        }
    }

    /// The node named `name` in the current fleet.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        let fleet = self.fleet.as_ref()?;
        fleet
            .nodes
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()
            .map(|i| &fleet.nodes[i])
            .or_else(|| fleet.nodes.iter().find(|n| n.name == name))
    }

    /// The collector's view of tier `role`, if it reported one.
    pub fn tier(&self, role: Role) -> Option<&TierState> {
        self.fleet.as_ref()?.tiers.iter().find(|t| t.role() == role)
    }

    /// The highlighted entry, if the list is not empty.
    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// Whether the collector is currently connected.
    pub fn is_connected(&self) -> bool {
        self.connection == ConnState::Connected
    }

    /// How many list lines fit on screen at the current size.
    pub fn list_rows(&self) -> usize {
        self.size.1.saturating_sub(LIST_CHROME_ROWS).max(1) as usize
    }

    /// The list line (counting tier headings) of entry `index`.
    pub fn entry_line(&self, index: usize) -> usize {
        let index = index.min(self.entries.len().saturating_sub(1));
        let headings = (0..=index).filter(|&i| self.is_first_in_tier(i)).count();
        index + headings
    }

    /// Whether entry `index` is the first under its tier heading.
    pub fn is_first_in_tier(&self, index: usize) -> bool {
        index == 0
            || match (self.entries.get(index - 1), self.entries.get(index)) {
                (Some(prev), Some(this)) => prev.tier != this.tier,
                _ => false,
            }
    }

    /// Turns an input event into an action, if it means anything here.
    pub fn action_for(&self, event: Event) -> Option<Action> {
        match event {
            Event::Key(key) => self.action_for_key(key),
            Event::Resize(width, height) => Some(Action::Resize { width, height }),
            Event::Tick(now) => Some(Action::Tick(now)),
            Event::Update(update) => Some(Action::Update(update)),
            Event::Connection(state) => Some(Action::Connection(state)),
            Event::History { node, result } => Some(Action::History { node, result }),
        }
    }

    /// The action a key press means on the current screen.
    pub fn action_for_key(&self, key: KeyEvent) -> Option<Action> {
        if key.kind != KeyEventKind::Press {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if self.help {
            return Some(Action::CloseHelp);
        }
        match key.code {
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Char('?') => return Some(Action::ShowHelp),
            _ => {}
        }
        match self.screen {
            Screen::Fleet => Self::fleet_key(key.code),
            Screen::Detail(_) => Self::detail_key(key.code),
        }
    }

    fn fleet_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::Home),
            KeyCode::End | KeyCode::Char('G') => Some(Action::End),
            KeyCode::Enter => Some(Action::Open),
            _ => None,
        }
    }

    fn detail_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h') => {
                Some(Action::Back)
            }
            _ => None,
        }
    }

    /// Applies one action. This is the only place the state changes.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Quit => self.should_quit = true,
            Action::Up => self.choose(self.selected.saturating_sub(1)),
            Action::Down => self.choose(self.selected.saturating_add(1)),
            Action::PageUp => self.choose(self.selected.saturating_sub(self.page())),
            Action::PageDown => self.choose(self.selected.saturating_add(self.page())),
            Action::Home => self.choose(0),
            Action::End => self.choose(usize::MAX),
            Action::Open => self.open_selected(),
            Action::Back => self.screen = Screen::Fleet,
            Action::ShowHelp => self.help = true,
            Action::CloseHelp => self.help = false,
            Action::Tick(now) => self.now_ms = now,
            Action::Resize { width, height } => {
                self.size = (width, height);
                self.select(self.selected);
            }
            Action::Update(update) => self.apply(*update),
            Action::Connection(state) => self.connection = state,
            Action::History { node, result } => self.history_arrived(node, result),
        }
    }

    fn page(&self) -> usize {
        self.list_rows().saturating_sub(1).max(1)
    }

    /// Selects entry `index` on the user's behalf and remembers it.
    fn choose(&mut self, index: usize) {
        self.select(index);
        self.chosen = self.selected_entry().map(|e| (e.tier, e.name.clone()));
    }

    /// Selects entry `index` (clamped to the list) and scrolls so that it
    /// and its tier heading are visible.
    fn select(&mut self, index: usize) {
        self.selected = index.min(self.entries.len().saturating_sub(1));
        let line = self.entry_line(self.selected);
        let top = if self.is_first_in_tier(self.selected) {
            line.saturating_sub(1)
        } else {
            line
        };
        let rows = self.list_rows();
        if top < self.scroll {
            self.scroll = top;
        } else if line >= self.scroll + rows {
            self.scroll = line + 1 - rows;
        }
    }

    fn open_selected(&mut self) {
        if let Some(entry) = self.selected_entry() {
            self.screen = Screen::Detail(entry.name.clone());
            self.history = HistoryState::Loading;
        }
    }

    fn history_arrived(&mut self, node: String, result: Result<History, String>) {
        if self.detail_node() != Some(node.as_str()) {
            return;
        }
        match result {
            Ok(history) => self.history = HistoryState::Loaded(history),
            // Keep charts already drawn; a failed refresh is not worth blanking them.
            Err(_) if matches!(self.history, HistoryState::Loaded(_)) => {}
            Err(err) => self.history = HistoryState::Failed(err),
        }
    }

    /// Applies a snapshot (replaces everything) or a delta (upserts nodes by
    /// name, drops removed ones, replaces tiers and site).
    fn apply(&mut self, update: FleetUpdate) {
        let previous = self
            .chosen
            .clone()
            .or_else(|| self.selected_entry().map(|e| (e.tier, e.name.clone())));
        match update.update {
            Some(fleet_update::Update::Snapshot(mut snapshot)) => {
                snapshot.nodes.sort_by(|a, b| a.name.cmp(&b.name));
                self.fleet = Some(snapshot);
            }
            Some(fleet_update::Update::Delta(delta)) => {
                let Some(fleet) = self.fleet.as_mut() else {
                    tracing::warn!("delta before any snapshot; ignored");
                    return;
                };
                for node in delta.upserted {
                    match fleet.nodes.binary_search_by(|n| n.name.cmp(&node.name)) {
                        Ok(i) => fleet.nodes[i] = node,
                        Err(i) => fleet.nodes.insert(i, node),
                    }
                }
                fleet.nodes.retain(|n| !delta.removed.contains(&n.name));
                fleet.tiers = delta.tiers;
                fleet.site = delta.site;
                fleet.timestamp_ms = delta.timestamp_ms;
                // Sent whole with every delta.
                fleet.web_lb_request_ratio = delta.web_lb_request_ratio;
                fleet.lb_requests_per_second = delta.lb_requests_per_second;
                fleet.web_requests_per_second = delta.web_requests_per_second;
            }
            None => return,
        }
        self.last_update_ms = self.now_ms;
        self.entries = self.fleet.as_ref().map(entries).unwrap_or_default();
        let index = previous
            .and_then(|(tier, name)| {
                self.entries
                    .iter()
                    .position(|e| e.tier == tier && e.name == name)
            })
            .unwrap_or(self.selected);
        self.select(index);
    }
}

/// The tiers to show, in request-path order (LB, Web, App, DB), then
/// Unassigned (`Role::Unspecified`) for nodes without roles; each with the
/// indexes of its nodes in `snapshot.nodes` (a node with two roles appears
/// under both). Empty tiers are left out.
pub fn tier_groups(snapshot: &FleetSnapshot) -> Vec<(Role, Vec<usize>)> {
    let mut groups: HashMap<Role, Vec<usize>> = HashMap::new();
    for (i, node) in snapshot.nodes.iter().enumerate() {
        let mut any = false;
        for role in node.roles().filter(|r| ROLES.contains(r)) {
            let group = groups.entry(role).or_default();
            if !group.contains(&i) {
                group.push(i);
            }
            any = true;
        }
        if !any {
            groups.entry(Role::Unspecified).or_default().push(i);
        }
    }
    ROLES
        .iter()
        .chain([Role::Unspecified].iter())
        .filter_map(|role| groups.remove(role).map(|g| (*role, g)))
        .collect()
}

fn entries(snapshot: &FleetSnapshot) -> Vec<Entry> {
    tier_groups(snapshot)
        .into_iter()
        .flat_map(|(tier, nodes)| {
            nodes.into_iter().map(move |node| Entry {
                tier,
                name: snapshot.nodes[node].name.clone(),
                node,
            })
        })
        .collect()
}

/// Counts of nodes in `fleet`: (up, down, total), where down means the
/// collector reported the node as [`Health::Down`].
pub fn node_counts(fleet: &FleetSnapshot) -> (usize, usize, usize) {
    let total = fleet.nodes.len();
    let down = fleet
        .nodes
        .iter()
        .filter(|n| n.health() == Health::Down)
        .count();
    (total - down, down, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::v1::{FleetDelta, TierState};

    fn node(name: &str, roles: &[Role]) -> NodeState {
        NodeState {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            health: Health::Ok as i32,
            ..Default::default()
        }
    }

    fn app_with(nodes: Vec<NodeState>) -> App {
        let mut app = App::new("http://test", 1_000);
        app.update(Action::Connection(ConnState::Connected));
        app.update(Action::Update(Box::new(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes,
                ..Default::default()
            })),
        })));
        app
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn three() -> App {
        app_with(vec![
            node("db1", &[Role::Db]),
            node("lb1", &[Role::Lb]),
            node("web1", &[Role::Web, Role::App]),
        ])
    }

    #[test]
    fn nodes_group_by_tier_in_request_path_order() {
        let app = app_with(vec![
            node("box", &[]),
            node("db1", &[Role::Db]),
            node("lb1", &[Role::Lb]),
            node("web1", &[Role::Web, Role::App]),
        ]);
        let rows: Vec<_> = app
            .entries
            .iter()
            .map(|e| (e.tier.tier_title(), e.name.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("LB", "lb1"),
                ("Web", "web1"),
                ("App", "web1"),
                ("DB", "db1"),
                ("Unassigned", "box")
            ]
        );
    }

    #[test]
    fn selection_clamps_at_both_ends() {
        let mut app = three();
        app.update(Action::Up);
        assert_eq!(app.selected, 0);
        for _ in 0..10 {
            app.update(Action::Down);
        }
        assert_eq!(app.selected, 3);
        app.update(Action::Home);
        assert_eq!(app.selected, 0);
        app.update(Action::End);
        assert_eq!(app.selected_entry().unwrap().name, "db1");
        app.update(Action::PageUp);
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn keys_map_to_actions_per_screen() {
        let app = three();
        assert_eq!(
            app.action_for_key(key(KeyCode::Char('j'))),
            Some(Action::Down)
        );
        assert_eq!(app.action_for_key(key(KeyCode::Up)), Some(Action::Up));
        assert_eq!(app.action_for_key(key(KeyCode::Enter)), Some(Action::Open));
        assert_eq!(
            app.action_for_key(key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.action_for_key(ctrl_c), Some(Action::Quit));
        let mut help = three();
        help.update(Action::ShowHelp);
        assert_eq!(
            help.action_for_key(key(KeyCode::Char('x'))),
            Some(Action::CloseHelp)
        );
        assert_eq!(
            help.action_for_key(key(KeyCode::Esc)),
            Some(Action::CloseHelp)
        );
    }

    #[test]
    fn enter_opens_the_selected_node_and_esc_returns() {
        let mut app = three();
        app.update(Action::Down);
        app.update(Action::Open);
        assert_eq!(app.screen, Screen::Detail("web1".into()));
        assert_eq!(app.history, HistoryState::Loading);
        assert_eq!(app.action_for_key(key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(
            app.action_for_key(key(KeyCode::Backspace)),
            Some(Action::Back)
        );
        app.update(Action::Back);
        assert_eq!(app.screen, Screen::Fleet);
        assert_eq!(app.selected_entry().unwrap().name, "web1");
    }

    #[test]
    fn history_for_another_node_is_ignored() {
        let mut app = three();
        app.update(Action::Open);
        app.update(Action::History {
            node: "db1".into(),
            result: Ok(History::default()),
        });
        assert_eq!(app.history, HistoryState::Loading);
        app.update(Action::History {
            node: "lb1".into(),
            result: Ok(History::default()),
        });
        assert_eq!(app.history, HistoryState::Loaded(History::default()));
        app.update(Action::History {
            node: "lb1".into(),
            result: Err("boom".into()),
        });
        assert!(matches!(app.history, HistoryState::Loaded(_)));
    }

    #[test]
    fn deltas_upsert_remove_and_replace_tiers() {
        let mut app = three();
        app.update(Action::End); // db1
        let mut changed = node("lb1", &[Role::Lb]);
        changed.health = Health::Crit as i32;
        let delta = FleetDelta {
            upserted: vec![changed, node("app2", &[Role::App])],
            removed: vec!["web1".into()],
            tiers: vec![TierState {
                role: Role::Lb as i32,
                healthy: 0,
                total: 1,
                spof: true,
                health: Health::Down as i32,
            }],
            site: Health::Down as i32,
            timestamp_ms: 42,
            ..Default::default()
        };
        app.update(Action::Update(Box::new(FleetUpdate {
            update: Some(fleet_update::Update::Delta(delta)),
        })));
        let fleet = app.fleet.as_ref().unwrap();
        let names: Vec<_> = fleet.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["app2", "db1", "lb1"]);
        assert_eq!(app.node("lb1").unwrap().health(), Health::Crit);
        assert_eq!(fleet.site(), Health::Down);
        assert!(app.tier(Role::Lb).unwrap().spof);
        // The selection follows its node through the reshuffle.
        assert_eq!(app.selected_entry().unwrap().name, "db1");
    }

    #[test]
    fn the_chosen_node_gets_the_selection_back_when_it_returns() {
        let mut app = three();
        app.update(Action::End); // db1
        let only = |nodes| {
            Action::Update(Box::new(FleetUpdate {
                update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                    nodes,
                    ..Default::default()
                })),
            }))
        };
        app.update(only(vec![node("lb1", &[Role::Lb])]));
        assert_eq!(app.selected_entry().unwrap().name, "lb1");
        app.update(only(vec![
            node("db1", &[Role::Db]),
            node("lb1", &[Role::Lb]),
        ]));
        assert_eq!(app.selected_entry().unwrap().name, "db1");
    }

    #[test]
    fn a_fresh_snapshot_replaces_everything() {
        let mut app = three();
        app.update(Action::Update(Box::new(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes: vec![node("solo", &[])],
                ..Default::default()
            })),
        })));
        assert_eq!(app.entries.len(), 1);
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn long_lists_scroll_to_keep_the_selection_visible() {
        let nodes = (0..40)
            .map(|i| node(&format!("web{i:02}"), &[Role::Web]))
            .collect();
        let mut app = app_with(nodes);
        app.update(Action::Resize {
            width: 80,
            height: 14,
        }); // 10 list rows
        assert_eq!(app.list_rows(), 10);
        for _ in 0..15 {
            app.update(Action::Down);
        }
        // Entry 15 is line 16 (after the heading); it is the last visible line.
        assert_eq!(app.scroll, 7);
        app.update(Action::Home);
        assert_eq!(app.scroll, 0);
    }
}
