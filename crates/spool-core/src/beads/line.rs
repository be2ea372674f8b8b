//! Edits on the bytes of one JSON line that leave every untouched byte as it was.
//!
//! A line is scanned into byte ranges of its top-level members; an edit splices new bytes
//! into those ranges. Nothing is re-serialized except the value being written, and that
//! is written in the line's own dialect ([`LineStyle`]), so a diff shows only the change.
//! All functions here are pure: bytes in, bytes out.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;

use super::json::{write_str, write_value, Escaping, Evidence, Format};

/// Why a line edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line is not a JSON object (at column {column})")]
    NotAnObject { column: usize },
    #[error("malformed JSON at column {column}")]
    Malformed { column: usize },
    #[error("field {key:?} is not an array")]
    NotAnArray { key: String },
    #[error("field {key:?} has {len} elements; index {index} is out of range")]
    IndexOutOfRange {
        key: String,
        index: usize,
        len: usize,
    },
    #[error("field {key:?} is not an object")]
    FieldNotAnObject { key: String },
}

/// One top-level member of the line's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key literal, quotes included.
    pub key: Range<usize>,
    /// The key, unescaped.
    pub name: String,
    /// The value's bytes.
    pub value: Range<usize>,
}

/// The layout of a line holding one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLayout {
    /// Position of `{`.
    pub open: usize,
    /// Position of `}`.
    pub close: usize,
    pub members: Vec<Member>,
}

impl ObjectLayout {
    /// The last member with this key (JSON readers that tolerate duplicates keep the last).
    pub fn find(&self, key: &str) -> Option<usize> {
        self.members.iter().rposition(|m| m.name == key)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

/// Length of a leading UTF-8 byte order mark, which is kept but is not content.
fn bom_len(s: &[u8]) -> usize {
    if s.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    }
}

fn malformed(i: usize) -> LineError {
    LineError::Malformed { column: i + 1 }
}

/// `i` is at an opening quote; returns the index just past the closing quote.
fn string_end(s: &[u8], i: usize) -> Result<usize, LineError> {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'"' => return Ok(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    Err(malformed(i))
}

/// `i` is at the first byte of a value; returns the index just past it.
fn value_end(s: &[u8], i: usize) -> Result<usize, LineError> {
    match s.get(i) {
        None => Err(malformed(i)),
        Some(b'"') => string_end(s, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = string_end(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(malformed(i))
        }
        Some(_) => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b':') && !is_ws(s[j]) {
                j += 1;
            }
            if j == i {
                Err(malformed(i))
            } else {
                Ok(j)
            }
        }
    }
}

fn unescape_key(lit: &[u8]) -> Result<String, ()> {
    let inner = &lit[1..lit.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner)
            .map(str::to_string)
            .map_err(|_| ());
    }
    serde_json::from_slice::<String>(lit).map_err(|_| ())
}

/// Scans the top-level object of a line.
pub fn scan_object(s: &[u8]) -> Result<ObjectLayout, LineError> {
    let open = skip_ws(s, bom_len(s));
    if s.get(open) != Some(&b'{') {
        return Err(LineError::NotAnObject { column: open + 1 });
    }
    let mut members = Vec::new();
    let mut i = skip_ws(s, open + 1);
    if s.get(i) == Some(&b'}') {
        return Ok(ObjectLayout {
            open,
            close: i,
            members,
        });
    }
    loop {
        if s.get(i) != Some(&b'"') {
            return Err(malformed(i));
        }
        let key_end = string_end(s, i)?;
        let name = unescape_key(&s[i..key_end]).map_err(|()| malformed(i))?;
        let mut j = skip_ws(s, key_end);
        if s.get(j) != Some(&b':') {
            return Err(malformed(j));
        }
        j = skip_ws(s, j + 1);
        let v_end = value_end(s, j)?;
        members.push(Member {
            key: i..key_end,
            name,
            value: j..v_end,
        });
        i = skip_ws(s, v_end);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b'}') => {
                return Ok(ObjectLayout {
                    open,
                    close: i,
                    members,
                })
            }
            _ => return Err(malformed(i)),
        }
    }
}

