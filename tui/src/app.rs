//! The dashboard's screen state and the only place it changes.
//!
//! # Layout
//!
//! - [`App`] holds what the user sees of the fleet: the open screen, the
//!   selection, scrolling, the key help, the clock and the terminal size;
//!   and a [`Model`], the fleet as reported, which it changes only through
//!   the model's own methods.
//! - [`Action`] is everything that can happen to it; [`App::update`] applies
//!   one. Keys become actions in [`App::action_for_key`], one small `match`
//!   per screen.
//!
//! Nothing here computes health: node, tier and site health are shown as the
//! collector decided them.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use stacktop_proto::Role;
use stacktop_proto::v1::{FleetUpdate, NodeState, TierState};

use crate::event::Event;
use crate::history::{History, HistoryState};
use crate::model::{ConnState, Model, NodeKey, SourceId};

/// Rows the screen chrome takes around the node list (two header lines,
/// the column heading, the footer).
const LIST_CHROME_ROWS: u16 = 4;

/// Which screen is in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// All nodes by tier.
    Fleet,
    /// One node.
    Detail(NodeKey),
}

/// One row of the fleet list: a node under one of its tiers. A node with
/// two roles has two entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tier heading the row sits under (`Role::Unspecified`: Unassigned).
    pub tier: Role,
    /// The collector that reported the node.
    pub source: SourceId,
    /// The node's name.
    pub name: String,
}

impl Entry {
    /// The node's key in the model.
    pub fn key(&self) -> NodeKey {
        NodeKey::new(self.source, self.name.as_str())
    }

    fn is(&self, tier: Role, key: &NodeKey) -> bool {
        self.tier == tier && self.source == key.source && self.name == key.name
    }
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
    /// A collector sent a snapshot or a delta.
    Update {
        /// The collector.
        source: SourceId,
        /// What it sent.
        update: Box<FleetUpdate>,
    },
    /// The connection to a collector changed.
    Connection {
        /// The collector.
        source: SourceId,
        /// Where it stands now.
        state: ConnState,
    },
    /// A node's full state (Fleet.Node) arrived for its detail screen (or
    /// failed).
    Node {
        /// The node.
        node: NodeKey,
        /// Its state, or why fetching failed.
        result: Result<Box<NodeState>, String>,
    },
    /// History for a node's charts arrived (or failed).
    History {
        /// The node the history belongs to.
        node: NodeKey,
        /// The charts' data, or why fetching failed.
        result: Result<History, String>,
    },
    /// The embedded collector or agent stopped.
    Failed {
        /// Which part: `collector` or `agent`.
        what: &'static str,
        /// Why.
        error: String,
    },
}

impl Action {
    /// An update from the primary collector.
    pub fn update(update: FleetUpdate) -> Self {
        Action::Update {
            source: SourceId::PRIMARY,
            update: Box::new(update),
        }
    }

    /// The primary collector's connection changed.
    pub fn connection(state: ConnState) -> Self {
        Action::Connection {
            source: SourceId::PRIMARY,
            state,
        }
    }
}

/// The dashboard's whole state. Rendering reads it and never changes it.
#[derive(Debug, Clone)]
pub struct App {
    /// The fleet as reported, with the connections and the detail data.
    pub model: Model,
    /// The fleet list's rows, rebuilt whenever the fleet changes.
    pub entries: Vec<Entry>,
    /// Index into `entries` of the highlighted row.
    pub selected: usize,
    /// The row the user last chose (tier, node): the selection returns to
    /// it when a node vanishes and comes back (e.g. a collector restart).
    pub chosen: Option<(Role, NodeKey)>,
    /// First list line shown (the list scrolls when it is taller than the
    /// screen).
    pub scroll: usize,
    /// The screen in front.
    pub screen: Screen,
    /// Whether the key help is shown over the screen.
    pub help: bool,
    /// The current time (Unix ms), moved on by ticks so rendering never
    /// reads a clock.
    pub now_ms: i64,
    /// Terminal size, for paging and scrolling.
    pub size: (u16, u16),
    /// Set by [`Action::Quit`]; the event loop ends.
    pub should_quit: bool,
}

