//! The detail screen's charts over the zoom window (`+`/`-`: 1 minute to
//! 6 hours), from the history the client task fetched (Fleet.History)
//! while the screen is open; "loading…" or the error until then.
//!
//! Six charts, in the order an operator reads a node: CPU, memory,
//! network, disk I/O, requests by status class and request latency
//! (p50/p95/p99). They go in a grid of up to three columns; when the room
//! holds fewer, the detail screen pages through them ([`grid`], [`KINDS`]).
//! Every y axis names its unit (`%`, `B/s`, `req/s`, `ms`). A line breaks
//! where the node sent nothing ([`crate::history::runs`]) rather than
//! bridging the gap; a node without an access log, or whose log has no
//! request time, gets those words in the request charts' place, never an
//! empty chart or zeros. A chart whose lines are all 0 keeps a small axis
//! (1 kB/s, 1 req/s, 1 ms) rather than a `0`-high one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::style;
use crate::format;
use crate::history::{self, History, HistoryState, NoRequests};

/// The narrowest a chart is drawn (border, y labels and ~36 dots of plot).
pub const MIN_WIDTH: u16 = 30;
/// The lowest a chart is drawn (border, two rows of plot, the x axis and
/// its labels): two rows of charts fit under the Node and Now boxes of an
/// 80x24 terminal.
pub const MIN_HEIGHT: u16 = 6;
/// At most this many charts side by side.
const MAX_COLUMNS: u16 = 3;

/// The smallest top of a byte-rate axis (1 kB/s), so an idle interface or
/// disk does not get a `1 B/s` scale.
const MIN_BYTE_PEAK: f64 = 1_000.0;
/// The smallest top of the requests axis.
const MIN_RATE_PEAK: f64 = 1.0;
/// The smallest top of the latency axis, in ms.
const MIN_LATENCY_PEAK: f64 = 1.0;
/// Room above the highest point.
const HEADROOM: f64 = 1.1;

/// One chart of the detail screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Total CPU usage, %.
    Cpu,
    /// Memory used, %.
    Memory,
    /// Network rx/tx, B/s.
    Network,
    /// Disk read/write, B/s.
    Disk,
    /// Requests per second by status class.
    Requests,
    /// Latency p50/p95/p99, ms.
    Latency,
}

/// Every chart, in the order they are laid out and paged.
pub const KINDS: [Kind; 6] = [
    Kind::Cpu,
    Kind::Memory,
    Kind::Network,
    Kind::Disk,
    Kind::Requests,
    Kind::Latency,
];

/// The colours of the status classes 2xx, 3xx, 4xx, 5xx.
const CLASS_COLORS: [Color; 4] = [Color::Green, Color::Cyan, Color::Yellow, Color::Red];
/// The colours of p50, p95, p99.
const QUANTILE_COLORS: [Color; 3] = [Color::Cyan, Color::Yellow, Color::Magenta];
/// The labels of p50, p95, p99.
const QUANTILE_NAMES: [&str; 3] = ["p50", "p95", "p99"];

/// What the charts show besides the data: the window, and whether updates
/// are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// How far back the charts reach.
    pub window: std::time::Duration,
    /// Updates are frozen (`f`).
    pub frozen: bool,
}

/// The grid `area` holds: (columns, rows), `(0, 0)` when not even one
/// chart of [`MIN_WIDTH`] x [`MIN_HEIGHT`] fits. Never more rows than all
/// of [`KINDS`] need.
pub fn grid(area: Rect) -> (u16, u16) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return (0, 0);
    }
    let columns = (area.width / MIN_WIDTH).min(MAX_COLUMNS);
    let rows = (area.height / MIN_HEIGHT).min((KINDS.len() as u16).div_ceil(columns));
    (columns, rows)
}

/// How many charts fit in `area` at once (0..=6).
pub fn capacity(area: Rect) -> usize {
    let (columns, rows) = grid(area);
    usize::from(columns * rows).min(KINDS.len())
}

