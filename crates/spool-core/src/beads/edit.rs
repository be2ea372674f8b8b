//! Field-level edits of one issue line, in that line's own dialect.
//!
//! [`LineEditor`] wraps the pure primitives of [`super::line`] with what an issue line
//! needs: bd's key order for new keys, the key spellings the line already uses
//! (`created`/`updated`/`wisp` of some writers), sorted labels, and bd-shaped
//! dependency and comment objects.

use serde_json::Value;

use super::json;
use super::line::{self, LineError, LineStyle};
use super::write::{is_empty_value, NewComment, NewDependency, BD_KEY_ORDER};

/// Alternative spellings of a key that the typed view accepts. A write goes to the
/// spelling the line already has, so the line never carries both (which would make it
/// unreadable: a duplicate field).
const ALIASES: &[(&str, &str)] = &[
    ("created_at", "created"),
    ("updated_at", "updated"),
    ("ephemeral", "wisp"),
];

/// Edits one line's bytes. Every method changes only the bytes of the value it touches
/// (or inserts/removes one member or array element); everything else stays verbatim.
#[derive(Debug, Clone)]
pub struct LineEditor {
    bytes: Vec<u8>,
    style: LineStyle,
    /// Whether a value was written whose bytes depend on the style's escaping.
    used_escaping: bool,
}

impl LineEditor {
    /// An editor over a line's bytes (without terminator), writing in `style`.
    pub fn new(bytes: Vec<u8>, style: LineStyle) -> LineEditor {
        LineEditor {
            bytes,
            style,
            used_escaping: false,
        }
    }

    /// The line as edited so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether any value written so far depends on the escaping dialect (see
    /// [`json::dialect_free`]): when none did, the neighbouring lines' escaping evidence
    /// did not matter to the result.
    pub fn used_escaping(&self) -> bool {
        self.used_escaping
    }

    fn note_written(&mut self, value: &Value) {
        self.used_escaping |= !json::dialect_free(value);
    }

