//! Issue ids exactly as bd makes and reads them: hash ids with adaptive length, child
//! ids, prefixes, and partial-id resolution.
//!
//! Everything here is a pure function of its arguments: the creation time, the creator
//! and the set of existing ids are passed in, so the same inputs always give the same id
//! that bd would have given.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::issue::StatusKind;
use super::node::Node;

/// Shortest hash length bd uses (`min_hash_length`).
pub const MIN_HASH_LENGTH: usize = 3;
/// Longest hash length bd uses (`max_hash_length`).
pub const MAX_HASH_LENGTH: usize = 8;
/// Birthday-collision probability bd accepts before growing the hash (`max_collision_prob`).
pub const MAX_COLLISION_PROBABILITY: f64 = 0.25;
/// Nonces tried per length before moving to the next length.
pub const NONCES_PER_LENGTH: u32 = 10;
/// bd's default `hierarchy.max-depth`: `bd-x.1.2.3` is as deep as children go.
pub const DEFAULT_MAX_CHILD_DEPTH: usize = 3;

/// Why no id could be made or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// Every length up to [`MAX_HASH_LENGTH`] and every nonce collided.
    Exhausted { prefix: String },
    /// The parent is already at the maximum depth, so it cannot have children.
    MaxDepth { parent: String, max_depth: usize },
    /// No id matches.
    NotFound { query: String },
    /// More than one id matches; the candidates are sorted.
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
}

impl std::fmt::Display for IdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdError::Exhausted { prefix } => write!(
                f,
                "could not generate a unique id with prefix {prefix:?}: all lengths up to {MAX_HASH_LENGTH} collided"
            ),
            IdError::MaxDepth { parent, max_depth } => write!(
                f,
                "{parent} is already at the maximum hierarchy depth {max_depth}; it cannot have children"
            ),
            IdError::NotFound { query } => write!(f, "no issue found matching {query:?}"),
            IdError::Ambiguous { query, candidates } => write!(
                f,
                "ambiguous id {query:?} matches {} issues: {}",
                candidates.len(),
                candidates.join(", ")
            ),
        }
    }
}

impl std::error::Error for IdError {}

/// How many leading SHA-256 bytes bd turns into a hash of `length` characters.
fn hash_bytes_for_length(length: usize) -> usize {
    match length {
        3 => 2,
        4 => 3,
        5 | 6 => 4,
        7 | 8 => 5,
        // bd's default branch; lengths outside 3..=8 are never chosen by bd itself.
        _ => 3,
    }
}

/// Renders `bytes` (big-endian) in lowercase base36, left-padded with `0` and cut to the
/// last `length` characters — bd's `EncodeBase36`, including its keep-the-tail quirk.
pub fn encode_base36(bytes: &[u8], length: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    // bd passes at most 5 bytes; a u128 holds up to 16, so only the low 16 are read.
    let low = &bytes[bytes.len().saturating_sub(16)..];
    let mut n = low.iter().fold(0u128, |n, &b| (n << 8) | u128::from(b));
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(ALPHABET[(n % 36) as usize]);
        n /= 36;
    }
    while digits.len() < length {
        digits.push(b'0');
    }
    digits.truncate(length);
    digits.reverse();
    // Only ASCII from ALPHABET or '0' was pushed.
    String::from_utf8(digits).expect("base36 digits are ASCII")
}

/// The hash part of a bd id (without prefix): SHA-256 of
/// `title|description|creator|<created_at unix nanos>|<nonce>`.
pub fn hash_part(
    title: &str,
    description: &str,
    creator: &str,
    created_at_unix_nanos: i64,
    nonce: u32,
    length: usize,
) -> String {
    let content = format!("{title}|{description}|{creator}|{created_at_unix_nanos}|{nonce}");
    let digest = Sha256::digest(content.as_bytes());
    encode_base36(&digest[..hash_bytes_for_length(length)], length)
}

/// A full hash id: `prefix-<hash>`.
pub fn hash_id(
    prefix: &str,
    title: &str,
    description: &str,
    creator: &str,
    created_at_unix_nanos: i64,
    nonce: u32,
    length: usize,
) -> String {
    // bd drops one trailing hyphen from the prefix before adding its own.
    let prefix = prefix.strip_suffix('-').unwrap_or(prefix);
    format!(
        "{prefix}-{}",
        hash_part(
            title,
            description,
            creator,
            created_at_unix_nanos,
            nonce,
            length
        )
    )
}

