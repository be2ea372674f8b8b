//! Which machine works which issue (Temporal's task queues, the git way): a daemon has
//! capabilities (configured, plus `agent:<kind>` for its agent); an issue needs some
//! (`needs:<capability>` labels) and so may its template (`requires` on steps). A daemon
//! claims only what it can run. Pure.

use spool_core::beads::Issue;
use std::collections::BTreeSet;

/// The daemon's capabilities: the configured ones and `agent:<kind>` of its agent.
pub fn capabilities(configured: &[String], agent_kind: &str) -> BTreeSet<String> {
    let mut have: BTreeSet<String> = configured.iter().cloned().collect();
    have.insert(format!("agent:{agent_kind}"));
    have
}

/// What the issue and its template need that `have` lacks (sorted, empty when none).
pub fn unmet(issue: &Issue, template: &BTreeSet<String>, have: &BTreeSet<String>) -> Vec<String> {
    let mut missing: BTreeSet<String> = issue
        .needs()
        .filter(|c| !have.contains(*c))
        .map(str::to_string)
        .collect();
    missing.extend(template.iter().filter(|c| !have.contains(*c)).cloned());
    missing.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(labels: &[&str]) -> Issue {
        let line = serde_json::json!({"id": "t-1", "title": "x", "labels": labels});
        let (file, diags) = spool_core::beads::BeadsFile::parse_owned(
            format!("{line}\n").into_bytes(),
            std::num::NonZeroUsize::MIN,
        );
        assert!(diags.is_empty(), "{diags:?}");
        file.get("t-1").cloned().expect("issue")
    }

    #[test]
    fn an_issue_runs_where_every_need_is_met() {
        let have = capabilities(&["gpu".into()], "claude");
        let none = BTreeSet::new();
        assert!(unmet(&issue(&["needs:gpu", "spool"]), &none, &have).is_empty());
        assert!(unmet(&issue(&["needs:agent:claude"]), &none, &have).is_empty());
        assert_eq!(
            unmet(&issue(&["needs:macos", "needs:gpu"]), &none, &have),
            vec!["macos".to_string()]
        );
        assert_eq!(
            unmet(&issue(&["needs:agent:codex"]), &none, &have),
            vec!["agent:codex".to_string()]
        );
        let template: BTreeSet<String> = ["os.linux".to_string()].into();
        assert_eq!(
            unmet(&issue(&["spool"]), &template, &have),
            vec!["os.linux".to_string()]
        );
    }
}
