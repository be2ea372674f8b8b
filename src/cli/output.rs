//! Writing results: one JSON document for tools, readable text for people.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Prints `value` as one JSON document on stdout (pretty, like bd).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// ANSI styling that is a no-op when color is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }

    /// Priority badge, colored by urgency.
    pub fn priority(&self, p: i64) -> String {
        let s = format!("P{p}");
        match p {
            0 => self.red(&s),
            1 => self.yellow(&s),
            _ => s,
        }
    }

    pub fn status(&self, status: &str) -> String {
        match status {
            "open" => self.green(status),
            "in_progress" => self.cyan(status),
            "blocked" => self.red(status),
            "closed" | "done" | "completed" => self.dim(status),
            _ => self.yellow(status),
        }
    }
}