/// Element ranges of the array whose bytes are `s[range]`.
pub fn scan_array(s: &[u8], range: Range<usize>) -> Result<Vec<Range<usize>>, LineError> {
    let start = range.start;
    if s.get(start) != Some(&b'[') {
        return Err(malformed(start));
    }
    let mut elems = Vec::new();
    let mut i = skip_ws(s, start + 1);
    if s.get(i) == Some(&b']') {
        return Ok(elems);
    }
    loop {
        let end = value_end(s, i)?;
        elems.push(i..end);
        i = skip_ws(s, end);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b']') => return Ok(elems),
            _ => return Err(malformed(i)),
        }
    }
}

/// A line's dialect: its separators and escaping, detected from its own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineStyle {
    pub format: Format,
}

impl LineStyle {
    /// Separators from the line's first members; escaping from the line's bytes, where
    /// the line is silent from `fallback(spaced)` (evidence from other lines of the file
    /// in the same separator style), else Go's for compact lines and minimal for spaced
    /// ones.
    pub fn detect(
        line: &[u8],
        layout: &ObjectLayout,
        fallback: impl FnOnce(bool) -> Evidence,
    ) -> LineStyle {
        let key_sep = layout
            .members
            .first()
            .map(|m| line[m.key.end..m.value.start].to_vec())
            .unwrap_or_else(|| b":".to_vec());
        let item_sep = match layout.members.get(0..2) {
            Some([a, b]) => line[a.value.end..b.key.start].to_vec(),
            _ if key_sep.contains(&b' ') => b", ".to_vec(),
            _ => b",".to_vec(),
        };
        // The same test as `starts_spaced`, so fallback evidence comes from lines of the
        // same class.
        let spaced = key_sep.contains(&b' ');
        let default = if spaced {
            Escaping::MINIMAL
        } else {
            Escaping::GO
        };
        let escaping = Evidence::scan(line).resolve(&fallback(spaced), default);
        LineStyle {
            format: Format {
                item_sep,
                key_sep,
                escaping,
            },
        }
    }
}

/// Whether a line is in the spaced dialect (`"key": value`), judged from its first
/// member only: cheap enough to run over every line of a file.
pub fn starts_spaced(s: &[u8]) -> bool {
    let i = skip_ws(s, bom_len(s));
    if s.get(i) != Some(&b'{') {
        return false;
    }
    let k = skip_ws(s, i + 1);
    if s.get(k) != Some(&b'"') {
        return false;
    }
    match string_end(s, k) {
        Ok(end) => s[end..]
            .iter()
            .take(3)
            .take_while(|b| **b != b'"')
            .any(|b| *b == b' '),
        Err(_) => false,
    }
}

fn encode(v: &Value, style: &LineStyle) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v, &style.format);
    out
}

fn splice(line: &[u8], range: Range<usize>, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + with.len());
    out.extend_from_slice(&line[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&line[range.end..]);
    out
}

/// Where a new key goes: after the nearest preceding key of `order` present in the line;
/// failing that before the nearest following one; keys not in `order` go last.
fn insert_position(layout: &ObjectLayout, key: &str, order: &[&str]) -> Insert {
    if let Some(p) = order.iter().position(|k| *k == key) {
        for k in order[..p].iter().rev() {
            if let Some(m) = layout.find(k) {
                return Insert::After(m);
            }
        }
        for k in &order[p + 1..] {
            if let Some(m) = layout.members.iter().position(|m| m.name == *k) {
                return Insert::Before(m);
            }
        }
    }
    match layout.members.len() {
        0 => Insert::Empty,
        n => Insert::After(n - 1),
    }
}

enum Insert {
    After(usize),
    Before(usize),
    Empty,
}

fn member_bytes(key: &str, value: &[u8], style: &LineStyle) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + value.len() + 4);
    write_str(&mut out, key, &style.format.escaping);
    out.extend_from_slice(&style.format.key_sep);
    out.extend_from_slice(value);
    out
}

fn insert_member(
    line: &[u8],
    layout: &ObjectLayout,
    key: &str,
    value: &[u8],
    order: &[&str],
    style: &LineStyle,
) -> Vec<u8> {
    let member = member_bytes(key, value, style);
    let sep = &style.format.item_sep;
    match insert_position(layout, key, order) {
        Insert::After(m) => {
            let at = layout.members[m].value.end;
            splice(line, at..at, &[sep.as_slice(), &member].concat())
        }
        Insert::Before(m) => {
            let at = layout.members[m].key.start;
            splice(line, at..at, &[member.as_slice(), sep].concat())
        }
        Insert::Empty => {
            let at = layout.open + 1;
            splice(line, at..layout.close, &member)
        }
    }
}

