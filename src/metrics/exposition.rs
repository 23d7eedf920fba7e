//! Prometheus' text exposition format (version 0.0.4): one `# HELP` and `# TYPE` per family,
//! then its samples. Names are checked when a family is made (a bad one is a bug of ours, not
//! input); label values — role names, check ids, member names, anything the database or a peer
//! holds — are escaped as the format says (`\\`, `\"`, `\n`), so no value can end a sample
//! early or forge another.

use std::fmt::Write;

/// What a family's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
    /// Samples `_bucket{le=…}` (cumulative), `_sum` and `_count`.
    Histogram,
}

/// One metric family: its name, help, kind and samples.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// (suffix of the name — `""`, or `_bucket`/`_sum`/`_count` for a histogram —, labels, value)
    samples: Vec<Sample>,
}

/// One sample: its name's suffix, its labels, its value.
type Sample = (&'static str, Vec<(&'static str, String)>, f64);

/// Whether `name` is a metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*` (colons are for
/// recording rules, not exporters).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Family {
    pub(crate) fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        assert!(is_name(name) && name.starts_with("cabinet_"), "metric name {name:?}");
        assert!(kind != Kind::Counter || name.ends_with("_total"), "a counter's name ends in _total: {name}");
        Family { name, help, kind, samples: Vec::new() }
    }

    /// A family of one sample without labels.
    pub(crate) fn single(name: &'static str, help: &'static str, kind: Kind, value: f64) -> Family {
        Family::new(name, help, kind).with(&[], value)
    }

    /// Adds a sample with these labels.
    pub(crate) fn with(mut self, labels: &[(&'static str, &str)], value: f64) -> Family {
        self.push(labels, value);
        self
    }

    pub(crate) fn push(&mut self, labels: &[(&'static str, &str)], value: f64) {
        self.push_part("", labels, value);
    }

    /// Adds a histogram's sample: `suffix` is `_bucket`, `_sum` or `_count`.
    pub(crate) fn push_part(&mut self, suffix: &'static str, labels: &[(&'static str, &str)], value: f64) {
        assert!(
            (self.kind == Kind::Histogram) == ["_bucket", "_sum", "_count"].contains(&suffix),
            "{}: suffix {suffix:?}",
            self.name
        );
        for (label, _) in labels {
            assert!(is_name(label) && !label.starts_with("__"), "label name {label:?}");
        }
        self.samples.push((suffix, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), value));
    }
}

/// A label value as the format writes it inside quotes.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text as the format writes it: `\\` and `\n` escaped.
fn escape_help(help: &str, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// The families as one scrape's text, in the order given.
pub(crate) fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        out.push_str("# HELP ");
        out.push_str(family.name);
        out.push(' ');
        escape_help(family.help, &mut out);
        out.push('\n');
        let kind = match family.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for (suffix, labels, value) in &family.samples {
            out.push_str(family.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                out.push('{');
                for (i, (label, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(label);
                    out.push_str("=\"");
                    escape_label_value(value, &mut out);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(*value, &mut out);
            out.push('\n');
        }
    }
    out
}

/// A family as a scrape's text has it: for reading back what `render` wrote (the dashboard
/// shows the scrape Prometheus reads).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) name: String,
    pub(crate) help: String,
    /// (the sample's name, its labels as written between the braces, its value)
    pub(crate) samples: Vec<(String, String, f64)>,
}

/// Reads a scrape's text back into families: `# HELP` opens one, samples join the family
/// whose name they start with; anything else is skipped.
pub(crate) fn parse(text: &str) -> Vec<Parsed> {
    let mut families: Vec<Parsed> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.push(Parsed {
                name: name.to_owned(),
                help: help.replace("\\n", "\n").replace("\\\\", "\\"),
                samples: Vec::new(),
            });
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some((series, value)) => (series, value),
            None => continue,
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap_or(labels)),
            None => (series, ""),
        };
        if let Some(family) = families.last_mut().filter(|f| name.starts_with(f.name.as_str())) {
            family.samples.push((name.to_owned(), labels.to_owned(), value));
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_help_type_and_escaped_labels() {
        let roles = Family::new("cabinet_role_connections", "Connections open per role.", Kind::Gauge)
            .with(&[("role", "cabinet_n8n")], 3.0)
            .with(&[("role", "evil\"} 1\ncabinet_forged 9\\")], 1.0);
        let text =
            render(&[roles, Family::single("cabinet_up", "1 when it answers.", Kind::Gauge, f64::NAN)]);
        assert_eq!(
            text,
            "# HELP cabinet_role_connections Connections open per role.\n\
             # TYPE cabinet_role_connections gauge\n\
             cabinet_role_connections{role=\"cabinet_n8n\"} 3\n\
             cabinet_role_connections{role=\"evil\\\"} 1\\ncabinet_forged 9\\\\\"} 1\n\
             # HELP cabinet_up 1 when it answers.\n\
             # TYPE cabinet_up gauge\n\
             cabinet_up NaN\n"
        );
        // Every line is a comment or one sample: the hostile value forged none.
        assert!(text.lines().all(|l| l.starts_with('#')
            || l.starts_with("cabinet_role_connections")
            || l.starts_with("cabinet_up")));
    }

    #[test]
    fn a_rendered_scrape_reads_back() {
        let mut histogram = Family::new("cabinet_took_seconds", "How long.", Kind::Histogram);
        histogram.push_part("_bucket", &[("le", "+Inf")], 2.0);
        histogram.push_part("_count", &[], 2.0);
        let families = [
            Family::new("cabinet_role_connections", "Per role.\nTwo lines.", Kind::Gauge)
                .with(&[("role", "a \"b\" c")], 3.0),
            histogram,
        ];
        let parsed = parse(&render(&families));
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].help, "Per role.\nTwo lines.");
        assert_eq!(
            parsed[0].samples,
            vec![("cabinet_role_connections".into(), "role=\"a \\\"b\\\" c\"".into(), 3.0)]
        );
        assert_eq!(parsed[1].samples[0], ("cabinet_took_seconds_bucket".into(), "le=\"+Inf\"".into(), 2.0));
        assert_eq!(parsed[1].samples[1], ("cabinet_took_seconds_count".into(), String::new(), 2.0));
    }

    #[test]
    #[should_panic(expected = "counter")]
    fn a_counter_without_total_is_a_bug() {
        let _ = Family::new("cabinet_failures", "x", Kind::Counter);
    }
}