impl App {
    /// An empty dashboard for `collector_url` at time `now_ms`.
    pub fn new(collector_url: impl Into<String>, now_ms: i64) -> Self {
        Self {
            model: Model::new(collector_url),
            entries: Vec::new(),
            selected: 0,
            chosen: None,
            scroll: 0,
            screen: Screen::Fleet,
            help: false,
            now_ms,
            size: (80, 24),
            should_quit: false,
        }
    }

    /// The node the detail screen shows, if it is open.
    pub fn detail_node(&self) -> Option<&NodeKey> {
        match &self.screen {
            Screen::Detail(key) => Some(key),
            Screen::Fleet => None,
        }
    }

    /// Node `key` in the current fleet.
    pub fn node(&self, key: &NodeKey) -> Option<&NodeState> {
        self.model.node(key)
    }

    /// The primary collector's view of tier `role`, if it reported one.
    pub fn tier(&self, role: Role) -> Option<&TierState> {
        self.model.tier(SourceId::PRIMARY, role)
    }

    /// The open detail screen's charts (loading while none is open).
    pub fn history(&self) -> &HistoryState {
        const LOADING: &HistoryState = &HistoryState::Loading;
        self.model.detail().map_or(LOADING, |d| &d.history)
    }

    /// The highlighted entry, if the list is not empty.
    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// The primary collector's connection.
    pub fn connection(&self) -> &ConnState {
        &self.model.primary().connection
    }

    /// Whether the primary collector is currently connected.
    pub fn is_connected(&self) -> bool {
        *self.connection() == ConnState::Connected
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
            Event::Update { source, update } => Some(Action::Update { source, update }),
            Event::Connection { source, state } => Some(Action::Connection { source, state }),
            Event::Node { node, result } => Some(Action::Node { node, result }),
            Event::History { node, result } => Some(Action::History { node, result }),
            Event::Failed { what, error } => Some(Action::Failed { what, error }),
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
            Action::Back => {
                self.screen = Screen::Fleet;
                self.model.close_detail();
            }
            Action::ShowHelp => self.help = true,
            Action::CloseHelp => self.help = false,
            Action::Tick(now) => self.now_ms = now,
            Action::Resize { width, height } => {
                self.size = (width, height);
                self.select(self.selected);
            }
            Action::Update { source, update } => self.apply(source, *update),
            Action::Connection { source, state } => self.model.set_connection(source, state),
            Action::Node { node, result } => self.model.node_arrived(&node, result.map(|n| *n)),
            Action::History { node, result } => self.model.history_arrived(&node, result),
            Action::Failed { what, error } => self.model.failed(what, &error),
        }
    }

    fn page(&self) -> usize {
        self.list_rows().saturating_sub(1).max(1)
    }

    /// Selects entry `index` on the user's behalf and remembers it.
    fn choose(&mut self, index: usize) {
        self.select(index);
        self.chosen = self.selected_entry().map(|e| (e.tier, e.key()));
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
        if let Some(key) = self.selected_entry().map(Entry::key) {
            self.model.open_detail(key.clone());
            self.screen = Screen::Detail(key);
        }
    }

    /// Hands an update to the model, then rebuilds the rows and keeps the
    /// selection on the node it was on.
    fn apply(&mut self, source: SourceId, update: FleetUpdate) {
        let previous = self
            .chosen
            .clone()
            .or_else(|| self.selected_entry().map(|e| (e.tier, e.key())));
        if let Err(err) = self.model.apply(source, update, self.now_ms) {
            tracing::warn!(cause = %err, ?source, "fleet update not fully applied");
        }
        self.entries = entries(&self.model);
        let index = previous
            .and_then(|(tier, key)| self.entries.iter().position(|e| e.is(tier, &key)))
            .unwrap_or(self.selected);
        self.select(index);
    }
}

