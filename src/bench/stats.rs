//! Small statistics helpers and the shared report format.

use std::time::Instant;

use serde_json::{json, Value};

/// The `q`-quantile (0..=1) of `samples` (sorted in place).
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let idx = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[idx]
}

pub fn median(samples: &mut [f64]) -> f64 {
    quantile(samples, 0.5)
}

/// Median µs of `f` over `n` runs (after one warm-up run).
pub fn time_us(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(&mut samples)
}

/// A benchmark report: rows of (name, value, unit), printed as an aligned
/// table or one JSON object.
pub struct Report {
    title: String,
    rows: Vec<(String, f64, String)>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, name: impl Into<String>, value: f64, unit: impl Into<String>) {
        self.rows.push((name.into(), value, unit.into()));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn print(&self, as_json: bool) {
        if as_json {
            let mut obj = serde_json::Map::new();
            obj.insert("bench".into(), json!(self.title));
            for (name, value, unit) in &self.rows {
                let v = if value.is_finite() {
                    json!(value)
                } else {
                    Value::Null
                };
                obj.insert(name.clone(), json!({"value": v, "unit": unit}));
            }
            obj.insert("notes".into(), json!(self.notes));
            println!("{}", Value::Object(obj));
            return;
        }
        println!("{}", self.title);
        let width = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (name, value, unit) in &self.rows {
            let shown = if value.abs() >= 100.0 || *value == value.trunc() {
                format!("{value:.0}")
            } else {
                format!("{value:.2}")
            };
            println!("  {name:<width$}  {shown:>12} {unit}");
        }
        for n in &self.notes {
            println!("  note: {n}");
        }
    }
}

/// CPU seconds (user + system) used by a process so far, from /proc.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Resident set size of a process in MiB, from /proc.
pub fn process_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median(&mut v), 51.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(process_rss_mib(pid).unwrap() > 0.0);
        assert!(process_cpu_seconds(pid).is_some());
    }
}
