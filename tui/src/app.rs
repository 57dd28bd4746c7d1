//! The dashboard's screen state and the only place it changes.
//!
//! # Layout
//!
//! - [`App`] holds what the user sees of the fleet: the open screen, the
//!   selection, scrolling, the key help, the clock and the terminal size;
//!   and a [`Model`], the fleet as reported, which it changes only through
//!   the model's own methods.
//! - The alerts view has its own rows ([`AlertRow`], in the order of
//!   [`alerts::ordered`]) and selection, which follows an alert by id.
//! - A [`Prompt`] asks before a write call (acknowledge, silence,
//!   maintenance): a duration where one is needed, then yes or no with
//!   exactly what will be done. Confirming yields [`Action::Send`], which
//!   the event loop hands to the operator task; its answer comes back as
//!   [`Action::OperatorDone`] and shows in the footer ([`Notice`]).
//! - [`Action`] is everything that can happen to it; [`App::update`] applies
//!   one. Keys become actions in [`App::action_for_key`], one small `match`
//!   per screen (and one for an open prompt).
//!
//! Nothing here computes health or decides alerts: node, tier and site
//! health and the alert list are shown as the collector decided them.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use stacktop_proto::Role;
use stacktop_proto::v1::{Alert, FleetUpdate, Matcher, NodeState, TierState};

use crate::alerts::{self, AlertRow};
use crate::event::Event;
use crate::history::{DEFAULT_ZOOM, History, HistoryState, ZOOMS};
use crate::model::{ConnState, Model, NodeKey, SourceId};
use crate::operator::{self, OperatorCall, Target, Until};
pub use crate::sort::SortColumn;

/// Header lines above every screen.
pub const HEADER_ROWS: u16 = 2;
/// Rows the screen chrome takes around the node list (two header lines,
/// the column heading, the footer).
const LIST_CHROME_ROWS: u16 = 4;
/// Rows of the selected alert's box under the alert list.
const ALERT_PANE_ROWS: u16 = 6;
/// Below this terminal height the alerts view has no box for the selected
/// alert: the list gets every row.
const ALERT_PANE_MIN_HEIGHT: u16 = 16;
/// How long a notice (the answer to a write call) stays in the footer.
pub const NOTICE_MS: i64 = 15_000;
/// The longest filter the nodes view takes as typed.
const MAX_FILTER: usize = 64;
/// The longest duration a prompt takes as typed.
const MAX_INPUT: usize = 16;

/// Which screen is in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// The stack along the request path, one box per tier (the default).
    Topology,
    /// The nodes view: every node in a table (sorted, filtered, or grouped
    /// by tier).
    Fleet,
    /// One node.
    Detail(NodeKey),
    /// The active alerts.
    Alerts,
}

/// How the nodes view lists the fleet.
#[derive(Debug, Clone, Default)]
pub struct NodesView {
    /// The column rows are sorted by.
    pub sort: SortColumn,
    /// Sorted the other way (`S`).
    pub reverse: bool,
    /// Grouped by tier (a node under each of its tiers, with its health as
    /// that role) instead of one row per node.
    pub grouped: bool,
    /// The filter as typed (empty: none).
    pub filter: String,
    /// The filter compiled (`None`: empty or not a valid expression).
    pub regex: Option<regex::Regex>,
    /// Why the typed filter is not a regular expression.
    pub filter_error: Option<String>,
    /// The filter line has the keyboard.
    pub editing: bool,
}

impl NodesView {
    /// Whether `node` passes the filter: its name, a role, or a label
    /// (`key=value`) matches (case-insensitive).
    pub fn matches(&self, node: &NodeState) -> bool {
        let Some(re) = &self.regex else { return true };
        re.is_match(&node.name)
            || node.roles().any(|r| re.is_match(r.name()))
            || node
                .labels
                .iter()
                .any(|l| re.is_match(&format!("{}={}", l.key, l.value)))
    }

    fn set_filter(&mut self, text: String) {
        self.filter_error = None;
        self.regex = None;
        if !text.is_empty() {
            match regex::RegexBuilder::new(&text)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => self.regex = Some(re),
                Err(err) => {
                    self.filter_error = Some(err.to_string().lines().last().unwrap_or("").into())
                }
            }
        }
        self.filter = text;
    }
}

/// A write call that still needs to know how long.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// A silence of alerts matching these.
    Silence {
        /// What the silence matches.
        matchers: Vec<Matcher>,
    },
    /// Maintenance of a node or a tier.
    Maintenance {
        /// The node or tier.
        target: Target,
    },
}

/// A question the dashboard asks before a write call. While one is open,
/// keys go to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// How long, typed (prefilled with the default): a duration such as
    /// `30m`, or, for a silence, until the alerts resolve.
    Duration {
        /// The call being prepared.
        asked: Asked,
        /// The text typed so far.
        input: String,
        /// A silence until the alerts it matches resolve (Tab toggles).
        until_resolved: bool,
        /// Why the text typed is not a duration, after Enter.
        error: Option<String>,
    },
    /// Yes or no before `call` is sent.
    Confirm {
        /// The call, exactly as it will be made.
        call: OperatorCall,
        /// What it is about (e.g. the alert), shown above the question.
        context: Vec<String>,
        /// The collectors it goes to: an acknowledgement to those that
        /// list the alert, a silence or maintenance to every one.
        to: Vec<SourceId>,
    },
}

/// How a [`Notice`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A call is on its way.
    Pending,
    /// Done.
    Ok,
    /// Refused, failed, or not possible.
    Error,
}

/// One line for the footer: what happened to the last write call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What to say.
    pub text: String,
    /// How it went.
    pub kind: NoticeKind,
    /// When it was said (the app's clock, Unix ms).
    pub at_ms: i64,
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

    /// Whether this is node `key`'s row under `tier` (by name: the merged
    /// fleet has each name once, whichever collector's report it shows).
    fn is(&self, tier: Role, key: &NodeKey) -> bool {
        self.tier == tier && self.name == key.name
    }
}