/// The fleet list's rows: the model's tier groups, flattened.
fn entries(model: &Model) -> Vec<Entry> {
    model
        .tier_groups()
        .into_iter()
        .flat_map(|(tier, keys)| {
            keys.into_iter().map(move |key| Entry {
                tier,
                source: key.source,
                name: key.name.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Health;
    use stacktop_proto::v1::{FleetDelta, FleetSnapshot, FleetTotals, NodeChange, fleet_update};

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
        app.update(Action::connection(ConnState::Connected));
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes,
                ..Default::default()
            })),
        }));
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
        assert_eq!(*app.history(), HistoryState::Loading);
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
    fn the_detail_data_follows_the_open_screen() {
        let mut app = three();
        app.update(Action::Open); // lb1
        app.update(Action::Node {
            node: "lb1".into(),
            result: Ok(Box::new(node("lb1", &[Role::Lb]))),
        });
        let detail = app.model.detail().unwrap();
        assert_eq!(detail.key, NodeKey::from("lb1"));
        assert_eq!(detail.node.as_ref().unwrap().name, "lb1");
        app.update(Action::Back);
        assert!(
            app.model.detail().is_none(),
            "nothing kept for a closed screen"
        );
        assert_eq!(*app.history(), HistoryState::Loading);
    }

    #[test]
    fn an_embedded_failure_is_kept_for_the_screen() {
        let mut app = three();
        app.update(Action::Failed {
            what: "collector",
            error: "address in use".into(),
        });
        assert_eq!(
            app.model.failures(),
            ["the embedded collector stopped: address in use"]
        );
    }

    #[test]
    fn history_for_another_node_is_ignored() {
        let mut app = three();
        app.update(Action::Open);
        app.update(Action::History {
            node: "db1".into(),
            result: Ok(History::default()),
        });
        assert_eq!(*app.history(), HistoryState::Loading);
        app.update(Action::History {
            node: "lb1".into(),
            result: Ok(History::default()),
        });
        assert_eq!(*app.history(), HistoryState::Loaded(History::default()));
        app.update(Action::History {
            node: "lb1".into(),
            result: Err("boom".into()),
        });
        assert!(matches!(app.history(), HistoryState::Loaded(_)));
    }

    #[test]
    fn deltas_upsert_remove_and_replace_tiers() {
        let mut app = three();
        app.update(Action::End); // db1
        let mut changed = node("lb1", &[Role::Lb]);
        changed.health = Health::Crit as i32;
        let full = |node: NodeState| NodeChange {
            name: node.name.clone(),
            full: Some(node),
            ..Default::default()
        };
        let delta = FleetDelta {
            changed: vec![full(changed), full(node("app2", &[Role::App]))],
            removed: vec!["web1".into()],
            totals: Some(FleetTotals {
                tiers: vec![TierState {
                    role: Role::Lb as i32,
                    healthy: 0,
                    total: 1,
                    spof: true,
                    health: Health::Down as i32,
                    ..Default::default()
                }],
                site: Health::Down as i32,
                timestamp_ms: 42,
                ..Default::default()
            }),
            ..Default::default()
        };
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Delta(delta)),
        }));
        let names: Vec<_> = app.model.nodes().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["app2", "db1", "lb1"]);
        assert_eq!(app.node(&"lb1".into()).unwrap().health(), Health::Crit);
        assert_eq!(app.model.totals().unwrap().site(), Health::Down);
        assert!(app.tier(Role::Lb).unwrap().spof);
        // The selection follows its node through the reshuffle.
        assert_eq!(app.selected_entry().unwrap().name, "db1");
    }

    #[test]
    fn the_chosen_node_gets_the_selection_back_when_it_returns() {
        let mut app = three();
        app.update(Action::End); // db1
        let only = |nodes| {
            Action::update(FleetUpdate {
                update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                    nodes,
                    ..Default::default()
                })),
            })
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
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes: vec![node("solo", &[])],
                ..Default::default()
            })),
        }));
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