/// bd's birthday estimate of a collision among `n` ids of `length` base36 characters.
pub fn collision_probability(n: usize, length: usize) -> f64 {
    let total = 36f64.powi(length as i32);
    let n = n as f64;
    1.0 - (-(n * n) / (2.0 * total)).exp()
}

/// Smallest hash length whose collision estimate for `existing_top_level` ids stays within
/// [`MAX_COLLISION_PROBABILITY`] (bd's `ComputeAdaptiveLength`).
pub fn adaptive_length(existing_top_level: usize) -> usize {
    (MIN_HASH_LENGTH..=MAX_HASH_LENGTH)
        .find(|&l| collision_probability(existing_top_level, l) <= MAX_COLLISION_PROBABILITY)
        .unwrap_or(MAX_HASH_LENGTH)
}

/// Whether `id` is a top-level id of `prefix`: `prefix-…` with no `.` after the prefix.
fn is_top_level_of(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| !rest.contains('.'))
}

/// Number of existing top-level ids with `prefix` — the `n` of the adaptive length.
pub fn count_top_level<'a>(ids: impl IntoIterator<Item = &'a str>, prefix: &str) -> usize {
    ids.into_iter()
        .filter(|id| is_top_level_of(id, prefix))
        .count()
}

/// The inputs bd hashes into a new id.
#[derive(Debug, Clone, Copy)]
pub struct IdSeed<'a> {
    pub title: &'a str,
    pub description: &'a str,
    /// The actor creating the issue.
    pub creator: &'a str,
    pub created_at_unix_nanos: i64,
}

/// A new hash id that is not in `existing`: adaptive base length from the number of
/// top-level ids with `prefix`, then for each length up to 8 nonces 0..=9, first unused
/// wins. `existing` should include tombstones so deleted ids are never reused.
pub fn generate_id(
    prefix: &str,
    seed: IdSeed<'_>,
    existing: &HashSet<&str>,
) -> Result<String, IdError> {
    let base = adaptive_length(count_top_level(existing.iter().copied(), prefix));
    for length in base..=MAX_HASH_LENGTH {
        for nonce in 0..NONCES_PER_LENGTH {
            let id = hash_id(
                prefix,
                seed.title,
                seed.description,
                seed.creator,
                seed.created_at_unix_nanos,
                nonce,
                length,
            );
            if !existing.contains(id.as_str()) {
                return Ok(id);
            }
        }
    }
    Err(IdError::Exhausted {
        prefix: prefix.to_string(),
    })
}

/// Hierarchy depth of an id: the number of `.n` child segments (`bd-a.1.2` → 2).
pub fn child_depth(id: &str) -> usize {
    id.matches('.').count()
}

/// The next child id of `parent`: `<parent>.<n>` with `n` one more than the largest
/// existing direct child number (so numbers of deleted children are not reused as long
/// as their tombstones are in `existing`). Refuses when `parent` is already at
/// `max_depth`.
pub fn next_child_id<'a>(
    parent: &str,
    existing: impl IntoIterator<Item = &'a str>,
    max_depth: usize,
) -> Result<String, IdError> {
    if child_depth(parent) >= max_depth {
        return Err(IdError::MaxDepth {
            parent: parent.to_string(),
            max_depth,
        });
    }
    let max = existing
        .into_iter()
        .filter_map(|id| id.strip_prefix(parent)?.strip_prefix('.'))
        .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|rest| rest.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok(format!("{parent}.{}", max + 1))
}

/// The prefix of an id: the top-level part (before the first `.`) up to its **last**
/// hyphen, so hyphenated prefixes survive (`design-parity-checker-xyz` →
/// `design-parity-checker`, `bd-ats9.3.1` → `bd`). `None` when there is no hyphen.
pub fn prefix_of(id: &str) -> Option<&str> {
    let top = id.split('.').next().unwrap_or(id);
    top.rfind('-').map(|i| &top[..i])
}

/// The part of an id after its prefix and hyphen (`bd-ats9.3.1` → `ats9.3.1`); the whole
/// id when it has no prefix.
pub fn hash_of(id: &str) -> &str {
    match prefix_of(id) {
        Some(p) => &id[p.len() + 1..],
        None => id,
    }
}

