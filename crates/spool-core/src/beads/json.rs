//! JSON text in the dialects real backlog files are written in.
//!
//! bd (Go `encoding/json`), its Rust ports and ad-hoc Python scripts all wrote
//! `.beads/issues.jsonl`, each with its own escaping and separators. To change one value
//! without the diff showing a re-encoded line, a value must be written the way the line's
//! writer would have written it: that is what [`Escaping`] and [`Format`] describe, and
//! [`Evidence`] detects from bytes already on disk.

use serde_json::Value;

/// How string contents are escaped. Every writer escapes `"`, `\`, `\n`, `\r`, `\t` and
/// other control characters; they differ in the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaping {
    /// `<` `>` `&` as `\u003c` `\u003e` `\u0026` (Go's default, "HTML-safe").
    pub html: bool,
    /// U+2028 and U+2029 as `\u2028` `\u2029` (Go).
    pub line_separators: bool,
    /// Every non-ASCII character (and DEL) as `\uXXXX`, astral ones as surrogate pairs
    /// (Python's `ensure_ascii`).
    pub ascii_only: bool,
    /// Backspace and form feed as `\b` `\f` (Python, serde_json) rather than `\u0008`
    /// `\u000c` (Go).
    pub short_control: bool,
    /// `/` as `\/` (PHP and some JavaScript encoders).
    pub slash: bool,
}

impl Escaping {
    /// Go `encoding/json` as classic bd used it.
    pub const GO: Escaping = Escaping {
        html: true,
        line_separators: true,
        ascii_only: false,
        short_control: false,
        slash: false,
    };

    /// Python `json.dumps(..., ensure_ascii=False)`, serde_json and beads_rust: only what
    /// JSON requires.
    pub const MINIMAL: Escaping = Escaping {
        html: false,
        line_separators: false,
        ascii_only: false,
        short_control: true,
        slash: false,
    };
}

/// Separators and escaping: everything needed to write a value in one line's dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// Between array elements and object members, comma included: `,` or `, `.
    pub item_sep: Vec<u8>,
    /// Between a key and its value, colon included: `:` or `: `.
    pub key_sep: Vec<u8>,
    pub escaping: Escaping,
}

impl Format {
    /// Classic bd: compact separators, Go escaping.
    pub fn go() -> Format {
        Format {
            item_sep: b",".to_vec(),
            key_sep: b":".to_vec(),
            escaping: Escaping::GO,
        }
    }

    /// Whether this is the spaced (`", "`, `": "`) dialect.
    pub fn is_spaced(&self) -> bool {
        self.key_sep.contains(&b' ') || self.item_sep.contains(&b' ')
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u_escape(out: &mut Vec<u8>, unit: u16) {
    out.extend_from_slice(b"\\u");
    for shift in [12u16, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)]);
    }
}

/// Writes `s` as a JSON string literal, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str, esc: &Escaping) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    // Copy runs of bytes that need no escape in one go; only stop at bytes that might.
    let mut run_start = 0;
    for (i, ch) in s.char_indices() {
        let escape: Option<&[u8]> = match ch {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{8}' if esc.short_control => Some(b"\\b"),
            '\u{c}' if esc.short_control => Some(b"\\f"),
            '/' if esc.slash => Some(b"\\/"),
            _ => None,
        };
        let needs_u = match ch {
            _ if escape.is_some() => false,
            '\u{0}'..='\u{1f}' => true,
            '<' | '>' | '&' => esc.html,
            '\u{2028}' | '\u{2029}' => esc.line_separators || esc.ascii_only,
            '\u{7f}'.. => esc.ascii_only,
            _ => false,
        };
        if escape.is_none() && !needs_u {
            continue;
        }
        out.extend_from_slice(&bytes[run_start..i]);
        run_start = i + ch.len_utf8();
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    push_u_escape(out, *unit);
                }
            }
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Whether `v` is written the same in every escaping dialect: none of its strings (or
/// object keys) holds a character whose escaping differs between writers (`/`, `<`, `>`,
/// `&`, backspace, form feed, anything from U+007F up).
pub fn dialect_free(v: &Value) -> bool {
    let plain = |s: &str| {
        !s.chars()
            .any(|c| matches!(c, '/' | '<' | '>' | '&' | '\u{8}' | '\u{c}' | '\u{7f}'..))
    };
    match v {
        Value::String(s) => plain(s),
        Value::Array(a) => a.iter().all(dialect_free),
        Value::Object(o) => o.iter().all(|(k, v)| plain(k) && dialect_free(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Writes any JSON value in the given dialect. Object members keep the map's order
/// (serde_json is built with `preserve_order`).
pub fn write_value(out: &mut Vec<u8>, v: &Value, fmt: &Format) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s, &fmt.escaping),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&fmt.item_sep);
                }
                write_value(out, item, fmt);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&fmt.item_sep);
                }
                write_str(out, k, &fmt.escaping);
                out.extend_from_slice(&fmt.key_sep);
                write_value(out, item, fmt);
            }
            out.push(b'}');
        }
    }
}

