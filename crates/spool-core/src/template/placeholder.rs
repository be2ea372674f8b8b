//! `{issue.id}`-style placeholders in argv elements, cwd and env values.
//!
//! A placeholder is replaced inside its own string, so an argv element stays exactly one
//! argument whatever the value holds (spaces, quotes, `;`): nothing goes through a shell.
//! `{{` and `}}` stand for literal braces.

use serde_json::Value;

enum Segment<'a> {
    Text(String),
    Path(&'a str),
}

fn segments(s: &str) -> Result<Vec<Segment<'_>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            text.push('{');
            rest = &rest[2..];
        } else if rest.starts_with("}}") {
            text.push('}');
            rest = &rest[2..];
        } else if c == '{' {
            let end = rest.find('}').ok_or_else(|| {
                format!("unclosed placeholder in {s:?} (write {{{{ for a literal brace)")
            })?;
            let path = &rest[1..end];
            if path.is_empty()
                || !path.split('.').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
            {
                return Err(format!("bad placeholder {{{path}}} in {s:?}"));
            }
            if !text.is_empty() {
                out.push(Segment::Text(std::mem::take(&mut text)));
            }
            out.push(Segment::Path(path));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(format!(
                "stray '}}' in {s:?} (write }}}} for a literal brace)"
            ));
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// Checks placeholder syntax (at template load).
pub fn check(s: &str) -> Result<(), String> {
    segments(s).map(|_| ())
}

/// Substitutes placeholders from `ctx`. A missing or null value is an error.
pub fn render(s: &str, ctx: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    for seg in segments(s)? {
        match seg {
            Segment::Text(t) => out.push_str(&t),
            Segment::Path(path) => {
                let mut cur = ctx;
                for part in path.split('.') {
                    cur = match cur {
                        Value::Object(m) => m.get(part),
                        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                        _ => None,
                    }
                    .ok_or_else(|| format!("placeholder {{{path}}} has no value"))?;
                }
                match cur {
                    Value::String(v) => out.push_str(v),
                    Value::Null => return Err(format!("placeholder {{{path}}} is null")),
                    Value::Number(n) => out.push_str(&n.to_string()),
                    Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                    other => out.push_str(&other.to_string()),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_within_one_argument() {
        let ctx = json!({"issue": {"id": "bd-1", "title": "fix; rm -rf / && echo"}, "n": 3});
        assert_eq!(render("{issue.id}", &ctx), Ok("bd-1".into()));
        assert_eq!(
            render("--title={issue.title}", &ctx),
            Ok("--title=fix; rm -rf / && echo".into())
        );
        assert_eq!(render("{n}x{{lit}}", &ctx), Ok("3x{lit}".into()));
    }

    #[test]
    fn reports_missing_values_and_bad_syntax() {
        let ctx = json!({"issue": {"id": null}});
        assert!(render("{issue.id}", &ctx).unwrap_err().contains("null"));
        assert!(render("{issue.nope}", &ctx)
            .unwrap_err()
            .contains("no value"));
        assert!(check("{unclosed").is_err());
        assert!(check("a}b").is_err());
        assert!(check("{a b}").is_err());
        assert!(check("{}").is_err());
        assert!(check("plain {ok.path} {{x}}").is_ok());
    }
}