/// Sets `key` to `value`: replaces the value's bytes if the key exists (and leaves the
/// line untouched when the value is already equal), else inserts the member at its place
/// in `order`.
pub fn set_key(
    line: &[u8],
    key: &str,
    value: &Value,
    order: &[&str],
    style: &LineStyle,
) -> Result<Vec<u8>, LineError> {
    let layout = scan_object(line)?;
    match layout.find(key) {
        Some(m) => {
            let range = layout.members[m].value.clone();
            if serde_json::from_slice::<Value>(&line[range.clone()])
                .ok()
                .as_ref()
                == Some(value)
            {
                return Ok(line.to_vec());
            }
            Ok(splice(line, range, &encode(value, style)))
        }
        None => Ok(insert_member(
            line,
            &layout,
            key,
            &encode(value, style),
            order,
            style,
        )),
    }
}

/// Removes `key` and one adjacent separator. `None` when the key is absent.
pub fn remove_key(line: &[u8], key: &str) -> Result<Option<Vec<u8>>, LineError> {
    let layout = scan_object(line)?;
    let Some(m) = layout.find(key) else {
        return Ok(None);
    };
    let ms = &layout.members;
    let range = if m + 1 < ms.len() {
        ms[m].key.start..ms[m + 1].key.start
    } else if m > 0 {
        ms[m - 1].value.end..ms[m].value.end
    } else {
        ms[m].key.start..ms[m].value.end
    };
    Ok(Some(splice(line, range, b"")))
}

/// The current value of `key`, parsed.
pub fn get_key(line: &[u8], key: &str) -> Result<Option<Value>, LineError> {
    let layout = scan_object(line)?;
    Ok(match layout.find(key) {
        Some(m) => {
            let r = layout.members[m].value.clone();
            Some(serde_json::from_slice(&line[r.clone()]).map_err(|_| malformed(r.start))?)
        }
        None => None,
    })
}

/// A member's index and its array elements' ranges.
type ArrayAt = (usize, Vec<Range<usize>>);

/// The array under `key` as its element ranges; an absent key is an empty array.
fn array_of(line: &[u8], layout: &ObjectLayout, key: &str) -> Result<Option<ArrayAt>, LineError> {
    let Some(m) = layout.find(key) else {
        return Ok(None);
    };
    let r = layout.members[m].value.clone();
    if line.get(r.start) != Some(&b'[') {
        return Err(LineError::NotAnArray {
            key: key.to_string(),
        });
    }
    Ok(Some((m, scan_array(line, r)?)))
}

/// Number of elements of the array under `key` (0 when absent).
pub fn array_len(line: &[u8], key: &str) -> Result<usize, LineError> {
    let layout = scan_object(line)?;
    Ok(array_of(line, &layout, key)?.map_or(0, |(_, e)| e.len()))
}

/// The elements of the array under `key`, each parsed (empty when absent).
pub fn array_values(line: &[u8], key: &str) -> Result<Vec<Value>, LineError> {
    let layout = scan_object(line)?;
    let Some((_, elems)) = array_of(line, &layout, key)? else {
        return Ok(Vec::new());
    };
    elems
        .into_iter()
        .map(|r| serde_json::from_slice(&line[r.clone()]).map_err(|_| malformed(r.start)))
        .collect()
}

/// Inserts `value` at `index` into the array under `key`, leaving the other elements'
/// bytes alone. An absent key becomes a one-element array placed by `order`.
pub fn array_insert(
    line: &[u8],
    key: &str,
    index: usize,
    value: &Value,
    order: &[&str],
    style: &LineStyle,
) -> Result<Vec<u8>, LineError> {
    let layout = scan_object(line)?;
    let Some((m, elems)) = array_of(line, &layout, key)? else {
        if index != 0 {
            return Err(LineError::IndexOutOfRange {
                key: key.to_string(),
                index,
                len: 0,
            });
        }
        return set_key(line, key, &Value::Array(vec![value.clone()]), order, style);
    };
    if index > elems.len() {
        return Err(LineError::IndexOutOfRange {
            key: key.to_string(),
            index,
            len: elems.len(),
        });
    }
    let enc = encode(value, style);
    // The array's own separator when it shows one, else the line's.
    let sep: Cow<[u8]> = match elems.get(0..2) {
        Some([a, b]) => Cow::Borrowed(&line[a.end..b.start]),
        _ => Cow::Borrowed(&style.format.item_sep),
    };
    Ok(if elems.is_empty() {
        let r = layout.members[m].value.clone();
        splice(line, r.start + 1..r.end - 1, &enc)
    } else if index < elems.len() {
        let at = elems[index].start;
        splice(line, at..at, &[enc.as_slice(), &sep].concat())
    } else {
        let at = elems[elems.len() - 1].end;
        splice(line, at..at, &[sep.as_ref(), &enc].concat())
    })
}

