//! Durations as text: `"10m"`, `"1h30m"`, `"500ms"` in templates, and Temporal's
//! `"600s"` / `"0.250s"` form in history, so exported events read like Temporal's.

use std::time::Duration;

/// Parses a human duration: one or more `<integer><unit>` parts, units `ms`, `s`, `m`,
/// `h`, `d`. Returns a message naming the problem on bad input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "bad duration {text:?}: expected a number at {rest:?} (use e.g. \"30s\", \"10m\", \"1h30m\")"
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per = match unit {
            "ms" => 1u64,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "bad duration {text:?}: missing unit after {value} (ms, s, m, h, d)"
                ))
            }
            other => {
                return Err(format!(
                    "bad duration {text:?}: unknown unit {other:?} (ms, s, m, h, d)"
                ))
            }
        };
        let part = value
            .checked_mul(millis_per)
            .ok_or_else(|| format!("bad duration {text:?}: too large"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| format!("bad duration {text:?}: too large"))?;
    }
    Ok(total)
}

/// Temporal's JSON form of a duration: seconds with an `s` suffix, millisecond precision.
pub fn format_temporal(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Parses [`format_temporal`]'s output (and plain `"<n>s"`).
pub fn parse_temporal(text: &str) -> Result<Duration, String> {
    let body = text
        .strip_suffix('s')
        .ok_or_else(|| format!("bad duration {text:?}: expected seconds like \"10s\""))?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    let secs: u64 = whole
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("bad duration {text:?}"));
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| format!("bad duration {text:?}"))?
    };
    Ok(Duration::new(secs, nanos))
}

/// Serde for `Duration` in Temporal's `"10s"` form.
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_temporal(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_temporal(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Duration>` in Temporal's `"10s"` form (absent when `None`).
pub mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_temporal(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::parse_temporal(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn rejects_bad_units_and_shapes() {
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn temporal_form_round_trips() {
        for ms in [0u64, 1, 999, 1000, 1500, 600_000, 86_400_123] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_temporal(&format_temporal(d)), Ok(d));
        }
        assert_eq!(format_temporal(Duration::from_millis(1500)), "1.500s");
    }
}
