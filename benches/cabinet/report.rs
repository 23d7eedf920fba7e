//! Rows of the result table: a measurement, its reference from the same run, the ratio in the
//! direction the goal states, and the Markdown table they print as.

use serde::Serialize;

/// min / median / max of repeated measurements.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(mut values: Vec<f64>) -> Stats {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Stats { min: values[0], median: values[values.len() / 2], max: values[values.len() - 1] }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub work: String,
    pub unit: String,
    pub ours: Stats,
    pub reference_name: String,
    pub reference: Stats,
    /// How cabinet-db compares, in the "better" direction the goal states.
    pub ratio: f64,
    pub goal: String,
    pub met: bool,
}

/// Higher is better (throughput): ratio = ours / reference.
pub fn throughput_row(
    work: &str,
    unit: &str,
    ours: Stats,
    reference_name: &str,
    reference: Stats,
    goal: f64,
) -> Row {
    let ratio = ours.median / reference.median;
    Row {
        work: work.into(),
        unit: unit.into(),
        ours,
        reference_name: reference_name.into(),
        reference,
        ratio,
        goal: format!("≥ {goal}×"),
        met: ratio >= goal,
    }
}

/// Lower is better (time): ratio = ours / reference.
pub fn time_row(work: &str, ours: Stats, reference_name: &str, reference: Stats, goal: f64) -> Row {
    let ratio = ours.median / reference.median;
    Row {
        work: work.into(),
        unit: "s".into(),
        ours,
        reference_name: reference_name.into(),
        reference,
        ratio,
        goal: format!("≤ {goal}×"),
        met: ratio <= goal,
    }
}

pub fn print_table(rows: &[Row], server: &str) {
    let fmt = |s: &Stats, unit: &str| {
        let v = |x: f64| {
            if x >= 100.0 {
                format!("{x:.0}")
            } else if x >= 1.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.3}")
            }
        };
        format!("{} {unit} ({}–{})", v(s.median), v(s.min), v(s.max))
    };
    println!("\nServer: {server}. Figures: median (min–max).\n");
    println!("| work | cabinet-db | reference | ratio | goal | met |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {}: {} | {:.2}× | {} | {} |",
            r.work,
            fmt(&r.ours, &r.unit),
            r.reference_name,
            fmt(&r.reference, &r.unit),
            r.ratio,
            r.goal,
            if r.met { "yes" } else { "**no**" }
        );
    }
}
