//! `{name.path}` placeholders inside argv elements.
//!
//! Issue text must never reach a shell, so substitution works on each argv element
//! separately and every element stays exactly one argument, whatever the substituted
//! text contains (spaces, quotes, `$(...)`, `;`). A placeholder names a dotted path
//! into a JSON value (`{issue.id}`, `{issue.labels.0}`); `{{` and `}}` stand for
//! literal braces. A placeholder that names nothing is an error, never an empty string,
//! so a typo in a template cannot silently run a different command.

use serde_json::Value;
use std::fmt;

/// Why a template could not be rendered. `arg` is the index of the argv element
/// (0 for a single string), `offset` the byte offset of the problem inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVarError {
    pub arg: usize,
    pub offset: usize,
    pub kind: TemplateVarErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateVarErrorKind {
    /// `{` without a closing `}`.
    Unterminated,
    /// A single `}` outside a placeholder (write `}}` for a literal brace).
    UnmatchedClose,
    /// The text between the braces is not a dotted name (`[A-Za-z0-9_-]` segments).
    InvalidName(String),
    /// The path does not exist in the input.
    Unknown(String),
    /// The path exists but holds `null`, which has no argument form.
    Null(String),
}

impl fmt::Display for TemplateVarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (arg, at) = (self.arg, self.offset);
        match &self.kind {
            TemplateVarErrorKind::Unterminated => {
                write!(f, "argument {arg}, byte {at}: `{{` is never closed (write `{{{{` for a literal brace)")
            }
            TemplateVarErrorKind::UnmatchedClose => {
                write!(f, "argument {arg}, byte {at}: unmatched `}}` (write `}}}}` for a literal brace)")
            }
            TemplateVarErrorKind::InvalidName(name) => write!(
                f,
                "argument {arg}, byte {at}: `{{{name}}}` is not a placeholder name (dotted segments of letters, digits, `_`, `-`)"
            ),
            TemplateVarErrorKind::Unknown(name) => {
                write!(f, "argument {arg}, byte {at}: unknown placeholder `{{{name}}}`")
            }
            TemplateVarErrorKind::Null(name) => {
                write!(f, "argument {arg}, byte {at}: placeholder `{{{name}}}` is null")
            }
        }
    }
}

impl std::error::Error for TemplateVarError {}

/// Renders every element of `args` with [`render`]; the result has exactly as many
/// elements as `args`.
pub fn render_argv(args: &[String], vars: &Value) -> Result<Vec<String>, TemplateVarError> {
    args.iter()
        .enumerate()
        .map(|(i, a)| render(a, vars).map_err(|e| TemplateVarError { arg: i, ..e }))
        .collect()
}

