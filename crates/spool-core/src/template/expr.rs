//! The `when` expression language: paths over prior step outputs and the input,
//! literals, comparisons, `!`, `&&`, `||`, parentheses.
//!
//! ```text
//! steps.test.exit_code == 0 && !steps.review.result.approved
//! input.priority <= 1 || steps.lint.status != "failed"
//! ```
//! Parsed once when the template loads; evaluation is pure and total (a missing path is
//! `null`; comparing different types is false).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// Dotted path, e.g. `["steps", "test", "exit_code"]`.
    Path(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Roots a path may start with.
pub const ROOTS: [&str; 3] = ["steps", "input", "workflow"];

impl Expr {
    /// Step ids this expression reads (`steps.<id>...`).
    pub fn step_refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs(&self, out: &mut Vec<String>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(p) => {
                if p.first().map(String::as_str) == Some("steps") {
                    if let Some(id) = p.get(1) {
                        out.push(id.clone());
                    }
                }
            }
            Expr::Not(e) => e.collect_refs(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => {
                a.collect_refs(out);
                b.collect_refs(out);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Dot,
    Not,
    And,
    Or,
    Op(CmpOp),
    LParen,
    RParen,
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let (pos, c) = chars[i];
        let next = chars.get(i + 1).map(|x| x.1);
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '.' => {
                out.push((pos, Tok::Dot));
                i += 1;
            }
            '(' => {
                out.push((pos, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Tok::RParen));
                i += 1;
            }
            '!' if next == Some('=') => {
                out.push((pos, Tok::Op(CmpOp::Ne)));
                i += 2;
            }
            '!' => {
                out.push((pos, Tok::Not));
                i += 1;
            }
            '=' if next == Some('=') => {
                out.push((pos, Tok::Op(CmpOp::Eq)));
                i += 2;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                let op = match (c, eq) {
                    ('<', true) => CmpOp::Le,
                    ('<', false) => CmpOp::Lt,
                    (_, true) => CmpOp::Ge,
                    _ => CmpOp::Gt,
                };
                out.push((pos, Tok::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            '&' if next == Some('&') => {
                out.push((pos, Tok::And));
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push((pos, Tok::Or));
                i += 2;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "unterminated string starting at column {}",
                                pos + 1
                            ))
                        }
                        Some(&(_, ch)) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&(_, '\\')) => {
                            match chars.get(i + 1).map(|x| x.1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(other) => s.push(other),
                                None => return Err("dangling backslash".into()),
                            }
                            i += 2;
                        }
                        Some(&(_, ch)) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((pos, Tok::Str(s)));
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                    // A dot followed by a non-digit ends the number (path segments are not numbers).
                    if chars[i].1 == '.' && !chars.get(i + 1).is_some_and(|x| x.1.is_ascii_digit())
                    {
                        break;
                    }
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|x| x.1).collect();
                let n: f64 = text
                    .parse()
                    .map_err(|_| format!("bad number {text:?} at column {}", pos + 1))?;
                out.push((pos, Tok::Num(n)));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].1.is_ascii_alphanumeric() || matches!(chars[i].1, '_' | '-'))
                {
                    i += 1;
                }
                out.push((
                    pos,
                    Tok::Ident(chars[start..i].iter().map(|x| x.1).collect()),
                ));
            }
            other => return Err(format!("unexpected {other:?} at column {}", pos + 1)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn column(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.0 + 1)
            .unwrap_or(self.len + 1)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.primary()?;
        if let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            let right = self.primary()?;
            return Ok(Expr::Compare(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let column = self.column();
        let tok = self
            .toks
            .get(self.pos)
            .map(|t| t.1.clone())
            .ok_or_else(|| format!("expression ends early at column {column}"))?;
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Literal(
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            )),
            Tok::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Tok::LParen => {
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(format!("expected ')' at column {}", self.column()));
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                root => {
                    if !ROOTS.contains(&root) {
                        return Err(format!(
                            "unknown name {root:?} at column {column} (paths start with steps., input. or workflow.)"
                        ));
                    }
                    let mut path = vec![root.to_string()];
                    while self.peek() == Some(&Tok::Dot) {
                        self.pos += 1;
                        match self.toks.get(self.pos).map(|t| t.1.clone()) {
                            Some(Tok::Ident(seg)) => path.push(seg),
                            Some(Tok::Num(n)) if n.fract() == 0.0 && n >= 0.0 => {
                                path.push(format!("{}", n as u64))
                            }
                            _ => {
                                return Err(format!(
                                    "expected a name after '.' at column {}",
                                    self.column()
                                ))
                            }
                        }
                        self.pos += 1;
                    }
                    if root == "steps" && path.len() < 2 {
                        return Err(format!("'steps' needs a step id at column {column}"));
                    }
                    Ok(Expr::Path(path))
                }
            },
            other => Err(format!("unexpected {other:?} at column {column}")),
        }
    }
}

