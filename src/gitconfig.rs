//! Reading git configuration (identity) without spawning `git`.

use std::path::Path;

/// `user.name` as git would resolve it for the repository at `root` (repository config,
/// then global and system config), if set.
pub fn user_name(root: &Path) -> Option<String> {
    let repo = gix::open(root).ok();
    let value = match &repo {
        Some(repo) => repo
            .config_snapshot()
            .string("user.name")
            .map(|v| v.to_string()),
        None => {
            let globals = gix::config::File::from_globals().ok()?;
            globals.string("user.name").map(|v| v.to_string())
        }
    };
    value.filter(|v| !v.trim().is_empty())
}