/// Substitutes the placeholders of one string. Strings are inserted as they are,
/// numbers and booleans in their JSON form, objects and arrays as compact JSON.
pub fn render(template: &str, vars: &Value) -> Result<String, TemplateVarError> {
    let err = |offset, kind| TemplateVarError {
        arg: 0,
        offset,
        kind,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut pos = 0;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let at = pos + i;
        let brace = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if brace == b'}' {
            let Some(tail) = after.strip_prefix('}') else {
                return Err(err(at, TemplateVarErrorKind::UnmatchedClose));
            };
            out.push('}');
            rest = tail;
            pos = at + 2;
            continue;
        }
        if let Some(tail) = after.strip_prefix('{') {
            out.push('{');
            rest = tail;
            pos = at + 2;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(err(at, TemplateVarErrorKind::Unterminated));
        };
        let name = &after[..end];
        if !is_valid_name(name) {
            return Err(err(at, TemplateVarErrorKind::InvalidName(name.to_string())));
        }
        match lookup(vars, name) {
            None => return Err(err(at, TemplateVarErrorKind::Unknown(name.to_string()))),
            Some(Value::Null) => return Err(err(at, TemplateVarErrorKind::Null(name.to_string()))),
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
        pos = at + 1 + end + 1;
    }
    out.push_str(rest);
    Ok(out)
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Follows a dotted path: object keys by name, array elements by decimal index.
fn lookup<'v>(vars: &'v Value, name: &str) -> Option<&'v Value> {
    name.split('.').try_fold(vars, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Value {
        json!({
            "issue": {
                "id": "bd-a1b2",
                "title": "Fix \"it\"; rm -rf / $(whoami) `id`",
                "priority": 2,
                "open": true,
                "labels": ["backend", "urgent"],
                "meta": {"k": "v"},
                "nothing": null
            },
            "run-id": "r_1"
        })
    }

    #[test]
    fn substitutes_nested_paths_and_keeps_surrounding_text() {
        let got = render("issue-{issue.id}/p{issue.priority}", &vars()).expect("renders");
        assert_eq!(got, "issue-bd-a1b2/p2");
    }

    #[test]
    fn shell_metacharacters_stay_inside_one_argument() {
        let args = vec!["--title".to_string(), "{issue.title}".to_string()];
        let got = render_argv(&args, &vars()).expect("renders");
        assert_eq!(got, vec!["--title", "Fix \"it\"; rm -rf / $(whoami) `id`"]);
    }

    #[test]
    fn array_index_bool_object_and_dashed_keys() {
        assert_eq!(render("{issue.labels.1}", &vars()).expect("ok"), "urgent");
        assert_eq!(render("{issue.open}", &vars()).expect("ok"), "true");
        assert_eq!(render("{issue.meta}", &vars()).expect("ok"), r#"{"k":"v"}"#);
        assert_eq!(render("{run-id}", &vars()).expect("ok"), "r_1");
    }

    #[test]
    fn doubled_braces_are_literal() {
        let got = render("{{issue.id}} = {issue.id} }}", &vars()).expect("renders");
        assert_eq!(got, "{issue.id} = bd-a1b2 }");
        assert_eq!(render("{{{issue.id}}}", &vars()).expect("ok"), "{bd-a1b2}");
    }

    #[test]
    fn unknown_placeholder_is_named_with_argument_and_offset() {
        let args = vec!["ok".to_string(), "x {issue.nope} y".to_string()];
        let e = render_argv(&args, &vars()).expect_err("unknown");
        assert_eq!(e.arg, 1);
        assert_eq!(e.offset, 2);
        assert_eq!(e.kind, TemplateVarErrorKind::Unknown("issue.nope".into()));
        assert!(e.to_string().contains("{issue.nope}"), "{e}");
    }

    #[test]
    fn index_past_end_and_path_through_scalar_are_unknown() {
        for t in ["{issue.labels.9}", "{issue.id.x}", "{issue.labels.first}"] {
            let e = render(t, &vars()).expect_err(t);
            assert!(
                matches!(e.kind, TemplateVarErrorKind::Unknown(_)),
                "{t}: {e:?}"
            );
        }
    }

    #[test]
    fn null_is_an_error() {
        let e = render("{issue.nothing}", &vars()).expect_err("null");
        assert_eq!(e.kind, TemplateVarErrorKind::Null("issue.nothing".into()));
    }

    #[test]
    fn malformed_templates_are_errors() {
        let e = render("a {issue.id", &vars()).expect_err("unterminated");
        assert_eq!((e.offset, e.kind), (2, TemplateVarErrorKind::Unterminated));
        let e = render("a } b", &vars()).expect_err("close");
        assert_eq!(
            (e.offset, e.kind),
            (2, TemplateVarErrorKind::UnmatchedClose)
        );
        for bad in [
            "{}",
            "{ issue.id }",
            "{issue..id}",
            "{.id}",
            "{a b}",
            "{$(x)}",
        ] {
            let e = render(bad, &vars()).expect_err(bad);
            assert!(
                matches!(e.kind, TemplateVarErrorKind::InvalidName(_)),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        for t in ["", "plain", "ünïcödé ✓", "a$b;c"] {
            assert_eq!(render(t, &Value::Null).expect("ok"), t);
        }
    }

    #[test]
    fn substituted_text_is_not_rescanned() {
        let v = json!({"a": "{b}", "b": "no"});
        assert_eq!(render("{a}", &v).expect("ok"), "{b}");
    }

    proptest::proptest! {
        /// Escaping any text and rendering it gives the text back, and argv length
        /// never changes.
        #[test]
        fn escaped_text_round_trips(s in ".*") {
            let escaped = s.replace('{', "{{").replace('}', "}}");
            proptest::prop_assert_eq!(render(&escaped, &Value::Null).expect("escaped"), s.clone());
            let args = vec![escaped.clone(), escaped];
            proptest::prop_assert_eq!(render_argv(&args, &Value::Null).expect("ok").len(), 2);
        }
    }
}