/// The prefix new ids get: the configured one, else the prefix most existing ids use
/// (ties broken by the lexically smallest, for determinism), else the directory name.
pub fn choose_prefix<'a>(
    configured: Option<&str>,
    existing: impl IntoIterator<Item = &'a str>,
    dir_name: &str,
) -> String {
    if let Some(p) = configured.map(str::trim).filter(|p| !p.is_empty()) {
        return p.trim_end_matches('-').to_string();
    }
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for id in existing {
        if let Some(p) = prefix_of(id) {
            *counts.entry(p).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| dir_name.to_string())
}

/// Resolves what a user typed to one issue id: the exact id; else the id whose hash part
/// equals the query (the query without its prefix); else the unique id whose hash part
/// starts with it (bd's abbreviation, `a3f8` → `bd-a3f8e9`); else the unique id whose hash
/// part ends with it; else the unique id containing it. The first stage with any match
/// decides: one match resolves, several are an error listing them. Tombstones take part
/// only when `include_tombstones`.
pub fn resolve_id<'a, N: Node + 'a>(
    issues: impl IntoIterator<Item = &'a N>,
    query: &str,
    include_tombstones: bool,
) -> Result<&'a str, IdError> {
    resolve_id_among(
        issues
            .into_iter()
            .filter(|i| include_tombstones || i.status_kind() != StatusKind::Tombstone)
            .map(|i| i.id()),
        query,
    )
}