    /// The key as this line spells it.
    fn spelling<'k>(&self, key: &'k str) -> Result<&'k str, LineError> {
        let Some(&(_, alias)) = ALIASES.iter().find(|(k, _)| *k == key) else {
            return Ok(key);
        };
        let layout = line::scan_object(&self.bytes)?;
        Ok(
            if layout.find(key).is_none() && layout.find(alias).is_some() {
                alias
            } else {
                key
            },
        )
    }

    /// The current value of `key` (or the alias the line uses).
    pub fn get(&self, key: &str) -> Result<Option<Value>, LineError> {
        line::get_key(&self.bytes, self.spelling(key)?)
    }

    /// Sets `key` to `value` (replacing the value's bytes, or inserting the key at its
    /// place in bd order).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> Result<(), LineError> {
        let key = self.spelling(key)?;
        let value = value.into();
        self.used_escaping |= !json::dialect_free(&Value::String(key.to_string()));
        self.note_written(&value);
        self.bytes = line::set_key(&self.bytes, key, &value, BD_KEY_ORDER, &self.style)?;
        Ok(())
    }

    /// Sets `key` as bd's `omitempty` would write it: an empty value (`""`, `false`, `0`,
    /// `null`, `[]`, `{}`) removes the key instead. `priority` is always set.
    pub fn set_or_remove(&mut self, key: &str, value: impl Into<Value>) -> Result<(), LineError> {
        let value = value.into();
        if key != "priority" && is_empty_value(&value) {
            self.remove(key).map(|_| ())
        } else {
            self.set(key, value)
        }
    }

    /// Removes `key` and its separator; `false` when it was absent.
    pub fn remove(&mut self, key: &str) -> Result<bool, LineError> {
        let key = self.spelling(key)?;
        Ok(match line::remove_key(&self.bytes, key)? {
            Some(b) => {
                self.bytes = b;
                true
            }
            None => false,
        })
    }

    /// Number of elements of the array under `key` (0 when absent).
    pub fn array_len(&self, key: &str) -> Result<usize, LineError> {
        line::array_len(&self.bytes, key)
    }

    /// The elements of the array under `key` (empty when absent).
    pub fn array_values(&self, key: &str) -> Result<Vec<Value>, LineError> {
        line::array_values(&self.bytes, key)
    }

    /// Inserts an element at `index` without re-encoding the other elements.
    pub fn array_insert(
        &mut self,
        key: &str,
        index: usize,
        value: &Value,
    ) -> Result<(), LineError> {
        self.note_written(value);
        self.bytes = line::array_insert(&self.bytes, key, index, value, BD_KEY_ORDER, &self.style)?;
        Ok(())
    }

    /// Appends an element.
    pub fn array_push(&mut self, key: &str, value: &Value) -> Result<(), LineError> {
        let len = self.array_len(key)?;
        self.array_insert(key, len, value)
    }

    /// Removes and returns element `index`; removing the last element removes the key.
    pub fn array_remove(&mut self, key: &str, index: usize) -> Result<Value, LineError> {
        let (bytes, removed) = line::array_remove(&self.bytes, key, index)?;
        self.bytes = bytes;
        Ok(removed)
    }

    /// Adds a label at its sorted position (bd keeps labels sorted); `false` if present.
    pub fn add_label(&mut self, label: &str) -> Result<bool, LineError> {
        let labels = self.array_values("labels")?;
        if labels.iter().any(|l| l.as_str() == Some(label)) {
            return Ok(false);
        }
        let at = labels
            .iter()
            .position(|l| l.as_str().is_some_and(|s| s > label))
            .unwrap_or(labels.len());
        self.array_insert("labels", at, &Value::from(label))?;
        Ok(true)
    }

    /// Removes every occurrence of a label; `false` if it was absent.
    pub fn remove_label(&mut self, label: &str) -> Result<bool, LineError> {
        let mut removed = false;
        while let Some(at) = self
            .array_values("labels")?
            .iter()
            .position(|l| l.as_str() == Some(label))
        {
            self.array_remove("labels", at)?;
            removed = true;
        }
        Ok(removed)
    }

    /// Appends a dependency object in bd's shape (bd orders them by creation).
    pub fn add_dependency(&mut self, dep: &NewDependency) -> Result<(), LineError> {
        self.array_push("dependencies", &dep.to_value())
    }

    /// Removes the dependencies on `depends_on_id`; returns how many were removed.
    pub fn remove_dependency(&mut self, depends_on_id: &str) -> Result<usize, LineError> {
        let mut removed = 0;
        while let Some(at) = self
            .array_values("dependencies")?
            .iter()
            .position(|d| d.get("depends_on_id").and_then(Value::as_str) == Some(depends_on_id))
        {
            self.array_remove("dependencies", at)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Appends a comment object in bd's shape.
    pub fn add_comment(&mut self, comment: &NewComment) -> Result<(), LineError> {
        self.array_push("comments", &comment.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::json::Evidence;

    fn editor(line: &str) -> LineEditor {
        let b = line.as_bytes().to_vec();
        let layout = line::scan_object(&b).expect("object");
        let style = LineStyle::detect(&b, &layout, |_| Evidence::default());
        LineEditor::new(b, style)
    }

    fn text(e: &LineEditor) -> &str {
        std::str::from_utf8(e.bytes()).expect("utf8")
    }

    #[test]
    fn writes_go_to_the_spelling_the_line_uses() {
        let mut e = editor(
            r#"{"id":"a","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}"#,
        );
        e.set("updated_at", "2026-02-02T00:00:00Z").expect("set");
        assert_eq!(
            text(&e),
            r#"{"id":"a","created":"2026-01-01T00:00:00Z","updated":"2026-02-02T00:00:00Z"}"#
        );
        let mut e = editor(r#"{"id":"a","title":"t"}"#);
        e.set("updated_at", "2026-02-02T00:00:00Z").expect("set");
        assert_eq!(
            text(&e),
            r#"{"id":"a","title":"t","updated_at":"2026-02-02T00:00:00Z"}"#
        );
    }

    #[test]
    fn labels_stay_sorted_and_unique() {
        let mut e = editor(r#"{"id":"a","labels":["b","d"]}"#);
        assert!(e.add_label("c").expect("add"));
        assert!(!e.add_label("c").expect("add"));
        assert!(e.add_label("a").expect("add"));
        assert!(e.add_label("z").expect("add"));
        assert_eq!(text(&e), r#"{"id":"a","labels":["a","b","c","d","z"]}"#);
        for l in ["a", "b", "c", "d", "z"] {
            assert!(e.remove_label(l).expect("remove"));
        }
        assert!(!e.remove_label("a").expect("remove"));
        assert_eq!(text(&e), r#"{"id":"a"}"#);
    }

    #[test]
    fn set_or_remove_follows_omitempty() {
        let mut e = editor(r#"{"id":"a","notes":"n","priority":1}"#);
        e.set_or_remove("notes", "").expect("ok");
        e.set_or_remove("priority", 0).expect("ok");
        e.set_or_remove("assignee", "me").expect("ok");
        assert_eq!(text(&e), r#"{"id":"a","priority":0,"assignee":"me"}"#);
    }
}
