//! `spool init`: create `.beads/` the way bd does, so bd tools recognise the workspace.

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::args::InitArgs;
use super::Ctx;
use crate::atomic::write_atomic;
use crate::workspace::Workspace;

pub(super) const GITIGNORE: &str = "\
# Local, derived state: never commit.
*.lock
.spool/
beads.db
beads.db-*
bd.sock
daemon.*
";

pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<i32> {
    let root = Workspace::init_root(&ctx.cwd);
    let beads = root.join(".beads");
    let issues = beads.join("issues.jsonl");
    let daemon_config = root.join(".spool").join("config.toml");
    let backlog_exists = issues.exists();
    // Nothing left to do: the backlog exists and so does the daemon config if asked for.
    let nothing_to_add = !args.daemon || daemon_config.exists();
    if backlog_exists && nothing_to_add {
        bail!(
            "{} already exists: this backlog is initialized{}",
            issues.display(),
            if args.daemon {
                format!(" and {} exists", daemon_config.display())
            } else {
                String::new()
            }
        );
    }
    let mut messages = Vec::new();
    let mut prefix = None;
    if !backlog_exists {
        let (message, p) = init_backlog(&root, args)?;
        messages.push(message);
        prefix = Some(p);
    }
    if args.daemon {
        let dir = root.join(".spool");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_atomic(
            &daemon_config,
            crate::daemon::config::DEFAULT_CONFIG.as_bytes(),
        )?;
        messages.push(format!(
            "Wrote the daemon configuration {} (see its comments; start with `spool up`)",
            daemon_config.display()
        ));
    }
    if ctx.global.json {
        super::output::print_json(&json!({
            "database": issues.display().to_string(),
            "prefix": prefix,
            "daemon_config": args.daemon.then(|| daemon_config.display().to_string()),
            "message": messages.join("\n"),
        }))?;
    } else if !ctx.global.quiet {
        for m in &messages {
            println!("{m}");
        }
        if !backlog_exists {
            println!("Create an issue: spool create \"First task\" -p 1");
        }
    }
    Ok(0)
}

/// Creates `.beads/` as bd does; returns what was done and the prefix.
fn init_backlog(root: &std::path::Path, args: &InitArgs) -> Result<(String, String)> {
    let beads = root.join(".beads");
    let issues = beads.join("issues.jsonl");
    let ws = Workspace {
        beads_dir: beads.clone(),
        root: root.to_path_buf(),
    };
    let prefix = match &args.prefix {
        Some(p) => p.trim_end_matches('-').to_string(),
        None => sanitize_prefix(&ws.dir_name()),
    };
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("invalid prefix {prefix:?}: use letters, digits, '-' or '_'");
    }
    std::fs::create_dir_all(&beads).with_context(|| format!("creating {}", beads.display()))?;
    write_atomic(&issues, b"")?;
    let config = beads.join("config.yaml");
    if !config.exists() {
        let text = format!(
            "# Beads backlog configuration (read by spool and bd).\n\
             # Prefix of new issue ids: <prefix>-<hash>.\n\
             issue-prefix: \"{prefix}\"\n"
        );
        write_atomic(&config, text.as_bytes())?;
    }
    let metadata = beads.join("metadata.json");
    if !metadata.exists() {
        let text = serde_json::to_string_pretty(&json!({
            "database": "beads.db",
            "jsonl_export": "issues.jsonl",
        }))?;
        write_atomic(&metadata, format!("{text}\n").as_bytes())?;
    }
    let gitignore = beads.join(".gitignore");
    if !gitignore.exists() {
        write_atomic(&gitignore, GITIGNORE.as_bytes())?;
    }
    let message = format!(
        "Initialized a backlog in {} with prefix {prefix}",
        beads.display()
    );
    Ok((message, prefix))
}

/// bd uses the directory name as the default prefix; keep only characters valid in ids.
fn sanitize_prefix(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "bd".to_string()
    } else {
        s
    }
}