/// Draws the charts `kinds` into `area`, in rows of as many as [`grid`]
/// allows (fewer rows when `kinds` needs fewer); times are relative to
/// `now_ms`. Nothing when not even one fits.
pub fn render(
    frame: &mut Frame,
    history: &HistoryState,
    now_ms: i64,
    view: View,
    kinds: &[Kind],
    area: Rect,
) {
    let (columns, _) = grid(area);
    if columns == 0 || kinds.is_empty() {
        return;
    }
    let rows: Vec<&[Kind]> = kinds.chunks(usize::from(columns)).collect();
    let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows.len()]).split(area);
    let window = view.window.as_secs();
    let span = match history {
        HistoryState::Loaded(history) => chart_span(history, now_ms, window),
        _ => window,
    };
    let mut first = true;
    for (row, row_area) in rows.iter().zip(row_areas.iter()) {
        let cells = Layout::horizontal(vec![Constraint::Ratio(1, u32::from(columns)); row.len()])
            .split(*row_area);
        for (&kind, &cell) in row.iter().zip(cells.iter()) {
            // The window and the frozen mark go in the first chart's title.
            let note = first.then(|| {
                let frozen = if view.frozen { " · frozen" } else { "" };
                format!(" · {}{frozen}", window_text(window))
            });
            first = false;
            match history {
                HistoryState::Loaded(history) => {
                    let chart = Drawn {
                        history,
                        now_ms,
                        span,
                    };
                    chart.draw(frame, kind, note.as_deref().unwrap_or(""), cell);
                }
                HistoryState::Failed(err) => message(
                    frame,
                    title(kind, &[]),
                    &format!("history unavailable: {err}"),
                    cell,
                ),
                HistoryState::Loading => message(frame, title(kind, &[]), "loading…", cell),
            }
        }
    }
}

