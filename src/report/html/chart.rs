//! Line charts as inline SVG: axes with units and readable ticks, one path per series
//! (a gap where a value is missing), optional threshold and marker lines.
//!
//! Every chart carries its scales as data attributes (`data-x-min`, `data-x-max`,
//! `data-y-min`, `data-y-max`, `data-plot` = the plot rectangle) and every series its
//! point count (`data-points`), so a browser test can check that the axes cover the data
//! and that no second is lost.

use std::fmt::Write as _;

use super::escape;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Powers of ten, for latencies that span orders of magnitude.
    Log,
}

/// What an axis's values are, for tick labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds since the start of the run.
    Elapsed,
    /// Microseconds (latencies).
    Micros,
    Count,
    PerSecond,
    /// Percent (of one CPU core).
    Percent,
    /// KiB of memory.
    Kib,
    /// A percentile on the "nines" axis: x = −log10(1 − q), 1 = 90 %, 2 = 99 %.
    Nines,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub title: String,
    pub unit: Unit,
    pub scale: Scale,
}

impl Axis {
    pub fn new(title: impl Into<String>, unit: Unit, scale: Scale) -> Axis {
        Axis {
            title: title.into(),
            unit,
            scale,
        }
    }
}

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    /// Colour index (the thing measured).
    pub color: usize,
    /// Dash index (the run, when several are overlaid).
    pub dash: usize,
    /// (x, y); `None` leaves a gap.
    pub points: Vec<(f64, Option<f64>)>,
    /// Draw each point as a dot, coloured by its class (`pass`, `fail`), as well.
    pub dots: Vec<Option<&'static str>>,
}

impl Series {
    pub fn line(label: impl Into<String>, color: usize, dash: usize) -> Series {
        Series {
            label: label.into(),
            color,
            dash,
            points: Vec::new(),
            dots: Vec::new(),
        }
    }

    /// Points with a value.
    pub fn point_count(&self) -> usize {
        self.points.iter().filter(|(_, y)| y.is_some()).count()
    }
}

/// A labelled line across the plot: a threshold (horizontal) or a marker (vertical).
#[derive(Debug, Clone)]
pub struct Rule {
    pub at: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable id, e.g. `commands`, `latency-p99`.
    pub id: String,
    /// `time`, `distribution` or `capacity`.
    pub kind: &'static str,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub thresholds: Vec<Rule>,
    pub markers: Vec<Rule>,
    /// A line under the chart (what was left out, how to read it).
    pub note: Option<String>,
}

// The size a chart is drawn at in a two-column layout, so text is at its CSS size.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;

/// An axis's domain and ticks.
#[derive(Debug, Clone)]
struct Domain {
    min: f64,
    max: f64,
    scale: Scale,
    ticks: Vec<f64>,
}

impl Domain {
    /// A domain covering `values` (all finite), starting at zero for linear scales of
    /// non-negative values.
    fn covering(values: &[f64], scale: Scale, unit: Unit) -> Domain {
        match scale {
            Scale::Log => {
                let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
                let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = positive.iter().copied().fold(0.0, f64::max);
                let (lo, hi) = if positive.is_empty() {
                    (1.0, 10.0)
                } else {
                    (lo, hi)
                };
                let min = 10f64.powf(lo.log10().floor());
                let mut max = 10f64.powf(hi.log10().ceil());
                if max <= min {
                    max = min * 10.0;
                }
                let mut ticks = Vec::new();
                let mut t = min;
                while t <= max * 1.000_001 {
                    ticks.push(t);
                    t *= 10.0;
                }
                Domain {
                    min,
                    max,
                    scale,
                    ticks,
                }
            }
            Scale::Linear => {
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let (lo, hi) = if values.is_empty() {
                    (0.0, 1.0)
                } else {
                    (lo, hi)
                };
                let lo = lo.min(0.0);
                // A little headroom, so the top line and the labels there stay apart.
                let hi = if hi <= lo {
                    lo + 1.0
                } else {
                    hi + (hi - lo) * 0.03
                };
                let step = nice_step((hi - lo) / 5.0, unit);
                let min = (lo / step).floor() * step;
                let max = (hi / step).ceil() * step;
                let ticks = (0..)
                    .map(|i| min + step * f64::from(i))
                    .take_while(|t| *t <= max + step * 1e-6)
                    .collect();
                Domain {
                    min,
                    max,
                    scale,
                    ticks,
                }
            }
        }
    }

