//! Fetch and push through the `git` binary: gix 0.90 cannot push, and its protocol-v1
//! fetch over file/ssh transports may hang, so the network goes through `git`, which
//! also brings the user's credential helpers and ssh setup along.
//!
//! Pushes follow jj: `push --porcelain --no-verify`, with the result read per ref from
//! the porcelain lines rather than guessed from the exit code, because "someone pushed
//! first" (fetch, rebase, retry) and "the remote refused" (stop, tell a person) need
//! different reactions.

use std::path::Path;
use std::time::Duration;

use gix::ObjectId;

use super::cmd::Git;
use super::{GitError, Result};

/// Network operations may be slow but must not hang forever.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(300);

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every ref was updated (or already up to date).
    Ok,
    /// The remote moved on (non-fast-forward, fetch first, stale lease): fetch, rebuild
    /// on the new tip and push again.
    Rejected { reason: String },
    /// The remote or transport refused for another reason (a hook declined, no access,
    /// unreachable); retrying as is will not help.
    Error { message: String },
}

/// Fetches `branch` from the named `remote` into `refs/remotes/<remote>/<branch>` and
/// returns that ref's new tip, so the caller can merge or rebase onto it.
pub fn fetch(repo_dir: &Path, remote: &str, branch: &str) -> Result<ObjectId> {
    check_arg(remote, "remote")?;
    check_arg(branch, "branch")?;
    let tracking = format!("refs/remotes/{remote}/{branch}");
    let refspec = format!("+refs/heads/{branch}:{tracking}");
    Git::new(repo_dir).with_timeout(NETWORK_TIMEOUT).run([
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-recurse-submodules",
        "--no-write-fetch-head",
        remote,
        &refspec,
    ])?;
    let repo = super::open(repo_dir)?;
    let mut r = repo
        .find_reference(tracking.as_str())
        .map_err(|e| GitError::gix(format!("reading {tracking}"), e))?;
    r.peel_to_id()
        .map(|id| id.detach())
        .map_err(|e| GitError::gix(format!("reading {tracking}"), e))
}

/// Pushes `refspec` (e.g. `refs/heads/main:refs/heads/main`) to `remote` (a remote name
/// or URL), without running the local `pre-push` hook, and classifies the result.
///
/// `Err` means git itself could not be run or timed out; what the remote said is in the
/// [`PushOutcome`].
pub fn push(repo_dir: &Path, remote: &str, refspec: &str) -> Result<PushOutcome> {
    check_arg(remote, "remote")?;
    check_arg(refspec, "refspec")?;
    let out = Git::new(repo_dir).with_timeout(NETWORK_TIMEOUT).output([
        "push",
        "--porcelain",
        "--no-verify",
        "--no-recurse-submodules",
        remote,
        refspec,
    ])?;
    Ok(classify_push(
        out.success(),
        &out.stdout_str(),
        out.stderr.trim(),
    ))
}

/// Reads `git push --porcelain` output: one `<flag>\t<from>:<to>\t<summary>` line per ref,
/// where flag `!` marks a rejected ref. A failure with no ref lines is a transport error.
pub fn classify_push(success: bool, stdout: &str, stderr: &str) -> PushOutcome {
    let mut rejected = Vec::new();
    let mut refused = Vec::new();
    let mut saw_ref = false;
    for line in stdout.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(flag), Some(refs), Some(summary)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if flag.len() != 1 {
            continue;
        }
        saw_ref = true;
        if flag == "!" {
            let to = refs.rsplit(':').next().unwrap_or(refs);
            let detail = format!("{to}: {summary}");
            // A push racing another one to the same ref loses the ref lock on the
            // remote ("failed to update ref"): the remote moved, as with a rejection.
            if summary.starts_with("[rejected]") || summary.contains("failed to update ref") {
                rejected.push(detail);
            } else {
                refused.push(detail);
            }
        }
    }
    if !refused.is_empty() {
        let mut message = refused.join("; ");
        if !stderr.is_empty() {
            message.push_str(" — ");
            message.push_str(stderr);
        }
        return PushOutcome::Error { message };
    }
    if !rejected.is_empty() {
        return PushOutcome::Rejected {
            reason: rejected.join("; "),
        };
    }
    if success && saw_ref {
        return PushOutcome::Ok;
    }
    PushOutcome::Error {
        message: if stderr.is_empty() {
            "git push failed without saying why".to_string()
        } else {
            stderr.to_string()
        },
    }
}

/// Refuses arguments git would read as options (or that are empty).
fn check_arg(value: &str, what: &'static str) -> Result<()> {
    if value.is_empty() || value.starts_with('-') || value.contains(['\n', '\0']) {
        return Err(GitError::BadArgument {
            what,
            value: value.to_string(),
            reason: "must be non-empty, one line, and not start with `-`",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lines_are_classified_per_ref() {
        let ok = "To /tmp/origin\n*\trefs/heads/main:refs/heads/main\t[new branch]\nDone\n";
        assert_eq!(classify_push(true, ok, ""), PushOutcome::Ok);
        let same = "To /tmp/origin\n=\trefs/heads/main:refs/heads/main\t[up to date]\nDone\n";
        assert_eq!(classify_push(true, same, ""), PushOutcome::Ok);
        let nff = "To /tmp/origin\n!\trefs/heads/main:refs/heads/main\t[rejected] (non-fast-forward)\nDone\n";
        assert_eq!(
            classify_push(false, nff, "hint: ..."),
            PushOutcome::Rejected {
                reason: "refs/heads/main: [rejected] (non-fast-forward)".into()
            }
        );
        let hook = "To /tmp/origin\n!\trefs/heads/main:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n";
        assert!(matches!(
            classify_push(false, hook, "remote: no"),
            PushOutcome::Error { message } if message.contains("pre-receive hook declined")
        ));
        // Two pushes racing for the remote's ref lock: the loser retries like a rejection.
        let raced = "To /tmp/origin\n!\trefs/heads/main:refs/heads/main\t[remote rejected] (failed to update ref)\nDone\n";
        assert!(matches!(
            classify_push(
                false,
                raced,
                "remote: error: cannot lock ref 'refs/heads/main'"
            ),
            PushOutcome::Rejected { .. }
        ));
        assert!(matches!(
            classify_push(false, "", "fatal: '/nope' does not appear to be a git repository"),
            PushOutcome::Error { message } if message.contains("does not appear")
        ));
    }
}