/// Removes element `index` of the array under `key` and returns the new line and the
/// removed value. Removing the last element removes the key, as bd omits empty arrays.
pub fn array_remove(line: &[u8], key: &str, index: usize) -> Result<(Vec<u8>, Value), LineError> {
    let layout = scan_object(line)?;
    let (_, elems) = array_of(line, &layout, key)?.unwrap_or((0, Vec::new()));
    let Some(target) = elems.get(index) else {
        return Err(LineError::IndexOutOfRange {
            key: key.to_string(),
            index,
            len: elems.len(),
        });
    };
    let removed =
        serde_json::from_slice(&line[target.clone()]).map_err(|_| malformed(target.start))?;
    if elems.len() == 1 {
        let out = remove_key(line, key)?.expect("the key was found above");
        return Ok((out, removed));
    }
    let range = if index + 1 < elems.len() {
        elems[index].start..elems[index + 1].start
    } else {
        elems[index - 1].end..elems[index].end
    };
    Ok((splice(line, range, b""), removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDER: &[&str] = &["id", "title", "status", "priority", "labels", "comments"];

    fn style(line: &[u8]) -> LineStyle {
        let layout = scan_object(line).expect("object");
        LineStyle::detect(line, &layout, |_| Evidence::default())
    }

    fn set(line: &str, key: &str, v: Value) -> String {
        let st = style(line.as_bytes());
        String::from_utf8(set_key(line.as_bytes(), key, &v, ORDER, &st).expect("set"))
            .expect("utf8")
    }

    #[test]
    fn scan_finds_member_ranges_with_nesting_and_escapes() {
        let line = br#" {"a\"b": {"x":[1,"]"]}, "c" : -1.5e3 ,"d":"\\"} "#;
        let l = scan_object(line).expect("scans");
        let names: Vec<_> = l.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a\"b", "c", "d"]);
        assert_eq!(&line[l.members[0].value.clone()], br#"{"x":[1,"]"]}"#);
        assert_eq!(&line[l.members[1].value.clone()], b"-1.5e3");
        assert_eq!(&line[l.members[2].value.clone()], br#""\\""#);
    }

    #[test]
    fn scan_rejects_non_objects_and_truncation() {
        assert_eq!(
            scan_object(b"[1]"),
            Err(LineError::NotAnObject { column: 1 })
        );
        assert!(matches!(
            scan_object(br#"{"a":"x"#),
            Err(LineError::Malformed { .. })
        ));
        assert!(matches!(
            scan_object(br#"{"a":1,}"#),
            Err(LineError::Malformed { .. })
        ));
    }

    #[test]
    fn set_replaces_only_the_value() {
        assert_eq!(
            set(
                r#"{"id":"a","status":"open","zz":{"k":1}}"#,
                "status",
                json!("closed")
            ),
            r#"{"id":"a","status":"closed","zz":{"k":1}}"#
        );
        assert_eq!(
            set(
                r#"{"id": "a", "status": "open"}"#,
                "status",
                json!("in_progress")
            ),
            r#"{"id": "a", "status": "in_progress"}"#
        );
    }

    #[test]
    fn set_equal_value_keeps_original_bytes() {
        let line = r#"{"id":"a","title":"x\u003cy"}"#;
        assert_eq!(set(line, "title", json!("x<y")), line);
    }

    #[test]
    fn new_key_goes_after_nearest_preceding_known_key() {
        assert_eq!(
            set(r#"{"id":"a","priority":1,"x":2}"#, "status", json!("open")),
            r#"{"id":"a","status":"open","priority":1,"x":2}"#
        );
        // Different existing order: still after the nearest preceding known key.
        assert_eq!(
            set(r#"{"priority":1,"id":"a"}"#, "title", json!("t")),
            r#"{"priority":1,"id":"a","title":"t"}"#
        );
        // No preceding key: before the nearest following one.
        assert_eq!(
            set(r#"{"title":"t"}"#, "id", json!("a")),
            r#"{"id":"a","title":"t"}"#
        );
        // Unknown key: last.
        assert_eq!(
            set(r#"{"id":"a","title":"t"}"#, "zz", json!(true)),
            r#"{"id":"a","title":"t","zz":true}"#
        );
        assert_eq!(set(r#"{ }"#, "id", json!("a")), r#"{"id":"a"}"#);
        assert_eq!(
            set(r#"{"id": "a", "priority": 1}"#, "labels", json!(["x", "y"])),
            r#"{"id": "a", "priority": 1, "labels": ["x", "y"]}"#
        );
    }

    #[test]
    fn remove_takes_one_separator() {
        let rm = |l: &str, k: &str| {
            remove_key(l.as_bytes(), k)
                .expect("ok")
                .map(|v| String::from_utf8(v).expect("utf8"))
        };
        assert_eq!(
            rm(r#"{"a":1, "b":2, "c":3}"#, "a").as_deref(),
            Some(r#"{"b":2, "c":3}"#)
        );
        assert_eq!(
            rm(r#"{"a":1, "b":2, "c":3}"#, "b").as_deref(),
            Some(r#"{"a":1, "c":3}"#)
        );
        assert_eq!(
            rm(r#"{"a":1, "b":2, "c":3}"#, "c").as_deref(),
            Some(r#"{"a":1, "b":2}"#)
        );
        assert_eq!(rm(r#"{"a":1}"#, "a").as_deref(), Some(r#"{}"#));
        assert_eq!(rm(r#"{"a":1}"#, "z"), None);
    }

    #[test]
    fn array_insert_and_remove_keep_other_elements() {
        let line = br#"{"id":"a","labels":["b", "d"],"x":[]}"#;
        let st = style(line);
        let ins = |l: &[u8], k: &str, i: usize, v: Value| {
            array_insert(l, k, i, &v, ORDER, &st).expect("insert")
        };
        assert_eq!(
            ins(line, "labels", 0, json!("a")),
            br#"{"id":"a","labels":["a", "b", "d"],"x":[]}"#
        );
        assert_eq!(
            ins(line, "labels", 1, json!("c")),
            br#"{"id":"a","labels":["b", "c", "d"],"x":[]}"#
        );
        assert_eq!(
            ins(line, "labels", 2, json!("e")),
            br#"{"id":"a","labels":["b", "d", "e"],"x":[]}"#
        );
        assert_eq!(
            ins(line, "x", 0, json!(1)),
            br#"{"id":"a","labels":["b", "d"],"x":[1]}"#
        );
        assert_eq!(
            ins(br#"{"id":"a","title":"t"}"#, "labels", 0, json!("z")),
            br#"{"id":"a","title":"t","labels":["z"]}"#
        );
        assert_eq!(
            array_insert(line, "labels", 3, &json!("q"), ORDER, &st),
            Err(LineError::IndexOutOfRange {
                key: "labels".into(),
                index: 3,
                len: 2
            })
        );
        assert_eq!(
            array_insert(line, "id", 0, &json!("q"), ORDER, &st),
            Err(LineError::NotAnArray { key: "id".into() })
        );
        let (out, v) = array_remove(line, "labels", 0).expect("remove");
        assert_eq!(
            (out.as_slice(), v),
            (
                br#"{"id":"a","labels":["d"],"x":[]}"#.as_slice(),
                json!("b")
            )
        );
        let (out, _) = array_remove(line, "labels", 1).expect("remove");
        assert_eq!(out, br#"{"id":"a","labels":["b"],"x":[]}"#);
        let (out, _) = array_remove(br#"{"id":"a","labels":["b"]}"#, "labels", 0).expect("remove");
        assert_eq!(out, br#"{"id":"a"}"#);
    }

    #[test]
    fn style_detection_reads_separators_and_escapes() {
        let spaced = r#"{"id": "a", "title": "x \u2208 y"}"#.as_bytes();
        let st = style(spaced);
        assert_eq!(st.format.key_sep, b": ");
        assert_eq!(st.format.item_sep, b", ");
        assert!(st.format.escaping.ascii_only);
        assert!(!st.format.escaping.html);
        let go = style(br#"{"id":"a","title":"\u003cx\u003e"}"#);
        assert!(go.format.escaping.html && !go.format.escaping.ascii_only);
        let raw = style(br#"{"id":"a","title":"<x>"}"#);
        assert!(!raw.format.escaping.html);
    }
}