/// Counts of escaping choices seen in existing bytes: for each dimension of
/// [`Escaping`], how often the writer escaped and how often it wrote the raw character.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    pub html_escaped: u32,
    pub html_raw: u32,
    pub line_sep_escaped: u32,
    pub line_sep_raw: u32,
    pub non_ascii_escaped: u32,
    pub non_ascii_raw: u32,
    pub control_short: u32,
    pub control_long: u32,
    pub slash_escaped: u32,
    pub slash_raw: u32,
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

impl Evidence {
    /// Scans JSON text. `<`, `>`, `&`, `/` and non-ASCII bytes can only occur inside
    /// strings and escapes only start with `\`, so one pass over the bytes without
    /// tracking string state is exact for valid JSON.
    pub fn scan(text: &[u8]) -> Evidence {
        let mut e = Evidence::default();
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            match b {
                b'\\' => {
                    let next = text.get(i + 1).copied();
                    match next {
                        Some(b'u') => {
                            let code = text.get(i + 2..i + 6).and_then(|h| {
                                h.iter()
                                    .try_fold(0u32, |acc, &d| Some(acc * 16 + hex_val(d)?))
                            });
                            match code {
                                Some(0x3c | 0x3e | 0x26) => e.html_escaped += 1,
                                Some(0x2028 | 0x2029) => e.line_sep_escaped += 1,
                                Some(0x08 | 0x0c) => e.control_long += 1,
                                // A low surrogate is the second half of a pair already counted.
                                Some(0xdc00..=0xdfff) => {}
                                Some(c) if c >= 0x7f => e.non_ascii_escaped += 1,
                                _ => {}
                            }
                            i += 6;
                        }
                        Some(b'b' | b'f') => {
                            e.control_short += 1;
                            i += 2;
                        }
                        Some(b'/') => {
                            e.slash_escaped += 1;
                            i += 2;
                        }
                        _ => i += 2,
                    }
                    continue;
                }
                b'<' | b'>' | b'&' => e.html_raw += 1,
                b'/' => e.slash_raw += 1,
                0xe2 if text.get(i + 1) == Some(&0x80)
                    && matches!(text.get(i + 2), Some(0xa8 | 0xa9)) =>
                {
                    e.line_sep_raw += 1;
                    e.non_ascii_raw += 1;
                }
                // Count characters, not bytes: only lead bytes.
                0xc0.. => e.non_ascii_raw += 1,
                _ => {}
            }
            i += 1;
        }
        e
    }

    /// For each dimension (html, line separators, non-ASCII, control, slash): whether
    /// there is any evidence at all.
    pub fn decided(&self) -> [bool; 5] {
        [
            self.html_escaped + self.html_raw > 0,
            self.line_sep_escaped + self.line_sep_raw > 0,
            self.non_ascii_escaped + self.non_ascii_raw > 0,
            self.control_short + self.control_long > 0,
            self.slash_escaped + self.slash_raw > 0,
        ]
    }

    pub fn add(&mut self, o: &Evidence) {
        self.html_escaped += o.html_escaped;
        self.html_raw += o.html_raw;
        self.line_sep_escaped += o.line_sep_escaped;
        self.line_sep_raw += o.line_sep_raw;
        self.non_ascii_escaped += o.non_ascii_escaped;
        self.non_ascii_raw += o.non_ascii_raw;
        self.control_short += o.control_short;
        self.control_long += o.control_long;
        self.slash_escaped += o.slash_escaped;
        self.slash_raw += o.slash_raw;
    }

    /// Decides each dimension from this evidence, else from `fallback` (e.g. other lines
    /// of the same writer), else from `default`.
    pub fn resolve(&self, fallback: &Evidence, default: Escaping) -> Escaping {
        fn pick(esc: u32, raw: u32) -> Option<bool> {
            match (esc, raw) {
                (0, 0) => None,
                (e, r) => Some(e >= r),
            }
        }
        let dim = |f: fn(&Evidence) -> (u32, u32)| {
            let (e, r) = f(self);
            pick(e, r).or_else(|| {
                let (e, r) = f(fallback);
                pick(e, r)
            })
        };
        let html = dim(|e| (e.html_escaped, e.html_raw)).unwrap_or(default.html);
        let ascii_only =
            dim(|e| (e.non_ascii_escaped, e.non_ascii_raw)).unwrap_or(default.ascii_only);
        // Writers that escape `<>&` (Go) also escape U+2028/2029; ensure_ascii implies it.
        let line_separators = dim(|e| (e.line_sep_escaped, e.line_sep_raw))
            .unwrap_or(ascii_only || html || default.line_separators);
        let short_control =
            dim(|e| (e.control_short, e.control_long)).unwrap_or(default.short_control);
        let slash = dim(|e| (e.slash_escaped, e.slash_raw)).unwrap_or(default.slash);
        Escaping {
            html,
            line_separators,
            ascii_only,
            short_control,
            slash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_free_values_are_written_alike_in_every_dialect() {
        let all = Escaping {
            html: true,
            line_separators: true,
            ascii_only: true,
            short_control: true,
            slash: true,
        };
        let dialects = [Escaping::GO, Escaping::MINIMAL, all];
        let fmt = |escaping: Escaping| Format {
            item_sep: b",".to_vec(),
            key_sep: b":".to_vec(),
            escaping,
        };
        for text in [
            "plain text, \"quoted\"\n\ttabbed",
            "a/b",
            "<b>",
            "caf\u{e9}",
            "\u{2028}",
            "\u{8}",
            "\u{7f}",
        ] {
            let v = serde_json::json!({ "k": [text, 1, null] });
            let written: Vec<Vec<u8>> = dialects
                .iter()
                .map(|e| {
                    let mut out = Vec::new();
                    write_value(&mut out, &v, &fmt(*e));
                    out
                })
                .collect();
            let alike = written.windows(2).all(|w| w[0] == w[1]);
            assert_eq!(dialect_free(&v), alike, "{text:?}");
        }
    }

    fn s(v: &str, esc: Escaping) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v, &esc);
        String::from_utf8(out).expect("valid UTF-8 output")
    }

    #[test]
    fn go_escaping_matches_encoding_json() {
        assert_eq!(
            s(
                "a<b>&c \u{2028}\u{2029} é \u{8}\u{c}\u{1}\"\\\n\r\t/",
                Escaping::GO
            ),
            r#""a\u003cb\u003e\u0026c \u2028\u2029 é \u0008\u000c\u0001\"\\\n\r\t/""#
        );
    }

    #[test]
    fn ascii_only_uses_surrogate_pairs_and_lowercase_hex() {
        let esc = Escaping {
            ascii_only: true,
            ..Escaping::MINIMAL
        };
        assert_eq!(s("∈ 😀 <\u{7f}", esc), r#""\u2208 \ud83d\ude00 <\u007f""#);
    }

    #[test]
    fn minimal_escaping_keeps_raw_characters() {
        assert_eq!(
            s("<é>\u{8}\u{2028}", Escaping::MINIMAL),
            "\"<é>\\b\u{2028}\""
        );
    }

    #[test]
    fn evidence_skips_escaped_backslashes() {
        // `\\u0026` is an escaped backslash followed by text, not an escape of `&`.
        let e = Evidence::scan(br#"{"a":"x \\u0026 y < z"}"#);
        assert_eq!(e.html_escaped, 0);
        assert_eq!(e.html_raw, 1);
        let e = Evidence::scan(r#"{"a":"\u003c é \u2208\ud83d\ude00 \b"}"#.as_bytes());
        assert_eq!(
            (
                e.html_escaped,
                e.non_ascii_raw,
                e.non_ascii_escaped,
                e.control_short
            ),
            (1, 1, 2, 1)
        );
    }

    #[test]
    fn resolve_prefers_line_then_fallback_then_default() {
        let line = Evidence {
            html_raw: 2,
            ..Evidence::default()
        };
        let file = Evidence {
            non_ascii_escaped: 5,
            html_escaped: 9,
            ..Evidence::default()
        };
        let esc = line.resolve(&file, Escaping::GO);
        assert!(!esc.html);
        assert!(esc.ascii_only);
        assert!(esc.line_separators);
        assert!(!esc.short_control);
        let none = Evidence::default().resolve(&Evidence::default(), Escaping::MINIMAL);
        assert_eq!(none, Escaping::MINIMAL);
    }
}