/// Parses an expression; errors name the column.
pub fn parse(src: &str) -> Result<Expr, String> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        len: src.chars().count(),
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected text at column {}", p.column()));
    }
    Ok(e)
}

/// Evaluates against the run context (see `RunState::context`).
pub fn eval(e: &Expr, ctx: &Value) -> Value {
    match e {
        Expr::Literal(v) => v.clone(),
        Expr::Path(p) => {
            let mut cur = ctx;
            for seg in p {
                let next = match cur {
                    Value::Object(m) => m.get(seg),
                    Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                };
                match next {
                    Some(v) => cur = v,
                    None => return Value::Null,
                }
            }
            cur.clone()
        }
        Expr::Not(e) => Value::Bool(!truthy(&eval(e, ctx))),
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, ctx)) && truthy(&eval(b, ctx))),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, ctx)) || truthy(&eval(b, ctx))),
        Expr::Compare(op, a, b) => Value::Bool(compare(*op, &eval(a, ctx), &eval(b, ctx))),
    }
}

/// `false`, `null`, `0`, `""`, `[]` and `{}` are false; everything else is true.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(Ordering::Equal) || (o.is_none() && a == b),
        (CmpOp::Ne, o) => !(o == Some(Ordering::Equal) || (o.is_none() && a == b)),
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, ctx: &Value) -> bool {
        truthy(&eval(&parse(src).expect("parses"), ctx))
    }

    #[test]
    fn evaluates_paths_comparisons_and_logic() {
        let ctx = json!({"steps": {"test": {"exit_code": 0, "status": "completed"},
                                    "review": {"result": {"approved": true, "score": 7.5}}},
                         "input": {"priority": 1}});
        assert!(run("steps.test.exit_code == 0", &ctx));
        assert!(!run("steps.test.exit_code != 0", &ctx));
        assert!(run("steps.review.result.approved", &ctx));
        assert!(!run("!steps.review.result.approved", &ctx));
        assert!(run(
            "steps.review.result.score >= 7 && input.priority < 2",
            &ctx
        ));
        assert!(run("steps.missing.x == null || false", &ctx));
        assert!(run("steps.test.status == 'completed'", &ctx));
        assert!(!run(
            "(steps.test.status == \"failed\" || false) && true",
            &ctx
        ));
        assert!(!run("steps.test.exit_code == \"0\"", &ctx));
        assert!(!run("steps.nothing.here", &ctx));
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let ctx = json!({});
        assert!(run("true || false && false", &ctx));
        assert!(!run("(true || false) && false", &ctx));
        assert!(run("!false && !null", &ctx));
    }

    #[test]
    fn rejects_bad_expressions_with_columns() {
        for bad in [
            "",
            "steps.",
            "steps.a ==",
            "foo.bar",
            "steps.a = 1",
            "(true",
            "'open",
            "true true",
            "a & b",
            "steps",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse("steps.a.b == ").unwrap_err().contains("column"));
    }

    #[test]
    fn collects_step_refs() {
        let e = parse("steps.a.x == 1 || !steps.b.y && input.z").expect("parses");
        assert_eq!(e.step_refs(), vec!["a".to_string(), "b".to_string()]);
    }
}