/// [`resolve_id`] among the ids of the issues to consider (in file order; repeats and
/// empty ids are skipped).
pub fn resolve_id_among<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    query: &str,
) -> Result<&'a str, IdError> {
    let query = query.trim();
    let not_found = || IdError::NotFound {
        query: query.to_string(),
    };
    if query.is_empty() {
        return Err(not_found());
    }
    let mut seen = HashSet::new();
    let ids: Vec<&'a str> = ids
        .into_iter()
        .filter(|id| !id.is_empty() && seen.insert(*id))
        .collect();
    if let Some(id) = ids.iter().find(|id| **id == query) {
        return Ok(id);
    }
    let stages: [&dyn Fn(&str) -> bool; 4] = [
        &|id| hash_of(id) == query,
        &|id| hash_of(id).starts_with(query),
        &|id| hash_of(id).ends_with(query),
        &|id| id.contains(query),
    ];
    for stage in stages {
        let mut found: Vec<&'a str> = ids.iter().copied().filter(|id| stage(id)).collect();
        match found.len() {
            0 => continue,
            1 => return Ok(found[0]),
            _ => {
                found.sort_unstable();
                return Err(IdError::Ambiguous {
                    query: query.to_string(),
                    candidates: found.into_iter().map(str::to_string).collect(),
                });
            }
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::Issue;

    #[test]
    fn adaptive_length_thresholds_are_bds() {
        for (last, len) in [(163, 3), (983, 4), (5898, 5), (35389, 6), (212339, 7)] {
            assert_eq!(adaptive_length(last), len, "n={last}");
            assert_eq!(adaptive_length(last + 1), len + 1, "n={}", last + 1);
        }
        assert_eq!(adaptive_length(0), 3);
        assert_eq!(adaptive_length(10_000_000), 8);
    }

    #[test]
    fn base36_pads_and_keeps_the_tail() {
        assert_eq!(encode_base36(&[0, 0], 3), "000");
        assert_eq!(encode_base36(&[0, 35], 3), "00z");
        // 0xffff = 65535 = "1ekf" in base36: four digits, the last three are kept.
        assert_eq!(encode_base36(&[0xff, 0xff], 3), "ekf");
        assert_eq!(encode_base36(&[0xff, 0xff], 4), "1ekf");
        assert_eq!(encode_base36(&[0xff, 0xff], 6), "001ekf");
    }

    #[test]
    fn prefixes_split_at_the_last_hyphen_of_the_top_level_id() {
        assert_eq!(
            prefix_of("design-parity-checker-xyz"),
            Some("design-parity-checker")
        );
        assert_eq!(prefix_of("bd-ats9.3.1"), Some("bd"));
        assert_eq!(prefix_of("beads_rust-0v1.1.1"), Some("beads_rust"));
        assert_eq!(prefix_of("noprefix"), None);
        assert_eq!(hash_of("bd-ats9.3.1"), "ats9.3.1");
    }

    #[test]
    fn child_ids_count_up_and_stop_at_max_depth() {
        let ids = ["bd-a", "bd-a.1", "bd-a.3", "bd-a.3.1", "bd-ab.9", "bd-a.x"];
        assert_eq!(next_child_id("bd-a", ids, 3).as_deref(), Ok("bd-a.4"));
        assert_eq!(next_child_id("bd-a.3", ids, 3).as_deref(), Ok("bd-a.3.2"));
        assert_eq!(next_child_id("bd-b", ids, 3).as_deref(), Ok("bd-b.1"));
        assert_eq!(
            next_child_id("bd-a.1.1", ids, 3).as_deref(),
            Ok("bd-a.1.1.1")
        );
        assert!(matches!(
            next_child_id("bd-a.1.1.1", ids, 3),
            Err(IdError::MaxDepth { max_depth: 3, .. })
        ));
    }

    #[test]
    fn prefix_choice_prefers_config_then_majority_then_dir() {
        let ids = ["bd-1", "bd-2", "x-y-3", "x-y-4.1", "x-y-5"];
        assert_eq!(choose_prefix(Some("cfg"), ids, "dir"), "cfg");
        assert_eq!(choose_prefix(None, ids, "dir"), "x-y");
        assert_eq!(choose_prefix(None, [], "dir"), "dir");
    }

    /// Reference values computed once by an independent implementation, Python's
    /// `hashlib`: `sha256(f"{title}|{desc}|{creator}|{nanos}|{nonce}")`, first N bytes as
    /// a big-endian int, base36, zero-padded, last `length` chars.
    #[test]
    fn hash_matches_an_independent_implementation() {
        let (t, d, c, ns) = (
            "Fix login bug",
            "Users cannot log in",
            "alice",
            1_767_225_600_123_456_789,
        );
        let cases = [
            (3, 0, "0e0"),
            (3, 1, "1r8"),
            (3, 9, "ebq"),
            (4, 0, "2rln"),
            (4, 1, "gho0"),
            (5, 0, "joa24"),
            (6, 0, "0joa24"),
            (6, 1, "h19mro"),
            (7, 0, "3vwnj6c"),
            (8, 0, "03vwnj6c"),
            (8, 1, "ah50hwrc"),
        ];
        for (len, nonce, want) in cases {
            assert_eq!(
                hash_part(t, d, c, ns, nonce, len),
                want,
                "length {len} nonce {nonce}"
            );
        }
        assert_eq!(hash_id("p", t, d, c, ns, 0, 4), "p-2rln");
        assert_eq!(hash_id("p-", t, d, c, ns, 0, 4), "p-2rln");
    }

    /// Ids that real bd wrote (steveyegge/beads at v0.47.0), reproduced from their own
    /// title, description, created_by and created_at.
    #[test]
    fn hash_reproduces_real_bd_ids() {
        let nanos = |raw: &str| {
            crate::beads::Timestamp::parse(raw)
                .expect("timestamp")
                .unix_nanos()
        };
        assert_eq!(
            hash_id(
                "bd",
                "Session ended: gt-beads-witness",
                "",
                "beads/witness",
                nanos("2026-01-08T18:49:54.861354-08:00"),
                0,
                5
            ),
            "bd-xotxp"
        );
        assert_eq!(
            hash_id(
                "bd",
                "Fix sync.remote config not being respected (GH#872)",
                "bd config set sync.remote <name> sets the value but bd sync still tries to use 'origin'. Need to check where the sync code reads the remote name and ensure it uses the configured value.",
                "beads/crew/grip",
                nanos("2026-01-03T13:12:50.777534-08:00"),
                0,
                4
            ),
            "bd-ypvj"
        );
    }

    #[test]
    fn generation_skips_used_ids_then_grows() {
        let seed = IdSeed {
            title: "Fix login bug",
            description: "Users cannot log in",
            creator: "alice",
            created_at_unix_nanos: 1_767_225_600_123_456_789,
        };
        let mut existing: HashSet<&str> = HashSet::new();
        assert_eq!(generate_id("p", seed, &existing).as_deref(), Ok("p-0e0"));
        existing.insert("p-0e0");
        assert_eq!(generate_id("p", seed, &existing).as_deref(), Ok("p-1r8"));
        let taken: Vec<String> = (0..NONCES_PER_LENGTH)
            .map(|n| {
                hash_id(
                    "p",
                    seed.title,
                    seed.description,
                    seed.creator,
                    seed.created_at_unix_nanos,
                    n,
                    3,
                )
            })
            .collect();
        existing.extend(taken.iter().map(String::as_str));
        assert_eq!(generate_id("p", seed, &existing).as_deref(), Ok("p-2rln"));

        // 164 top-level ids push the base length to 4; child ids and other prefixes don't count.
        let many: Vec<String> = (0..164).map(|k| format!("p-t{k}")).collect();
        let mut crowd: HashSet<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(count_top_level(crowd.iter().copied(), "p"), 164);
        assert_eq!(generate_id("p", seed, &crowd).as_deref(), Ok("p-2rln"));
        crowd.remove("p-t0");
        crowd.insert("p-t1.1");
        crowd.insert("q-abc");
        assert_eq!(count_top_level(crowd.iter().copied(), "p"), 163);
        assert_eq!(generate_id("p", seed, &crowd).as_deref(), Ok("p-0e0"));
    }

    #[test]
    fn generated_ids_have_the_right_shape() {
        for k in 0..200i64 {
            let id = hash_id(
                "spool",
                "t",
                "d",
                "me",
                k * 1_000_003,
                0,
                3 + (k as usize % 6),
            );
            let hash = id.strip_prefix("spool-").expect("prefix");
            assert_eq!(hash.len(), 3 + (k as usize % 6));
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
                "{id}"
            );
        }
    }

    #[test]
    fn partial_ids_resolve_or_explain_why_not() {
        let issues: Vec<Issue> = [
            ("bd-abc", "open"),
            ("bd-abd", "open"),
            ("bd-abc.1", "open"),
            ("bd-xyz", "tombstone"),
            ("other-abc9", "closed"),
        ]
        .iter()
        .map(|(id, status)| Issue {
            id: (*id).into(),
            status: (*status).into(),
            ..Issue::default()
        })
        .collect();
        assert_eq!(resolve_id(&issues, "bd-abc", false), Ok("bd-abc"));
        assert_eq!(resolve_id(&issues, "abc", false), Ok("bd-abc"));
        assert_eq!(resolve_id(&issues, "c.1", false), Ok("bd-abc.1"));
        assert_eq!(resolve_id(&issues, "abc9", false), Ok("other-abc9"));
        assert_eq!(
            resolve_id(&issues, "abc.", false),
            Ok("bd-abc.1"),
            "starts-with before substring"
        );
        assert_eq!(resolve_id(&issues, "bc9", false), Ok("other-abc9"));
        assert_eq!(resolve_id(&issues, "r-ab", false), Ok("other-abc9"));
        assert_eq!(
            resolve_id(&issues, "ab", false),
            Err(IdError::Ambiguous {
                query: "ab".into(),
                candidates: vec![
                    "bd-abc".into(),
                    "bd-abc.1".into(),
                    "bd-abd".into(),
                    "other-abc9".into()
                ],
            })
        );
        assert_eq!(
            resolve_id(&issues, "xyz", false),
            Err(IdError::NotFound {
                query: "xyz".into()
            })
        );
        assert_eq!(
            resolve_id(&issues, "bd-xyz", false),
            Err(IdError::NotFound {
                query: "bd-xyz".into()
            })
        );
        assert_eq!(resolve_id(&issues, "xyz", true), Ok("bd-xyz"));
        assert!(resolve_id(&issues, " ", false).is_err());
        // A leading abbreviation wins over a match at the end, which wins over one inside.
        let more: Vec<Issue> = ["bd-xyzq", "bd-qxyz", "bd-mnopq"]
            .iter()
            .map(|id| Issue {
                id: (*id).into(),
                ..Issue::default()
            })
            .collect();
        assert_eq!(resolve_id(&more, "xyz", false), Ok("bd-xyzq"));
        assert_eq!(resolve_id(&more, "yz", false), Ok("bd-qxyz"));
        assert_eq!(resolve_id(&more, "nop", false), Ok("bd-mnopq"));
        let msg = resolve_id(&issues, "ab", false)
            .expect_err("ambiguous")
            .to_string();
        assert!(
            msg.contains("bd-abc, bd-abc.1, bd-abd, other-abc9"),
            "{msg}"
        );
    }
}