/// Everything that can change the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave the dashboard.
    Quit,
    /// Ctrl-C: leave the dashboard as interrupted (the shell sees 130).
    Interrupt,
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
    /// Go back from the detail screen or the alerts view to the list
    /// screen it was opened from (topology or nodes).
    Back,
    /// Charts over a shorter window (`+`).
    ZoomIn,
    /// Charts over a longer window (`-`).
    ZoomOut,
    /// Stop or resume updating the detail screen's charts and panels (`f`).
    Freeze,
    /// The detail screen's next chart page, or the panels again (`c`).
    NextCharts,
    /// Scroll the detail screen's panels down (`J`) or up (`K`) a line.
    ScrollPanels(i8),
    /// A left click on terminal row `row`.
    Click {
        /// The terminal row clicked (0: the top line).
        row: u16,
    },
    /// Sort the nodes view by the next column (`s`).
    SortNext,
    /// Reverse the nodes view's order (`S`).
    SortReverse,
    /// Sort the nodes view by this column, or the other way round when it
    /// is sorted by it already (Shift+the column's letter).
    SortBy(SortColumn),
    /// Group the nodes view by tier, or not (`t`).
    ToggleGroups,
    /// Start typing the nodes view's filter (`/`).
    FilterStart,
    /// A character typed into the filter.
    FilterInput(char),
    /// Delete the filter's last character.
    FilterBackspace,
    /// Stop typing, keep the filter (Enter).
    FilterDone,
    /// Drop the filter (Esc).
    FilterClear,
    /// Show view `n` (1 topology, 2 nodes, 3 detail, 4 alerts).
    View(u8),
    /// The next view (Tab).
    NextView,
    /// The previous view (Shift-Tab).
    PrevView,
    /// Open the alerts view.
    ShowAlerts,
    /// Ask to acknowledge the selected alert.
    Acknowledge,
    /// Ask to silence the selected alert's node and rule.
    Silence,
    /// Ask to put the selected node (or the selected alert's node or tier)
    /// in maintenance.
    Maintenance,
    /// A character typed into the open prompt.
    PromptInput(char),
    /// Delete the last character of the open prompt's input.
    PromptBackspace,
    /// Toggle "until the alerts resolve" in a silence's duration prompt.
    PromptToggle,
    /// Take the open prompt's input and go on to the confirmation.
    PromptSubmit,
    /// Close the open prompt without doing anything.
    PromptCancel,
    /// The user confirmed: make this call (the event loop hands it to the
    /// operator task).
    Send {
        /// The call.
        call: OperatorCall,
        /// The collectors to make it at.
        to: Vec<SourceId>,
    },
    /// A write call came back: what was done, or why not.
    OperatorDone(Result<String, String>),
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
        result: Result<Box<History>, String>,
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
    /// The nodes view's rows, rebuilt whenever the fleet or the view's
    /// order, filter or grouping changes.
    pub entries: Vec<Entry>,
    /// How the nodes view sorts, filters and groups.
    pub nodes_view: NodesView,
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
    /// The list screen (topology or nodes) Esc goes back to.
    pub list_screen: Screen,
    /// The node highlighted on the topology screen (none until the user
    /// moves there).
    pub topo_selected: Option<NodeKey>,
    /// Whether the key help is shown over the screen.
    pub help: bool,
    /// The current time (Unix ms), moved on by ticks so rendering never
    /// reads a clock.
    pub now_ms: i64,
    /// Terminal size, for paging and scrolling.
    pub size: (u16, u16),
    /// Set by [`Action::Quit`] and [`Action::Interrupt`]; the event loop
    /// ends.
    pub should_quit: bool,
    /// Set by [`Action::Interrupt`]: the user pressed Ctrl-C.
    pub interrupted: bool,
    /// The alerts view's rows, rebuilt whenever the alerts change.
    pub alert_rows: Vec<AlertRow>,
    /// Index into `alert_rows` of the highlighted alert.
    pub alert_selected: usize,
    /// The id of the alert the user last chose: the selection follows it
    /// when the list changes.
    pub alert_chosen: Option<String>,
    /// First alert row shown.
    pub alert_scroll: usize,
    /// The open question before a write call, if any.
    pub prompt: Option<Prompt>,
    /// What happened to the last write call.
    pub notice: Option<Notice>,
    /// Who write calls are made as (`$USER@hostname`; empty: not said).
    pub identity: String,
    /// How the screen is coloured.
    pub theme: crate::config::Theme,
    /// The detail charts' zoom level, an index into [`ZOOMS`].
    pub zoom: usize,
    /// The detail screen ignores new Fleet.Node and Fleet.History answers.
    pub frozen: bool,
    /// When `f` froze the detail screen (Unix ms): the charts' "now" while
    /// frozen, so the picture stands still.
    pub frozen_at_ms: i64,
    /// How many times `c` was pressed on this detail screen. The screen
    /// takes it modulo what the terminal's size allows: the panels (with
    /// the charts that fit below them), then each page of charts alone.
    pub chart_step: usize,
    /// How many lines the detail screen's panels (checks, backends) are
    /// scrolled down.
    pub panel_scroll: u16,
}

impl App {
    /// An empty dashboard for `collector_url` at time `now_ms`.
    pub fn new(collector_url: impl Into<String>, now_ms: i64) -> Self {
        Self::watching(vec![collector_url.into()], now_ms)
    }

    /// An empty dashboard merging the collectors at `urls` (see
    /// [`crate::model`]) at time `now_ms`.
    pub fn watching(urls: Vec<String>, now_ms: i64) -> Self {
        Self {
            model: Model::watching(urls),
            entries: Vec::new(),
            nodes_view: NodesView::default(),
            selected: 0,
            chosen: None,
            scroll: 0,
            screen: Screen::Topology,
            list_screen: Screen::Topology,
            topo_selected: None,
            help: false,
            now_ms,
            size: (80, 24),
            should_quit: false,
            interrupted: false,
            alert_rows: Vec::new(),
            alert_selected: 0,
            alert_chosen: None,
            alert_scroll: 0,
            prompt: None,
            notice: None,
            identity: String::new(),
            theme: Default::default(),
            zoom: DEFAULT_ZOOM,
            frozen: false,
            frozen_at_ms: 0,
            chart_step: 0,
            panel_scroll: 0,
        }
    }

    /// The same app, making write calls as `identity` (`user@host`).
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// The time the detail charts end at: now, or when they were frozen.
    pub fn chart_now_ms(&self) -> i64 {
        if self.frozen {
            self.frozen_at_ms
        } else {
            self.now_ms
        }
    }

    /// The detail charts' window at the current zoom.
    pub fn chart_window(&self) -> std::time::Duration {
        ZOOMS[self.zoom.min(ZOOMS.len() - 1)]
    }

    /// How the dashboard ends, once the user asked it to.
    pub fn exit(&self) -> Option<crate::Exit> {
        match (self.should_quit, self.interrupted) {
            (false, _) => None,
            (true, false) => Some(crate::Exit::Quit),
            (true, true) => Some(crate::Exit::Interrupted),
        }
    }

    /// The node the detail screen shows, if it is open.
    pub fn detail_node(&self) -> Option<&NodeKey> {
        match &self.screen {
            Screen::Detail(key) => Some(key),
            Screen::Topology | Screen::Fleet | Screen::Alerts => None,
        }
    }

    /// The alert of alerts-view row `row`.
    pub fn alert_at(&self, row: usize) -> Option<&Alert> {
        let row = self.alert_rows.get(row)?;
        self.model.alerts().get(row.index)
    }

    /// The highlighted alert of the alerts view.
    pub fn selected_alert(&self) -> Option<&Alert> {
        self.alert_at(self.alert_selected)
    }

    /// The collector that listed the highlighted alert.
    pub fn selected_alert_source(&self) -> SourceId {
        self.alert_rows
            .get(self.alert_selected)
            .map_or(SourceId::PRIMARY, |r| self.model.alert_source(r.index))
    }

    /// Rows of the alerts view's box for the selected alert (0: too short
    /// a terminal for one).
    pub fn alert_pane_rows(&self) -> u16 {
        if self.size.1 >= ALERT_PANE_MIN_HEIGHT {
            ALERT_PANE_ROWS
        } else {
            0
        }
    }