/// The title of chart `kind`: its name, its lines' legend in their
/// colours, and its unit.
fn title(kind: Kind, extra: &[Span<'static>]) -> Line<'static> {
    let legend = |names: &[&'static str], colors: &[Color]| -> Vec<Span<'static>> {
        names
            .iter()
            .zip(colors)
            .flat_map(|(name, &color)| {
                [Span::raw(" "), Span::styled(*name, Style::new().fg(color))]
            })
            .collect()
    };
    let mut spans = match kind {
        Kind::Cpu => vec![Span::raw(" CPU %")],
        Kind::Memory => vec![Span::raw(" Memory %")],
        Kind::Network => {
            let mut s = vec![Span::raw(" Network")];
            s.extend(legend(&["rx", "tx"], &[Color::Green, Color::Yellow]));
            s.push(Span::raw(" B/s"));
            s
        }
        Kind::Disk => {
            let mut s = vec![Span::raw(" Disk")];
            s.extend(legend(&["read", "write"], &[Color::Green, Color::Yellow]));
            s.push(Span::raw(" B/s"));
            s
        }
        Kind::Requests => {
            let mut s = vec![Span::raw(" Requests")];
            s.extend(legend(&stacktop_proto::metrics::CLASSES, &CLASS_COLORS));
            s.push(Span::raw(" req/s"));
            s
        }
        Kind::Latency => {
            let mut s = vec![Span::raw(" Latency")];
            s.extend(legend(&QUANTILE_NAMES, &QUANTILE_COLORS));
            s.push(Span::raw(" ms"));
            s
        }
    };
    spans.extend(extra.iter().cloned());
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// One line of a chart: its points and colour.
struct Series<'a> {
    points: &'a [(i64, f64)],
    color: Color,
}

/// Everything a loaded chart needs besides its kind.
struct Drawn<'a> {
    history: &'a History,
    now_ms: i64,
    /// Seconds the x axis spans.
    span: u64,
}

impl Drawn<'_> {
    fn draw(&self, frame: &mut Frame, kind: Kind, note: &str, area: Rect) {
        let h = self.history;
        let note = || Span::raw(note.to_string());
        let (lines, axis, extra): (Vec<Series>, YAxis, Vec<Span<'static>>) = match kind {
            Kind::Cpu => (
                vec![line(&h.cpu, Color::Cyan)],
                YAxis::Percent,
                vec![note()],
            ),
            Kind::Memory => (
                vec![line(&h.memory, Color::Magenta)],
                YAxis::Percent,
                vec![note()],
            ),
            Kind::Network => (
                vec![
                    line(&h.receive, Color::Green),
                    line(&h.transmit, Color::Yellow),
                ],
                YAxis::Bytes,
                vec![note()],
            ),
            Kind::Disk => {
                let devices = match h.disk_devices {
                    0 | 1 => String::new(),
                    n => format!(" · sum of {n} devices"),
                };
                (
                    vec![
                        line(&h.disk_read, Color::Green),
                        line(&h.disk_written, Color::Yellow),
                    ],
                    YAxis::Bytes,
                    vec![Span::raw(devices), note()],
                )
            }
            Kind::Requests => {
                if let Some(why) = h.requests_missing().filter(|w| *w != NoRequests::Idle) {
                    return message(frame, title(kind, &[note()]), why.text(), area);
                }
                let sources = match h.requests.sources {
                    0 | 1 => String::new(),
                    n => format!(" · {n} logs"),
                };
                let lines = h
                    .requests
                    .by_class
                    .iter()
                    .zip(CLASS_COLORS)
                    .map(|(points, color)| line(points, color))
                    .collect();
                (lines, YAxis::Requests, vec![Span::raw(sources), note()])
            }
            Kind::Latency => {
                if let Some(why) = h.latency_missing().filter(|w| *w != NoRequests::Idle) {
                    return message(frame, title(kind, &[note()]), why.text(), area);
                }
                let sources = match h.latency.sources {
                    0 | 1 => String::new(),
                    n => format!(" · slowest of {n} logs"),
                };
                let lines = h
                    .latency
                    .quantiles
                    .iter()
                    .zip(QUANTILE_COLORS)
                    .map(|(points, color)| line(points, color))
                    .collect();
                (lines, YAxis::Millis, vec![Span::raw(sources), note()])
            }
        };
        let title = title(kind, &extra);
        if lines.iter().all(|l| l.points.is_empty()) {
            let what = match kind {
                Kind::Requests | Kind::Latency => "no requests",
                _ => "no data",
            };
            let text = format!("{what} in the last {}", window_text(self.span));
            return message(frame, title, &text, area);
        }
        self.chart(frame, &lines, axis, Block::bordered().title(title), area);
    }

    /// The lines as a chart: one dataset per run without a gap.
    fn chart(&self, frame: &mut Frame, lines: &[Series], axis: YAxis, block: Block, area: Rect) {
        let scale = axis.scale();
        let xy: Vec<Vec<(f64, f64)>> = lines
            .iter()
            .map(|l| {
                l.points
                    .iter()
                    .map(|&(ts, v)| ((ts - self.now_ms) as f64 / 1000.0, v * scale))
                    .collect()
            })
            .collect();
        let mut datasets = Vec::new();
        for (l, points) in lines.iter().zip(&xy) {
            let timestamps: Vec<i64> = l.points.iter().map(|p| p.0).collect();
            for run in history::runs(&timestamps) {
                datasets.push(
                    Dataset::default()
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(Style::new().fg(l.color))
                        .data(&points[run]),
                );
            }
        }
        let peak = xy.iter().flatten().map(|p| p.1).fold(0.0_f64, f64::max);
        let chart = Chart::new(datasets)
            .block(block)
            .x_axis(time_axis(self.span))
            .y_axis(axis.axis(peak));
        frame.render_widget(chart, area);
    }
}

fn line(points: &[(i64, f64)], color: Color) -> Series<'_> {
    Series { points, color }
}

/// The y axis of a chart: its bounds and labels, with the unit.
#[derive(Debug, Clone, Copy)]
enum YAxis {
    /// 0 to 100 %.
    Percent,
    /// Bytes per second, from 0 to the peak.
    Bytes,
    /// Requests per second, from 0 to the peak.
    Requests,
    /// Milliseconds, from 0 to the peak.
    Millis,
}