    /// `value` as a fraction of the domain (0 at `min`, 1 at `max`).
    fn fraction(&self, value: f64) -> f64 {
        match self.scale {
            Scale::Linear => (value - self.min) / (self.max - self.min),
            Scale::Log => {
                let v = value.max(self.min);
                (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
            }
        }
    }
}

/// 1, 2 or 5 times a power of ten (whole minutes and hours for elapsed time), at
/// least `raw`.
fn nice_step(raw: f64, unit: Unit) -> f64 {
    if unit == Unit::Nines {
        return 1.0;
    }
    // Memory ticks at round MiB or GiB.
    if unit == Unit::Kib && raw >= 512.0 {
        let (scale, raw) = if raw >= 512.0 * 1024.0 {
            (1024.0 * 1024.0, raw / 1024.0 / 1024.0)
        } else {
            (1024.0, raw / 1024.0)
        };
        return nice_step(raw, Unit::Count).max(1.0) * scale;
    }
    if unit == Unit::Elapsed && raw > 30.0 {
        for step in [60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0] {
            if step >= raw {
                return step;
            }
        }
        return (raw / 3600.0).ceil() * 3600.0;
    }
    let raw = raw.max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * power >= raw {
            let step = m * power;
            // Counts, users and seconds tick at whole numbers.
            return if matches!(unit, Unit::Count | Unit::Elapsed) {
                step.max(1.0)
            } else {
                step
            };
        }
    }
    10.0 * power
}

/// A tick label.
pub fn format_value(value: f64, unit: Unit, domain_max: f64) -> String {
    match unit {
        Unit::Elapsed => {
            let secs = value.round() as i64;
            if domain_max >= 120.0 {
                format!("{}:{:02}", secs / 60, secs % 60)
            } else {
                format!("{secs}s")
            }
        }
        Unit::Micros => format_latency(value),
        Unit::Count | Unit::PerSecond => format_number(value),
        Unit::Percent => format!("{}%", format_number(value)),
        Unit::Kib => format_kib(value),
        Unit::Nines => {
            let nines = value.round() as i32;
            if nines <= 0 {
                "0%".to_owned()
            } else {
                let q = 100.0 - 100.0 * 10f64.powi(-nines);
                format!("{}%", trim(q, nines.max(0) as usize))
            }
        }
    }
}

/// A latency to three significant digits: 83µs, 1.25ms, 39.8ms, 812ms, 1.5s.
pub fn format_latency(us: f64) -> String {
    if us == 0.0 {
        "0".to_owned()
    } else if us < 1000.0 {
        format!("{}µs", trim(us, 0))
    } else if us < 10_000.0 {
        format!("{}ms", trim(us / 1e3, 2))
    } else if us < 100_000.0 {
        format!("{}ms", trim(us / 1e3, 1))
    } else if us < 1_000_000.0 {
        format!("{}ms", trim(us / 1e3, 0))
    } else {
        format!("{}s", trim(us / 1e6, 2))
    }
}

/// 12, 1.5, 12.5k, 3.2M.
pub fn format_number(value: f64) -> String {
    let a = value.abs();
    if a >= 1e6 {
        format!("{}M", trim(value / 1e6, 1))
    } else if a >= 1e4 {
        format!("{}k", trim(value / 1e3, 1))
    } else if a >= 100.0 || value == value.round() {
        format!("{value:.0}")
    } else {
        trim(value, 2)
    }
}

/// 512 KiB, 12 MiB, 1.5 GiB.
pub fn format_kib(kib: f64) -> String {
    if kib >= 1024.0 * 1024.0 {
        format!("{} GiB", trim(kib / 1024.0 / 1024.0, 1))
    } else if kib >= 1024.0 {
        format!("{} MiB", trim(kib / 1024.0, 1))
    } else {
        format!("{} KiB", trim(kib, 0))
    }
}