    /// How many alert rows fit on screen at the current size.
    pub fn alert_list_rows(&self) -> usize {
        self.size
            .1
            .saturating_sub(LIST_CHROME_ROWS + self.alert_pane_rows())
            .max(1) as usize
    }

    /// The notice to show at the app's clock: a call on its way, or an
    /// answer younger than [`NOTICE_MS`].
    pub fn visible_notice(&self) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|n| n.kind == NoticeKind::Pending || self.now_ms - n.at_ms < NOTICE_MS)
    }

    /// Node `key` in the current fleet.
    pub fn node(&self, key: &NodeKey) -> Option<&NodeState> {
        self.model.node(key)
    }

    /// The view of tier `role` to show ([`Model::shown_tier`]), if there
    /// is one.
    pub fn tier(&self, role: Role) -> Option<&TierState> {
        self.model.shown_tier(role)
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

    /// Whether a collector is connected: the screen is live (with one
    /// collector: whether it is connected).
    pub fn is_connected(&self) -> bool {
        self.model.any_live()
    }

    /// Whether collector `source` is connected (what it reports is live).
    pub fn is_live(&self, source: SourceId) -> bool {
        self.model.is_live(source)
    }

    /// Rows the nodes view's filter line takes (1 while a filter is typed
    /// or set).
    pub fn filter_rows(&self) -> u16 {
        u16::from(self.nodes_view.editing || !self.nodes_view.filter.is_empty())
    }

    /// How many list lines fit on screen at the current size.
    pub fn list_rows(&self) -> usize {
        self.size
            .1
            .saturating_sub(LIST_CHROME_ROWS + self.filter_rows())
            .max(1) as usize
    }

    /// The list line (counting tier headings) of entry `index`.
    pub fn entry_line(&self, index: usize) -> usize {
        let index = index.min(self.entries.len().saturating_sub(1));
        let headings = (0..=index).filter(|&i| self.is_first_in_tier(i)).count();
        index + headings
    }

    /// Whether entry `index` is the first under its tier heading.
    pub fn is_first_in_tier(&self, index: usize) -> bool {
        if !self.nodes_view.grouped {
            return false;
        }
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
            Event::Mouse(mouse) => self.action_for_mouse(mouse),
            Event::Resize(width, height) => Some(Action::Resize { width, height }),
            Event::Tick(now) => Some(Action::Tick(now)),
            Event::Update { source, update } => Some(Action::Update { source, update }),
            Event::Connection { source, state } => Some(Action::Connection { source, state }),
            Event::Node { node, result } => Some(Action::Node { node, result }),
            Event::History { node, result } => Some(Action::History { node, result }),
            Event::Failed { what, error } => Some(Action::Failed { what, error }),
            Event::Operator { result } => Some(Action::OperatorDone(result)),
        }
    }

    /// The action a click or wheel turn means: the wheel moves the
    /// selection (it scrolls the list with it), a left click on a row of
    /// the nodes or alerts list selects it.
    pub fn action_for_mouse(&self, mouse: MouseEvent) -> Option<Action> {
        if self.prompt.is_some() || self.help {
            return None;
        }
        let detail = matches!(self.screen, Screen::Detail(_));
        match mouse.kind {
            MouseEventKind::ScrollUp if detail => Some(Action::ScrollPanels(-1)),
            MouseEventKind::ScrollDown if detail => Some(Action::ScrollPanels(1)),
            MouseEventKind::ScrollUp => Some(Action::Up),
            MouseEventKind::ScrollDown => Some(Action::Down),
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click { row: mouse.row }),
            _ => None,
        }
    }

    /// The action a key press means on the current screen.
    pub fn action_for_key(&self, key: KeyEvent) -> Option<Action> {
        if key.kind != KeyEventKind::Press {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Interrupt);
        }
        if let Some(prompt) = &self.prompt {
            return Self::prompt_key(prompt, key.code);
        }
        if self.nodes_view.editing && self.screen == Screen::Fleet {
            return match key.code {
                KeyCode::Esc => Some(Action::FilterClear),
                KeyCode::Enter => Some(Action::FilterDone),
                KeyCode::Backspace => Some(Action::FilterBackspace),
                KeyCode::Char(c) => Some(Action::FilterInput(c)),
                _ => None,
            };
        }
        if self.help {
            return Some(Action::CloseHelp);
        }
        match key.code {
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Char('?') => return Some(Action::ShowHelp),
            KeyCode::Tab => return Some(Action::NextView),
            KeyCode::BackTab => return Some(Action::PrevView),
            KeyCode::Char(c @ '1'..='4') => return Some(Action::View(c as u8 - b'0')),
            _ => {}
        }
        match self.screen {
            Screen::Topology => Self::topology_key(key.code),
            Screen::Fleet => match key.code {
                KeyCode::Char('s') => Some(Action::SortNext),
                KeyCode::Char('S') => Some(Action::SortReverse),
                KeyCode::Char(c) if SortColumn::for_key(c).is_some() => {
                    SortColumn::for_key(c).map(Action::SortBy)
                }
                KeyCode::Char('t') => Some(Action::ToggleGroups),
                KeyCode::Char('/') => Some(Action::FilterStart),
                KeyCode::Esc if !self.nodes_view.filter.is_empty() => Some(Action::FilterClear),
                KeyCode::Esc | KeyCode::Backspace => Some(Action::View(1)),
                code => Self::fleet_key(code),
            },
            Screen::Detail(_) => Self::detail_key(key.code),
            Screen::Alerts => Self::alerts_key(key.code),
        }
    }

    /// Selection keys, shared by the fleet and the alerts view.
    fn move_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::Home),
            KeyCode::End | KeyCode::Char('G') => Some(Action::End),
            _ => None,
        }
    }

    fn topology_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Left | KeyCode::Char('h') => Some(Action::Up),
            KeyCode::Right | KeyCode::Char('l') => Some(Action::Down),
            _ => Self::fleet_key(code),
        }
    }

    fn fleet_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Enter => Some(Action::Open),
            KeyCode::Char('a') => Some(Action::ShowAlerts),
            KeyCode::Char('m') => Some(Action::Maintenance),
            _ => Self::move_key(code),
        }
    }

    fn detail_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Char('+' | '=') => Some(Action::ZoomIn),
            KeyCode::Char('-' | '_') => Some(Action::ZoomOut),
            KeyCode::Char('f') => Some(Action::Freeze),
            KeyCode::Char('c') => Some(Action::NextCharts),
            KeyCode::Char('J') | KeyCode::Down | KeyCode::Char('j') => {
                Some(Action::ScrollPanels(1))
            }
            KeyCode::Char('K') | KeyCode::Up | KeyCode::Char('k') => Some(Action::ScrollPanels(-1)),
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h') => {
                Some(Action::Back)
            }
            KeyCode::Char('a') => Some(Action::ShowAlerts),
            KeyCode::Char('m') => Some(Action::Maintenance),
            _ => None,
        }
    }

    fn alerts_key(code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Esc
            | KeyCode::Backspace
            | KeyCode::Left
            | KeyCode::Char('h')
            | KeyCode::Char('a') => Some(Action::Back),
            KeyCode::Enter => Some(Action::Open),
            KeyCode::Char('A') => Some(Action::Acknowledge),
            KeyCode::Char('s') => Some(Action::Silence),
            KeyCode::Char('m') => Some(Action::Maintenance),
            _ => Self::move_key(code),
        }
    }

    /// Keys while a prompt is open: they edit or answer it, nothing else.
    fn prompt_key(prompt: &Prompt, code: KeyCode) -> Option<Action> {
        match prompt {
            Prompt::Duration { .. } => match code {
                KeyCode::Esc => Some(Action::PromptCancel),
                KeyCode::Enter => Some(Action::PromptSubmit),
                KeyCode::Backspace => Some(Action::PromptBackspace),
                KeyCode::Tab => Some(Action::PromptToggle),
                KeyCode::Char(c) if c.is_ascii_alphanumeric() || c == ' ' => {
                    Some(Action::PromptInput(c))
                }
                _ => None,
            },
            Prompt::Confirm { call, to, .. } => match code {
                KeyCode::Char('y' | 'Y') => Some(Action::Send {
                    call: call.clone(),
                    to: to.clone(),
                }),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Action::PromptCancel),
                _ => None,
            },
        }
    }

    /// Applies one action. This is the only place the state changes.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Quit => self.should_quit = true,
            Action::Interrupt => {
                self.should_quit = true;
                self.interrupted = true;
            }
            Action::Up => self.move_by(|i, _| i.saturating_sub(1)),
            Action::Down => self.move_by(|i, _| i.saturating_add(1)),
            Action::PageUp => self.move_by(|i, page| i.saturating_sub(page)),
            Action::PageDown => self.move_by(|i, page| i.saturating_add(page)),
            Action::Home => self.move_by(|_, _| 0),
            Action::End => self.move_by(|_, _| usize::MAX),
            Action::Open if self.screen == Screen::Alerts => self.open_alert_node(),
            Action::Open if self.screen == Screen::Topology => {
                if let Some(key) = self.topo_selected.clone() {
                    self.open_detail(key);
                }
            }
            Action::Open => self.open_selected(),
            Action::Back => {
                self.screen = self.list_screen.clone();
                self.model.close_detail();
            }
            Action::View(n) => self.show_view(n),
            Action::Click { row } => self.click(row),
            Action::SortNext => self.reorder(|v| v.sort = v.sort.next()),
            Action::SortReverse => self.reorder(|v| v.reverse = !v.reverse),
            Action::SortBy(column) => self.reorder(|v| {
                v.reverse = v.sort == column && !v.reverse;
                v.sort = column;
            }),
            Action::ToggleGroups => self.reorder(|v| v.grouped = !v.grouped),
            Action::FilterStart => self.nodes_view.editing = true,
            Action::FilterInput(c) => self.reorder(|v| {
                let mut text = v.filter.clone();
                if text.chars().count() < MAX_FILTER {
                    text.push(c);
                }
                v.set_filter(text);
            }),
            Action::FilterBackspace => self.reorder(|v| {
                let mut text = v.filter.clone();
                text.pop();
                v.set_filter(text);
            }),
            Action::FilterDone => self.nodes_view.editing = false,
            Action::FilterClear => self.reorder(|v| {
                v.editing = false;
                v.set_filter(String::new());
            }),
            Action::NextView => self.show_view(self.view_number() % 4 + 1),
            Action::PrevView => self.show_view((self.view_number() + 2) % 4 + 1),
            Action::ShowAlerts => self.show_view(4),
            Action::Acknowledge => self.ask_ack(),
            Action::Silence => self.ask_silence(),
            Action::Maintenance => self.ask_maintenance(),
            Action::PromptInput(c) => self.edit_prompt(|input| {
                if input.chars().count() < MAX_INPUT {
                    input.push(c);
                }
            }),
            Action::PromptBackspace => self.edit_prompt(|input| {
                input.pop();
            }),
            Action::PromptToggle => {
                if let Some(Prompt::Duration {
                    asked: Asked::Silence { .. },
                    until_resolved,
                    error,
                    ..
                }) = &mut self.prompt
                {
                    *until_resolved = !*until_resolved;
                    *error = None;
                }
            }
            Action::PromptSubmit => self.submit_prompt(),
            Action::PromptCancel => self.prompt = None,
            Action::Send { call, .. } => {
                self.prompt = None;
                self.say(NoticeKind::Pending, format!("{}…", call.describe()));
            }
            Action::OperatorDone(Ok(text)) => self.say(NoticeKind::Ok, text),
            Action::OperatorDone(Err(text)) => self.say(NoticeKind::Error, text),
            Action::ShowHelp => self.help = true,
            Action::CloseHelp => self.help = false,
            Action::Tick(now) => self.now_ms = now,
            Action::Resize { width, height } => {
                self.size = (width, height);
                self.select(self.selected);
                self.select_alert(self.alert_selected);
            }
            Action::Update { source, update } => self.apply(source, *update),
            Action::Connection { source, state } => self.connection_changed(source, state),
            // Frozen: the answers are dropped, what is on screen stays.
            Action::Node { .. } | Action::History { .. } if self.frozen => {}
            Action::Node { node, result } => self.model.node_arrived(&node, result.map(|n| *n)),
            Action::History { node, result } => self.model.history_arrived(&node, result),
            Action::ZoomIn => self.zoom = self.zoom.saturating_sub(1),
            Action::ZoomOut => self.zoom = (self.zoom + 1).min(ZOOMS.len() - 1),
            Action::Freeze => {
                self.frozen = !self.frozen;
                self.frozen_at_ms = self.now_ms;
            }
            Action::NextCharts => self.chart_step = self.chart_step.wrapping_add(1),
            Action::ScrollPanels(by) => {
                self.panel_scroll = self.panel_scroll.saturating_add_signed(i16::from(by));
            }
            Action::Failed { what, error } => self.model.failed(what, &error),
        }
    }

    fn page(&self) -> usize {
        self.list_rows().saturating_sub(1).max(1)
    }

    /// Moves the selection of the list in front: `to(index, page)` gives
    /// the new index.
    fn move_by(&mut self, to: impl Fn(usize, usize) -> usize) {
        match self.screen {
            Screen::Alerts => {
                let page = self.alert_list_rows().saturating_sub(1).max(1);
                self.select_alert(to(self.alert_selected, page));
                self.alert_chosen = self.selected_alert().map(|a| a.id.clone());
            }
            Screen::Topology => self.move_in_topology(&to),
            Screen::Fleet | Screen::Detail(_) => self.choose(to(self.selected, self.page())),
        }
    }

    /// Selects the list row drawn on terminal row `row` (nodes and alerts
    /// views; the lists start under the header and their column heading).
    fn click(&mut self, row: u16) {
        let first = HEADER_ROWS + 1;
        match self.screen {
            Screen::Fleet => {
                let Some(line) = row.checked_sub(first + self.filter_rows()) else {
                    return;
                };
                let line = self.scroll + line as usize;
                // Line n of the list: an entry, or a tier heading (which
                // selects the entry under it).
                let index = (0..self.entries.len()).find(|&i| self.entry_line(i) >= line);
                if let Some(index) = index {
                    self.choose(index);
                }
            }
            Screen::Alerts => {
                let Some(line) = row.checked_sub(first) else {
                    return;
                };
                let index = self.alert_scroll + line as usize;
                if index < self.alert_rows.len() {
                    self.select_alert(index);
                    self.alert_chosen = self.selected_alert().map(|a| a.id.clone());
                }
            }
            Screen::Topology | Screen::Detail(_) => {}
        }
    }

    /// The number of the view in front (1 topology, 2 nodes, 3 detail,
    /// 4 alerts).
    pub fn view_number(&self) -> u8 {
        match self.screen {
            Screen::Topology => 1,
            Screen::Fleet => 2,
            Screen::Detail(_) => 3,
            Screen::Alerts => 4,
        }
    }

    /// Shows view `n`. The detail view shows the node selected on the list
    /// screen last in front; without one it is skipped (Tab goes on to the
    /// alerts, `3` says why not).
    fn show_view(&mut self, n: u8) {
        if matches!(self.screen, Screen::Topology | Screen::Fleet) {
            self.list_screen = self.screen.clone();
        }
        match n {
            1 => {
                self.model.close_detail();
                self.screen = Screen::Topology;
            }
            2 => {
                self.model.close_detail();
                self.screen = Screen::Fleet;
            }
            3 => {
                if matches!(self.screen, Screen::Detail(_)) {
                    return;
                }
                let key = match self.list_screen {
                    Screen::Topology => self
                        .topo_selected
                        .clone()
                        .or_else(|| self.selected_entry().map(Entry::key)),
                    _ => self.selected_entry().map(Entry::key),
                };
                match key {
                    Some(key) => self.open_detail(key),
                    None => self.say(NoticeKind::Error, "no node selected to show in detail"),
                }
            }
            _ => {
                self.model.close_detail();
                self.screen = Screen::Alerts;
                self.select_alert(self.alert_selected);
            }
        }
    }

    /// Moves the topology's selection through its nodes in drawing order.
    fn move_in_topology(&mut self, to: &dyn Fn(usize, usize) -> usize) {
        let topo = crate::topology::Topology::of(&self.model);
        let order: Vec<&NodeKey> = topo.order().collect();
        if order.is_empty() {
            return;
        }
        let index = match &self.topo_selected {
            Some(key) => match order.iter().position(|k| *k == key) {
                Some(i) => to(i, order.len()),
                None => 0,
            },
            // The first move selects the first node.
            None => 0,
        };
        self.topo_selected = Some(order[index.min(order.len() - 1)].clone());
    }

    /// Opens the detail screen of node `key`, remembering the list screen
    /// to go back to.
    fn open_detail(&mut self, key: NodeKey) {
        if matches!(self.screen, Screen::Topology | Screen::Fleet) {
            self.list_screen = self.screen.clone();
        }
        self.model.open_detail(key.clone());
        self.screen = Screen::Detail(key);
        self.frozen = false;
        self.chart_step = 0;
        self.panel_scroll = 0;
    }

    /// Selects alert row `index` (clamped) and scrolls it into view.
    fn select_alert(&mut self, index: usize) {
        self.alert_selected = index.min(self.alert_rows.len().saturating_sub(1));
        let rows = self.alert_list_rows();
        if self.alert_selected < self.alert_scroll {
            self.alert_scroll = self.alert_selected;
        } else if self.alert_selected >= self.alert_scroll + rows {
            self.alert_scroll = self.alert_selected + 1 - rows;
        }
        // Never scrolled past the end when the list shrinks.
        let max_scroll = self.alert_rows.len().saturating_sub(rows);
        self.alert_scroll = self.alert_scroll.min(max_scroll);
    }

    /// Opens the detail screen of the selected alert's node.
    fn open_alert_node(&mut self) {
        let Some(alert) = self.selected_alert() else {
            return;
        };
        let key = self.model.key_of(&alert.node).cloned();
        let Some(key) = key.filter(|_| !alert.node.is_empty()) else {
            let what = alerts::target(alert);
            self.say(
                NoticeKind::Error,
                format!("{what} has no node to show in detail"),
            );
            return;
        };
        self.open_detail(key);
    }

    fn say(&mut self, kind: NoticeKind, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            kind,
            at_ms: self.now_ms,
        });
    }

    /// A prompt to acknowledge the selected alert (alerts view only).
    fn ask_ack(&mut self) {
        if self.screen != Screen::Alerts {
            return;
        }
        let Some(alert) = self.selected_alert() else {
            self.say(NoticeKind::Error, "no alert selected");
            return;
        };
        let mut context = vec![self.alert_line(alert)];
        if alert.acknowledged {
            let by = if alert.acknowledged_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", alert.acknowledged_by)
            };
            context.push(format!("(already acknowledged{by})"));
        }
        let call = OperatorCall::Ack {
            alert_id: alert.id.clone(),
            comment: String::new(),
            by: self.identity.clone(),
        };
        let to = self.model.alert_owners(&alert.id);
        self.prompt = Some(Prompt::Confirm { call, context, to });
    }

    /// `✖ critical firing 3m12s: web2 check-failed`, for prompts (ages on
    /// the clock of the collector of the selected alert).
    fn alert_line(&self, alert: &Alert) -> String {
        let clock = self
            .model
            .clock_ms(self.selected_alert_source(), self.now_ms);
        format!(
            "{} {} {} {}: {} {}",
            alerts::severity_symbol(alert.severity()),
            alerts::severity_word(alert.severity()),
            alerts::state_word(alert.state()),
            alerts::age(alert, clock),
            alerts::target(alert),
            alert.rule,
        )
    }

    /// A prompt for how long to silence the selected alert's node and rule
    /// (alerts view only).
    fn ask_silence(&mut self) {
        if self.screen != Screen::Alerts {
            return;
        }
        let Some(alert) = self.selected_alert() else {
            self.say(NoticeKind::Error, "no alert selected");
            return;
        };
        let matcher = |name: &str, value: &str| Matcher {
            name: name.to_string(),
            value: value.to_string(),
        };
        let mut matchers = Vec::new();
        if alert.node.is_empty() {
            // A tier or site alert: its own labels say which.
            matchers.extend(
                alert
                    .labels
                    .iter()
                    .filter(|l| l.key == "tier")
                    .map(|l| matcher(&l.key, &l.value)),
            );
        } else {
            matchers.push(matcher("node", &alert.node));
        }
        matchers.push(matcher("rule", &alert.rule));
        self.prompt = Some(Prompt::Duration {
            asked: Asked::Silence { matchers },
            input: operator::duration_text(operator::DEFAULT_SILENCE),
            until_resolved: false,
            error: None,
        });
    }

    /// A prompt for how long to put the selected node in maintenance: the
    /// fleet's selected node, the detail screen's node, or the selected
    /// alert's node (its tier for a tier alert).
    fn ask_maintenance(&mut self) {
        let target = match &self.screen {
            Screen::Topology => self
                .topo_selected
                .as_ref()
                .map(|k| Target::Node(k.name.clone())),
            Screen::Fleet => self.selected_entry().map(|e| Target::Node(e.name.clone())),
            Screen::Detail(key) => Some(Target::Node(key.name.clone())),
            Screen::Alerts => self.selected_alert().and_then(|a| {
                if !a.node.is_empty() {
                    Some(Target::Node(a.node.clone()))
                } else if a.tier() != Role::Unspecified {
                    Some(Target::Tier(a.tier()))
                } else {
                    None
                }
            }),
        };
        let Some(target) = target else {
            self.say(NoticeKind::Error, "no node selected for maintenance");
            return;
        };
        self.prompt = Some(Prompt::Duration {
            asked: Asked::Maintenance { target },
            input: operator::duration_text(operator::DEFAULT_MAINTENANCE),
            until_resolved: false,
            error: None,
        });
    }

    /// Edits the open duration prompt's input.
    fn edit_prompt(&mut self, edit: impl FnOnce(&mut String)) {
        if let Some(Prompt::Duration { input, error, .. }) = &mut self.prompt {
            edit(input);
            *error = None;
        }
    }

    /// Enter on a duration prompt: on to the confirmation when the input
    /// is a duration (or the silence lasts until resolved), else says why
    /// not and stays.
    fn submit_prompt(&mut self) {
        let Some(Prompt::Duration {
            asked,
            input,
            until_resolved,
            error,
        }) = &mut self.prompt
        else {
            return;
        };
        let duration = if *until_resolved && matches!(asked, Asked::Silence { .. }) {
            None
        } else {
            match operator::parse_duration(input) {
                Ok(d) => Some(d),
                Err(err) => {
                    *error = Some(err.to_string());
                    return;
                }
            }
        };
        let by = self.identity.clone();
        let call = match (asked.clone(), duration) {
            (Asked::Silence { matchers }, d) => OperatorCall::Silence {
                matchers,
                until: d.map_or(Until::Resolved, Until::For),
                comment: String::new(),
                by,
            },
            (Asked::Maintenance { target }, Some(duration)) => OperatorCall::StartMaintenance {
                target,
                duration,
                comment: String::new(),
                by,
            },
            (Asked::Maintenance { .. }, None) => return,
        };
        let context = match (&self.screen, self.selected_alert()) {
            (Screen::Alerts, Some(alert)) => vec![self.alert_line(alert)],
            _ => Vec::new(),
        };
        // Each collector holds its own silences and maintenance windows.
        let to = (0..self.model.sources().len())
            .map(|i| SourceId(i as u16))
            .collect();
        self.prompt = Some(Prompt::Confirm { call, context, to });
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
            self.open_detail(key);
        }
    }

    /// Changes how the nodes view lists the fleet, rebuilds its rows and
    /// keeps the selection on the node it was on.
    fn reorder(&mut self, change: impl FnOnce(&mut NodesView)) {
        let previous = self.selected_entry().map(Entry::key);
        change(&mut self.nodes_view);
        self.entries = entries(&self.model, &self.nodes_view);
        let index = previous
            .and_then(|key| self.entries.iter().position(|e| e.key() == key))
            .unwrap_or(0);
        self.scroll = 0;
        self.choose(index);
    }

    /// Hands an update to the model, then rebuilds the rows and keeps the
    /// selection on the node it was on.
    fn apply(&mut self, source: SourceId, update: FleetUpdate) {
        if let Err(err) = self.model.apply(source, update, self.now_ms) {
            tracing::warn!(cause = %err, ?source, "fleet update not fully applied");
        }
        self.refresh();
    }

    /// A collector's connection changed: what is merged may come from
    /// another collector now (see [`crate::model`]).
    fn connection_changed(&mut self, source: SourceId, state: ConnState) {
        self.model.set_connection(source, state);
        self.refresh();
    }

    /// Follows the nodes on screen by name to the collector whose report
    /// the merged fleet shows now.
    fn follow_sources(&mut self) {
        let current = |key: &NodeKey| self.model.key_of(&key.name).cloned();
        if let Screen::Detail(key) = &self.screen
            && let Some(now) = current(key)
        {
            self.screen = Screen::Detail(now);
        }
        if let Some(now) = self.topo_selected.as_ref().and_then(current) {
            self.topo_selected = Some(now);
        }
        if let Some((tier, now)) = self
            .chosen
            .as_ref()
            .and_then(|(tier, key)| Some((*tier, current(key)?)))
        {
            self.chosen = Some((tier, now));
        }
    }

    /// Rebuilds the rows of the nodes and alerts views after the model
    /// changed, keeping each selection on what it was on.
    fn refresh(&mut self) {
        self.follow_sources();
        let previous = self
            .chosen
            .clone()
            .or_else(|| self.selected_entry().map(|e| (e.tier, e.key())));
        self.entries = entries(&self.model, &self.nodes_view);
        let index = previous
            .and_then(|(tier, key)| self.entries.iter().position(|e| e.is(tier, &key)))
            .unwrap_or(self.selected);
        self.select(index);
        let previous = self
            .alert_chosen
            .clone()
            .or_else(|| self.selected_alert().map(|a| a.id.clone()));
        let sources: Vec<u16> = (0..self.model.alerts().len())
            .map(|i| self.model.alert_source(i).0)
            .collect();
        self.alert_rows = alerts::ordered_from(self.model.alerts(), &sources);
        let alerts = self.model.alerts();
        let index = previous
            .and_then(|id| {
                self.alert_rows
                    .iter()
                    .position(|r| alerts[r.index].id == id)
            })
            .unwrap_or(self.alert_selected);
        self.select_alert(index);
    }
}

