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

/// A JSON array written element by element, byte for byte as [`print_json`] writes the
/// whole array, so a long listing never holds all its elements at once.
pub struct JsonArray<W: Write> {
    out: W,
    empty: bool,
}

impl JsonArray<std::io::StdoutLock<'static>> {
    pub fn stdout() -> Self {
        JsonArray::new(std::io::stdout().lock())
    }
}

impl<W: Write> JsonArray<W> {
    pub fn new(out: W) -> Self {
        JsonArray { out, empty: true }
    }

    pub fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = serde_json::to_vec_pretty(value)?;
        self.out
            .write_all(if self.empty { b"[\n  " } else { b",\n  " })?;
        self.empty = false;
        // One level deeper: JSON text has newlines only between tokens (strings escape
        // theirs), so indenting after each newline is what the pretty printer does.
        for (k, part) in text.split(|&b| b == b'\n').enumerate() {
            if k > 0 {
                self.out.write_all(b"\n  ")?;
            }
            self.out.write_all(part)?;
        }
        Ok(())
    }

    /// Closes the array and flushes.
    pub fn finish(mut self) -> Result<()> {
        self.out
            .write_all(if self.empty { b"[]\n" } else { b"\n]\n" })?;
        self.out.flush()?;
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_array_is_the_pretty_printed_array() {
        let values = [
            serde_json::json!({"id": "a-1", "labels": ["x", "y"], "deps": [], "m": {}}),
            serde_json::json!({"id": "a-2", "text": "two\nlines", "n": {"k": [1, {"z": null}]}}),
            serde_json::json!("plain"),
        ];
        for n in 0..=values.len() {
            let mut streamed = Vec::new();
            let mut arr = JsonArray::new(&mut streamed);
            for v in &values[..n] {
                arr.push(v).expect("writes");
            }
            arr.finish().expect("writes");
            let mut whole = serde_json::to_vec_pretty(&values[..n]).expect("serializes");
            whole.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&whole)
            );
        }
    }
}