fn trim(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

impl Chart {
    pub fn new(id: &str, kind: &'static str, title: &str, x: Axis, y: Axis) -> Chart {
        Chart {
            id: id.to_owned(),
            kind,
            title: title.to_owned(),
            x,
            y,
            series: Vec::new(),
            thresholds: Vec::new(),
            markers: Vec::new(),
            note: None,
        }
    }

    /// True if no series has a point.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.point_count() == 0)
    }

    /// The chart as a `<figure>`: title, SVG, legend and note.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<figure class=\"chart\" id=\"chart-{}\"><figcaption>{}</figcaption>",
            escape(&self.id),
            escape(&self.title)
        );
        out.push_str(&self.svg());
        out.push_str(&self.legend());
        if let Some(note) = &self.note {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(note));
        }
        out.push_str("</figure>\n");
        out
    }

    fn svg(&self) -> String {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .filter(|(_, y)| y.is_some())
                    .map(|(x, _)| *x)
            })
            .chain(self.markers.iter().map(|m| m.at))
            .filter(|v| v.is_finite())
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|(_, y)| *y))
            .chain(self.thresholds.iter().map(|t| t.at))
            .filter(|v| v.is_finite())
            .collect();
        let x = Domain::covering(&xs, self.x.scale, self.x.unit);
        let y = Domain::covering(&ys, self.y.scale, self.y.unit);
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let px = |v: f64| LEFT + x.fraction(v) * pw;
        let py = |v: f64| TOP + (1.0 - y.fraction(v)) * ph;

        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" \
             data-chart=\"{}\" data-kind=\"{}\" data-x-min=\"{}\" data-x-max=\"{}\" \
             data-y-min=\"{}\" data-y-max=\"{}\" data-y-scale=\"{}\" \
             data-plot=\"{LEFT} {TOP} {pw} {ph}\" xmlns=\"http://www.w3.org/2000/svg\">",
            escape(&self.title),
            escape(&self.id),
            self.kind,
            x.min,
            x.max,
            y.min,
            y.max,
            match self.y.scale {
                Scale::Linear => "linear",
                Scale::Log => "log",
            },
        );
        let _ = write!(
            svg,
            "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>"
        );
        // Grid and tick labels.
        for &t in &y.ticks {
            let yy = py(t);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + pw,
                LEFT - 6.0,
                yy + 4.0,
                escape(&format_value(t, self.y.unit, y.max))
            );
        }
        for &t in &x.ticks {
            let xx = px(t);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\"/>\
                 <text class=\"tick\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                TOP + ph,
                TOP + ph + 16.0,
                escape(&format_value(t, self.x.unit, x.max))
            );
        }
        let _ = write!(
            svg,
            "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text class=\"axis-title\" transform=\"translate(14 {}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text>",
            LEFT + pw / 2.0,
            HEIGHT - 8.0,
            escape(&self.x.title),
            TOP + ph / 2.0,
            escape(&self.y.title)
        );
        for rule in &self.thresholds {
            let yy = py(rule.at);
            let _ = write!(
                svg,
                "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"rule-label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + pw,
                LEFT + pw - 4.0,
                yy - 4.0,
                escape(&rule.label)
            );
        }
        for rule in &self.markers {
            let xx = px(rule.at);
            let _ = write!(
                svg,
                "<line class=\"marker\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\"/>\
                 <text class=\"rule-label\" x=\"{:.1}\" y=\"{}\">{}</text>",
                TOP + ph,
                xx + 4.0,
                TOP + 12.0,
                escape(&rule.label)
            );
        }
        for series in &self.series {
            let mut d = String::new();
            let mut pen_down = false;
            for &(vx, vy) in &series.points {
                match vy {
                    Some(vy) => {
                        let _ = write!(
                            d,
                            "{}{:.1} {:.1} ",
                            if pen_down { "L" } else { "M" },
                            px(vx),
                            py(vy)
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            let _ = write!(
                svg,
                "<path class=\"series c{} d{}\" data-label=\"{}\" data-points=\"{}\" d=\"{}\"/>",
                series.color % PALETTE,
                series.dash % DASHES,
                escape(&series.label),
                series.point_count(),
                d.trim_end()
            );
            for (&(vx, vy), class) in series.points.iter().zip(&series.dots) {
                if let (Some(vy), Some(class)) = (vy, class) {
                    let _ = write!(
                        svg,
                        "<circle class=\"dot {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {}</title></circle>",
                        px(vx),
                        py(vy),
                        escape(&format_value(vx, self.x.unit, x.max)),
                        escape(&format_value(vy, self.y.unit, y.max)),
                    );
                }
            }
        }
        svg.push_str("</svg>");
        svg
    }

    /// A swatch per colour (what is measured), then, when runs are overlaid
    /// (`A · imap LOGIN`), a swatch per dash (which run).
    fn legend(&self) -> String {
        let drawn = self.series.iter().filter(|s| s.point_count() > 0);
        let mut colours: Vec<(usize, &str)> = Vec::new();
        let mut dashes: Vec<(usize, &str)> = Vec::new();
        for series in drawn {
            let (run, what) = match series.label.split_once(" · ") {
                Some((run, what)) => (Some(run), what),
                None => (None, series.label.as_str()),
            };
            if !colours
                .iter()
                .any(|(c, w)| *c == series.color && *w == what)
            {
                colours.push((series.color, what));
            }
            if let Some(run) = run
                && !dashes.iter().any(|(d, _)| *d == series.dash)
            {
                dashes.push((series.dash, run));
            }
        }
        let swatch = |class: String, text: &str| {
            format!(
                "<li><svg viewBox=\"0 0 28 10\" width=\"28\" height=\"10\"><line class=\"{class}\" \
                 x1=\"1\" x2=\"27\" y1=\"5\" y2=\"5\"/></svg>{}</li>",
                escape(text)
            )
        };
        let mut out = String::from("<ul class=\"legend\">");
        for (color, what) in colours {
            let dash = if dashes.is_empty() { "" } else { " d0" };
            out.push_str(&swatch(format!("series c{}{dash}", color % PALETTE), what));
        }
        if dashes.len() > 1 {
            for (dash, run) in dashes {
                out.push_str(&swatch(
                    format!("series run d{}", dash % DASHES),
                    &format!("run {run}"),
                ));
            }
        }
        out.push_str("</ul>");
        out
    }
}

/// Colours in the style sheet (`.c0` … `.c9`).
pub const PALETTE: usize = 10;
/// Dash styles in the style sheet (`.d0` … `.d3`), one per overlaid run.
pub const DASHES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_domains_start_at_zero_and_cover_the_data() {
        let d = Domain::covering(&[3.0, 97.0], Scale::Linear, Unit::Count);
        assert_eq!((d.min, d.max), (0.0, 100.0));
        assert_eq!(d.ticks, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let d = Domain::covering(&[0.0, 0.0], Scale::Linear, Unit::Count);
        assert!(d.max >= 1.0);
        let d = Domain::covering(&[0.4, 0.7], Scale::Linear, Unit::PerSecond);
        assert!(d.max >= 0.7 && d.max <= 1.0, "{d:?}");
        // Memory ticks at whole MiB.
        let d = Domain::covering(&[0.0, 169_000.0], Scale::Linear, Unit::Kib);
        assert_eq!(d.ticks[1], 50.0 * 1024.0, "{d:?}");
        assert_eq!(format_value(d.ticks[1], Unit::Kib, d.max), "50 MiB");
    }

    #[test]
    fn log_domains_are_whole_decades() {
        let d = Domain::covering(&[180.0, 52_000.0], Scale::Log, Unit::Micros);
        assert_eq!((d.min, d.max), (100.0, 100_000.0));
        assert_eq!(d.ticks.len(), 4);
        assert!((d.fraction(1000.0) - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn tick_labels_carry_units() {
        assert_eq!(format_value(1500.0, Unit::Micros, 0.0), "1.5ms");
        assert_eq!(format_value(39_775.0, Unit::Micros, 0.0), "39.8ms");
        assert_eq!(format_value(83.0, Unit::Micros, 0.0), "83µs");
        assert_eq!(format_value(812_400.0, Unit::Micros, 0.0), "812ms");
        assert_eq!(format_value(90.0, Unit::Elapsed, 60.0), "90s");
        assert_eq!(format_value(90.0, Unit::Elapsed, 300.0), "1:30");
        assert_eq!(format_value(2.0, Unit::Nines, 4.0), "99%");
        assert_eq!(format_value(3.0, Unit::Nines, 4.0), "99.9%");
        assert_eq!(format_value(2048.0, Unit::Kib, 0.0), "2 MiB");
        assert_eq!(format_value(12_500.0, Unit::PerSecond, 0.0), "12.5k");
        assert_eq!(format_value(150.0, Unit::Percent, 0.0), "150%");
    }

    #[test]
    fn gaps_split_the_path_and_points_are_counted() {
        let mut chart = Chart::new(
            "t",
            "time",
            "T",
            Axis::new("elapsed", Unit::Elapsed, Scale::Linear),
            Axis::new("n", Unit::Count, Scale::Linear),
        );
        let mut s = Series::line("a", 0, 0);
        s.points = vec![
            (1.0, Some(1.0)),
            (2.0, None),
            (3.0, Some(5.0)),
            (4.0, Some(2.0)),
        ];
        chart.series.push(s);
        let html = chart.to_html();
        assert!(html.contains("data-points=\"3\""), "{html}");
        let d = html.split(" d=\"").nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        assert!(html.contains("data-y-max=\"6\""), "{html}");
    }
}