/// The nodes view's rows: grouped, the model's tier groups (each sorted);
/// else one row per node under its first tier; filtered either way.
fn entries(model: &Model, view: &NodesView) -> Vec<Entry> {
    let mut rows: Vec<Entry> = if view.grouped {
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
    } else {
        model
            .nodes()
            .map(|(key, node)| Entry {
                tier: node
                    .roles()
                    .find(|r| stacktop_proto::ROLES.contains(r))
                    .unwrap_or(Role::Unspecified),
                source: key.source,
                name: key.name.clone(),
            })
            .collect()
    };
    rows.retain(|e| model.node(&e.key()).is_some_and(|n| view.matches(n)));
    // Stable: equal keys keep the name order; grouped, the tier comes
    // first.
    rows.sort_by(|a, b| {
        let (Some(na), Some(nb)) = (model.node(&a.key()), model.node(&b.key())) else {
            return std::cmp::Ordering::Equal;
        };
        let tiers = if view.grouped {
            tier_rank(a.tier).cmp(&tier_rank(b.tier))
        } else {
            std::cmp::Ordering::Equal
        };
        tiers.then(crate::sort::compare(
            view.sort,
            view.reverse,
            (na, a.tier),
            (nb, b.tier),
        ))
    });
    rows
}

/// Where tier `role` comes in request-path order (Unassigned last).
fn tier_rank(role: Role) -> usize {
    stacktop_proto::ROLES
        .iter()
        .position(|r| *r == role)
        .unwrap_or(stacktop_proto::ROLES.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stacktop_proto::Health;
    use stacktop_proto::v1::{
        AlertState, FleetDelta, FleetSnapshot, FleetTotals, NodeChange, Severity, fleet_update,
    };

    fn node(name: &str, roles: &[Role]) -> NodeState {
        NodeState {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            health: Health::Ok as i32,
            ..Default::default()
        }
    }

    /// The app on the nodes view, grouped by tier.
    fn app_with(nodes: Vec<NodeState>) -> App {
        let mut app = App::new("http://test", 1_000);
        app.update(Action::connection(ConnState::Connected));
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes,
                ..Default::default()
            })),
        }));
        app.update(Action::View(2));
        app.update(Action::ToggleGroups);
        app.update(Action::Home);
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
        assert_eq!(app.action_for_key(ctrl_c), Some(Action::Interrupt));
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
    fn shift_letters_sort_by_their_column_and_again_reverse() {
        let cpu = |name: &str, ratio: f64| {
            let mut n = node(name, &[Role::Web]);
            n.summary = Some(stacktop_proto::v1::NodeSummary {
                cpu_usage_ratio: Some(ratio),
                ..Default::default()
            });
            n
        };
        let mut app = app_with(vec![cpu("a", 0.5), cpu("b", 0.9), cpu("c", 0.1)]);
        app.update(Action::ToggleGroups);
        let names =
            |app: &App| -> Vec<String> { app.entries.iter().map(|e| e.name.clone()).collect() };
        assert_eq!(names(&app), ["a", "b", "c"]);
        let shift = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT);
        let press_shift = |app: &mut App, c: char| {
            let action = app.action_for_key(shift(c));
            if let Some(action) = action.clone() {
                app.update(action);
            }
            action
        };
        assert_eq!(
            press_shift(&mut app, 'C'),
            Some(Action::SortBy(SortColumn::Cpu))
        );
        assert_eq!(names(&app), ["b", "a", "c"], "busiest first");
        assert!(!app.nodes_view.reverse);
        press_shift(&mut app, 'C');
        assert_eq!(names(&app), ["c", "a", "b"], "again: the other way");
        assert!(app.nodes_view.reverse);
        // Another column starts in its own first direction.
        press_shift(&mut app, 'N');
        assert_eq!(app.nodes_view.sort, SortColumn::Name);
        assert!(!app.nodes_view.reverse);
        assert_eq!(names(&app), ["a", "b", "c"]);
        // S still reverses, G still goes to the last row, s still cycles.
        assert_eq!(press_shift(&mut app, 'S'), Some(Action::SortReverse));
        assert_eq!(press_shift(&mut app, 'G'), Some(Action::End));
        assert_eq!(
            app.action_for_key(key(KeyCode::Char('s'))),
            Some(Action::SortNext)
        );
        // A letter of no column does nothing; on the topology nothing sorts.
        assert_eq!(press_shift(&mut app, 'Z'), None);
        app.update(Action::View(1));
        assert_eq!(app.action_for_key(shift('C')), None);
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
            result: Ok(Box::default()),
        });
        assert_eq!(*app.history(), HistoryState::Loading);
        app.update(Action::History {
            node: "lb1".into(),
            result: Ok(Box::default()),
        });
        assert_eq!(*app.history(), HistoryState::Loaded(Box::default()));
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

    fn alert(id: &str, node: &str, state: AlertState) -> Alert {
        Alert {
            id: id.into(),
            rule: "check-failed".into(),
            node: node.into(),
            severity: Severity::Critical as i32,
            state: state as i32,
            since_ms: 500,
            ..Default::default()
        }
    }

    /// `three()` with a firing alert on web1 and a pending one on lb1, as
    /// ann@ws1.
    fn with_alerts() -> App {
        let mut app = three().with_identity("ann@ws1");
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes: vec![
                    node("db1", &[Role::Db]),
                    node("lb1", &[Role::Lb]),
                    node("web1", &[Role::Web, Role::App]),
                ],
                alerts: vec![
                    alert("p1", "lb1", AlertState::Pending),
                    alert("f1", "web1", AlertState::Firing),
                ],
                ..Default::default()
            })),
        }));
        app
    }

    /// Presses `code` the way the event loop does: key -> action -> update.
    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        let action = app.action_for_key(key(code));
        if let Some(action) = action.clone() {
            app.update(action);
        }
        action
    }

    #[test]
    fn a_then_shift_a_then_y_acknowledges_the_selected_alert() {
        let mut app = with_alerts();
        assert_eq!(
            press(&mut app, KeyCode::Char('a')),
            Some(Action::ShowAlerts)
        );
        assert_eq!(app.screen, Screen::Alerts);
        // Firing first.
        assert_eq!(app.selected_alert().unwrap().id, "f1");
        press(&mut app, KeyCode::Char('j'));
        assert_eq!(app.selected_alert().unwrap().id, "p1");
        press(&mut app, KeyCode::Char('k'));
        press(&mut app, KeyCode::Char('A'));
        let expected = OperatorCall::Ack {
            alert_id: "f1".into(),
            comment: String::new(),
            by: "ann@ws1".into(),
        };
        match &app.prompt {
            Some(Prompt::Confirm { call, context, .. }) => {
                assert_eq!(*call, expected);
                assert!(context[0].contains("web1 check-failed"), "{context:?}");
            }
            other => panic!("no confirmation: {other:?}"),
        }
        // While the prompt is open, q does not quit and other keys do nothing.
        assert_eq!(app.action_for_key(key(KeyCode::Char('q'))), None);
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Action::Send {
                call: expected,
                to: vec![SourceId::PRIMARY]
            })
        );
        assert!(app.prompt.is_none());
        assert_eq!(app.visible_notice().unwrap().kind, NoticeKind::Pending);
        app.update(Action::OperatorDone(Ok("acknowledged alert f1".into())));
        let notice = app.visible_notice().unwrap();
        assert_eq!(
            (notice.kind, notice.text.as_str()),
            (NoticeKind::Ok, "acknowledged alert f1")
        );
        app.update(Action::Tick(app.now_ms + NOTICE_MS));
        assert!(app.visible_notice().is_none());
    }

    #[test]
    fn n_and_esc_cancel_without_a_call() {
        let mut app = with_alerts();
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Char('A'));
        assert_eq!(
            press(&mut app, KeyCode::Char('n')),
            Some(Action::PromptCancel)
        );
        assert!(app.prompt.is_none());
        press(&mut app, KeyCode::Char('A'));
        assert_eq!(press(&mut app, KeyCode::Esc), Some(Action::PromptCancel));
        assert!(app.prompt.is_none());
        assert!(app.notice.is_none(), "nothing was sent");
        // Esc again leaves the alerts view.
        assert_eq!(press(&mut app, KeyCode::Esc), Some(Action::Back));
        assert_eq!(app.screen, Screen::Fleet);
    }

    #[test]
    fn s_asks_how_long_then_silences_node_and_rule() {
        let mut app = with_alerts();
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Char('s'));
        match &app.prompt {
            Some(Prompt::Duration { input, .. }) => assert_eq!(input, "1h"),
            other => panic!("no duration prompt: {other:?}"),
        }
        press(&mut app, KeyCode::Backspace);
        press(&mut app, KeyCode::Backspace);
        for c in "90x".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        press(&mut app, KeyCode::Enter);
        match &app.prompt {
            Some(Prompt::Duration { error: Some(e), .. }) => assert!(e.contains("\"90x\""), "{e}"),
            other => panic!("a bad duration is refused: {other:?}"),
        }
        press(&mut app, KeyCode::Backspace);
        press(&mut app, KeyCode::Char('m'));
        press(&mut app, KeyCode::Enter);
        let matchers = vec![
            Matcher {
                name: "node".into(),
                value: "web1".into(),
            },
            Matcher {
                name: "rule".into(),
                value: "check-failed".into(),
            },
        ];
        let expected = OperatorCall::Silence {
            matchers: matchers.clone(),
            until: Until::For(std::time::Duration::from_secs(90 * 60)),
            comment: String::new(),
            by: "ann@ws1".into(),
        };
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Action::Send {
                call: expected,
                to: vec![SourceId::PRIMARY]
            })
        );
        // Tab: until the alerts resolve.
        press(&mut app, KeyCode::Char('s'));
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Enter);
        let Some(Action::Send { call, .. }) = press(&mut app, KeyCode::Char('Y')) else {
            panic!("no call");
        };
        let request = call.silence_request().unwrap();
        assert!(request.until_resolved);
        assert_eq!(request.matchers, matchers);
    }

    #[test]
    fn m_puts_the_selected_node_in_maintenance() {
        // From the fleet: the selected node.
        let mut app = with_alerts();
        press(&mut app, KeyCode::Down); // web1 (Web)
        press(&mut app, KeyCode::Char('m'));
        press(&mut app, KeyCode::Enter);
        let expected = OperatorCall::StartMaintenance {
            target: Target::Node("web1".into()),
            duration: operator::DEFAULT_MAINTENANCE,
            comment: String::new(),
            by: "ann@ws1".into(),
        };
        match &app.prompt {
            Some(Prompt::Confirm { call, .. }) => assert_eq!(*call, expected),
            other => panic!("no confirmation: {other:?}"),
        }
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Action::Send {
                call: expected,
                to: vec![SourceId::PRIMARY]
            })
        );
        // From the alerts view: the alert's node; a tier alert's tier.
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::End); // p1 on lb1
        press(&mut app, KeyCode::Char('m'));
        for _ in 0..3 {
            press(&mut app, KeyCode::Backspace);
        }
        for c in "2h".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        press(&mut app, KeyCode::Enter);
        let Some(Action::Send { call, .. }) = press(&mut app, KeyCode::Char('y')) else {
            panic!("no call");
        };
        let request = call.maintenance_request().unwrap();
        assert_eq!(
            (request.node.as_str(), request.duration_ms),
            ("lb1", 7_200_000)
        );
        let mut tier = alert("t1", "", AlertState::Firing);
        tier.tier = Role::Web as i32;
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                alerts: vec![tier],
                ..Default::default()
            })),
        }));
        press(&mut app, KeyCode::Char('m'));
        press(&mut app, KeyCode::Enter);
        let Some(Action::Send { call, .. }) = press(&mut app, KeyCode::Char('y')) else {
            panic!("no call");
        };
        assert_eq!(call.maintenance_request().unwrap().tier(), Role::Web);
    }

    #[test]
    fn with_two_collectors_an_ack_goes_to_the_alerts_owners_a_silence_to_all() {
        let mut app = App::watching(vec!["http://a".into(), "http://b".into()], 1_000)
            .with_identity("ann@ws1");
        let (a, b) = (SourceId(0), SourceId(1));
        for source in [a, b] {
            app.update(Action::Connection {
                source,
                state: ConnState::Connected,
            });
        }
        let snapshot = |nodes, alerts| FleetUpdate {
            update: Some(fleet_update::Update::Snapshot(FleetSnapshot {
                nodes,
                alerts,
                ..Default::default()
            })),
        };
        // web1 fires at A only; lb1's alert is listed by both.
        let update = |source, update| Action::Update {
            source,
            update: Box::new(update),
        };
        app.update(update(
            a,
            snapshot(
                vec![node("web1", &[Role::Web]), node("lb1", &[Role::Lb])],
                vec![
                    alert("f1", "web1", AlertState::Firing),
                    alert("p1", "lb1", AlertState::Pending),
                ],
            ),
        ));
        app.update(update(
            b,
            snapshot(
                vec![node("lb1", &[Role::Lb])],
                vec![alert("p1", "lb1", AlertState::Pending)],
            ),
        ));
        assert_eq!(app.model.len(), 2, "lb1 once");
        press(&mut app, KeyCode::Char('4'));
        let rows: Vec<(String, SourceId)> = app
            .alert_rows
            .iter()
            .map(|r| {
                let alert = &app.model.alerts()[r.index];
                (alert.id.clone(), app.model.alert_source(r.index))
            })
            .collect();
        assert_eq!(
            rows,
            [("f1".into(), a), ("p1".into(), a), ("p1".into(), b)],
            "firing first, each collector's copy listed"
        );
        press(&mut app, KeyCode::Char('A'));
        let Some(Action::Send { to, .. }) = press(&mut app, KeyCode::Char('y')) else {
            panic!("no call");
        };
        assert_eq!(to, [a], "f1 is A's");
        press(&mut app, KeyCode::End);
        assert_eq!(app.selected_alert_source(), b);
        press(&mut app, KeyCode::Char('A'));
        let Some(Action::Send { to, .. }) = press(&mut app, KeyCode::Char('y')) else {
            panic!("no call");
        };
        assert_eq!(to, [a, b], "p1 is listed by both");
        press(&mut app, KeyCode::Char('s'));
        press(&mut app, KeyCode::Enter);
        let Some(Action::Send { to, .. }) = press(&mut app, KeyCode::Char('y')) else {
            panic!("no call");
        };
        assert_eq!(to, [a, b], "each collector holds its own silences");
    }

    #[test]
    fn the_alert_selection_follows_its_alert() {
        let mut app = with_alerts();
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected_alert().unwrap().id, "p1");
        // A new firing alert sorts above: the selection stays on p1.
        app.update(Action::update(FleetUpdate {
            update: Some(fleet_update::Update::Delta(FleetDelta {
                alerts_changed: true,
                alerts: vec![
                    alert("p1", "lb1", AlertState::Pending),
                    alert("f1", "web1", AlertState::Firing),
                    alert("f2", "db1", AlertState::Firing),
                ],
                ..Default::default()
            })),
        }));
        assert_eq!(app.selected_alert().unwrap().id, "p1");
        assert_eq!(app.alert_selected, 2);
        // Enter opens the alert's node.
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.screen, Screen::Detail("lb1".into()));
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
