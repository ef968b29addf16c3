//! The Prometheus text exposition format (version 0.0.4), written by hand: the server and the
//! agent expose a few dozen counters and gauges read from atomics at scrape time, which needs no
//! registry, and a scrape then costs one `String`. No I/O here; the listeners serve the text.

use std::fmt::Write;

/// What a scrape answers with, as its `Content-Type`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of a metric family, its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (names end in `_total`).
    Counter,
    /// Goes up and down (connections held, bytes resident).
    Gauge,
}

/// A scrape's text, built family by family.
#[derive(Debug, Default)]
pub struct MetricsText {
    text: String,
}

impl MetricsText {
    pub fn new() -> Self {
        Self::default()
    }

    /// One family without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help, [(&[][..], value)]);
    }

    /// One family: its `# HELP` and `# TYPE` lines and one sample per label set. Label names
    /// are ours (plain identifiers); label values are escaped.
    pub fn family<'a, I>(&mut self, name: &str, kind: Kind, help: &str, samples: I)
    where
        I: IntoIterator<Item = (&'a [(&'a str, &'a str)], f64)>,
    {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.text.push_str(name);
            if !labels.is_empty() {
                self.text.push('{');
                for (i, (label, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
                }
                self.text.push('}');
            }
            let _ = writeln!(self.text, " {}", format_value(value));
        }
    }

    /// A counter family keyed by two labels (e.g. a notification's channel and outcome).
    pub fn counters_by_pair<K: AsRef<str>, L: AsRef<str>>(
        &mut self,
        name: &str,
        help: &str,
        label_names: [&str; 2],
        counts: &std::collections::BTreeMap<(K, L), u64>,
    ) {
        let labels: Vec<[(&str, &str); 2]> = counts
            .keys()
            .map(|(a, b)| [(label_names[0], a.as_ref()), (label_names[1], b.as_ref())])
            .collect();
        self.family(
            name,
            Kind::Counter,
            help,
            labels
                .iter()
                .zip(counts.values())
                .map(|(l, v)| (&l[..], *v as f64)),
        );
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Integers without a fraction (counters are whole numbers), others as Rust prints them
/// (shortest round-trip form), and the format's spellings of infinities and NaN.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_one_line_per_label_set() {
        let mut m = MetricsText::new();
        m.single("doorbell_rooms", Kind::Gauge, "Rooms open now.", 3.0);
        m.family(
            "doorbell_rejected_connections_total",
            Kind::Counter,
            "Connections refused.",
            [
                (&[("reason", "too_many_connections")][..], 2.0),
                (&[("reason", "shutting_down")][..], 0.0),
            ],
        );
        assert_eq!(
            m.finish(),
            "# HELP doorbell_rooms Rooms open now.\n\
             # TYPE doorbell_rooms gauge\n\
             doorbell_rooms 3\n\
             # HELP doorbell_rejected_connections_total Connections refused.\n\
             # TYPE doorbell_rejected_connections_total counter\n\
             doorbell_rejected_connections_total{reason=\"too_many_connections\"} 2\n\
             doorbell_rejected_connections_total{reason=\"shutting_down\"} 0\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped_and_values_keep_fractions() {
        let mut m = MetricsText::new();
        m.family(
            "x_seconds_total",
            Kind::Counter,
            "a \\ b\nc",
            [(&[("l", "say \"hi\"\n")][..], 0.25)],
        );
        let text = m.finish();
        assert!(
            text.contains("# HELP x_seconds_total a \\\\ b\\nc\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_total{l=\"say \\\"hi\\\"\\n\"} 0.25\n"),
            "{text}"
        );
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(1.5e20), "150000000000000000000");
    }
}