impl YAxis {
    /// What the stored values are multiplied by to be drawn in the axis's
    /// unit (ratios to %, seconds to ms).
    fn scale(self) -> f64 {
        match self {
            YAxis::Percent => 100.0,
            YAxis::Bytes | YAxis::Requests => 1.0,
            YAxis::Millis => 1_000.0,
        }
    }

    /// The axis for data up to `peak` (in the axis's unit).
    fn axis(self, peak: f64) -> Axis<'static> {
        let top = |min: f64| peak.max(min) * HEADROOM;
        let (top, label) = match self {
            YAxis::Percent => {
                return Axis::default()
                    .bounds([0.0, 100.0])
                    .labels(["0%", "50%", "100%"])
                    .style(style::muted());
            }
            YAxis::Bytes => {
                let top = top(MIN_BYTE_PEAK);
                (top, format::byte_rate(Some(top)))
            }
            YAxis::Requests => {
                let top = top(MIN_RATE_PEAK);
                (top, format!("{} req/s", format::rate(Some(top))))
            }
            YAxis::Millis => {
                let top = top(MIN_LATENCY_PEAK);
                (top, millis(top))
            }
        };
        Axis::default()
            .bounds([0.0, top])
            .labels(["0".to_string(), label])
            .style(style::muted())
    }
}

/// A latency in ms for an axis label: `4.5 ms`, `120 ms`, `2.5 s`.
fn millis(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Seconds of history the x axis spans: the whole `window` (seconds) once
/// there is that much data, less (but at least a minute) while a node is
/// new, so a fresh node's charts are not squeezed against the right edge.
fn chart_span(history: &History, now_ms: i64, window: u64) -> u64 {
    let oldest = history.oldest().unwrap_or(now_ms);
    let age = ((now_ms - oldest).max(0) / 1000) as u64;
    // Round up to whole minutes so the label reads well.
    age.div_ceil(60).max(1).saturating_mul(60).min(window)
}

/// `15m`, `1h`, `6h`.
fn window_text(seconds: u64) -> String {
    if seconds >= 3_600 && seconds.is_multiple_of(3_600) {
        format!("{}h", seconds / 3_600)
    } else {
        format!("{}m", seconds / 60)
    }
}

fn time_axis(span: u64) -> Axis<'static> {
    Axis::default()
        .bounds([-(span as f64), 0.0])
        .labels([format!("-{}", window_text(span)), "now".to_string()])
        .style(style::muted())
}

/// A chart's place with words instead of lines.
fn message(frame: &mut Frame, title: Line<'static>, text: &str, area: Rect) {
    frame.render_widget(
        Paragraph::new(Line::styled(text.to_string(), style::muted()))
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_gets_a_short_time_axis() {
        let now = 1_000_000;
        let mut h = History::default();
        assert_eq!(chart_span(&h, now, 900), 60);
        h.cpu = vec![(now - 90_000, 0.1)];
        assert_eq!(chart_span(&h, now, 900), 120);
        h.latency.quantiles[2] = vec![(now - 3_600_000, 0.1)];
        assert_eq!(chart_span(&h, now, 900), 900);
        assert_eq!(chart_span(&h, now, 6 * 3_600), 3_600);
        assert_eq!(window_text(6 * 3_600), "6h");
        assert_eq!(window_text(300), "5m");
    }

    #[test]
    fn the_grid_holds_what_fits() {
        let area = |w, h| Rect::new(0, 0, w, h);
        assert_eq!(grid(area(29, 40)), (0, 0));
        assert_eq!(grid(area(200, 5)), (0, 0));
        assert_eq!(grid(area(80, 7)), (2, 1));
        assert_eq!(grid(area(80, 14)), (2, 2));
        assert_eq!(grid(area(80, 40)), (2, 3), "never more rows than six need");
        assert_eq!(grid(area(200, 27)), (3, 2));
        assert_eq!(capacity(area(200, 27)), 6);
        assert_eq!(capacity(area(120, 11)), 3);
    }

    #[test]
    fn latency_labels_switch_units() {
        assert_eq!(millis(4.46), "4.5 ms");
        assert_eq!(millis(132.0), "132 ms");
        assert_eq!(millis(2_500.0), "2.5 s");
    }
}
