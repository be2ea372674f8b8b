//! The command line, bd's names and flags. Global flags are accepted anywhere on the line
//! (tools built for bd put `--actor` and `--json` after the subcommand's arguments).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "spool",
    about = "A Beads-compatible backlog (.beads/issues.jsonl) that runs itself",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Who is acting (default: BEADS_ACTOR, BD_ACTOR, git user.name, $USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
    /// Machine-readable JSON on stdout (one document); messages go to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Fewer messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Accepted for bd compatibility; spool has no database to flush.
    #[arg(long, global = true, hide = true)]
    pub no_auto_flush: bool,
    /// Accepted for bd compatibility; spool reads the JSONL directly.
    #[arg(long, global = true, hide = true)]
    pub no_auto_import: bool,
    /// Accepted for bd compatibility; spool never starts a bd daemon.
    #[arg(long, global = true, hide = true)]
    pub no_daemon: bool,
    /// Accepted for bd compatibility and ignored (spool finds `.beads/` itself).
    #[arg(long, global = true, hide = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version (bd-compatible number first).
    Version,
    /// Create `.beads/` with an empty backlog here (or at the git work tree root).
    Init(InitArgs),
    /// Create an issue.
    #[command(alias = "new")]
    Create(CreateArgs),
    /// Quick create: print only the new id.
    Q(CreateArgs),
    /// Show issues with their dependencies, dependents and comments.
    #[command(alias = "view")]
    Show(ShowArgs),
    /// List issues.
    List(ListArgs),
    /// Issues ready to work on: open and not blocked.
    Ready(ReadyArgs),
    /// Issues blocked by open dependencies.
    Blocked(BlockedArgs),
    /// Change issues.
    Update(UpdateArgs),
    /// Close issues.
    #[command(alias = "done")]
    Close(CloseArgs),
    /// Reopen closed issues.
    Reopen(ReopenArgs),
    /// Dependencies between issues.
    #[command(subcommand)]
    Dep(DepCommand),
    /// Labels.
    #[command(subcommand)]
    Label(LabelCommand),
    /// List an issue's comments, or `comments add ID TEXT`.
    Comments(CommentsArgs),
    /// Add a comment: `comment ID TEXT`.
    Comment(CommentAddArgs),
    /// Append to an issue's notes: `note ID TEXT`.
    Note(NoteArgs),
    /// Counts by status, ready and blocked work, lead time.
    Stats,
    /// Check the backlog file: bad lines, duplicate ids, dangling deps, cycles, conflicts.
    Doctor(DoctorArgs),
    /// Dependencies whose target is in no line of the backlog; `--fix` removes them.
    RepairDeps(super::repair::RepairDepsArgs),
    /// Where the backlog is and what it holds; `--schema` adds record kinds, fields,
    /// prefix and sample ids.
    Info(super::info::InfoArgs),
    /// bd's schema migrations: spool keeps no database, so there are none to run;
    /// `--inspect` describes the backlog file instead.
    Migrate(super::info::MigrateArgs),
    /// Write the backlog in bd v1 export shape (or classic shape).
    Export(ExportArgs),
    /// Merge issues from a JSONL file (bd v1 or classic shape) into the backlog.
    Import(ImportArgs),
    /// A short guide for agents and people.
    Quickstart,
    /// Benchmarks: synthetic backlogs and end-to-end command timings.
    #[command(subcommand)]
    Bench(super::bench::BenchCommand),
    /// Git hooks and the backlog's merge driver: check the staged backlog before commits,
    /// nudge the daemon after checkouts, merge `.beads/issues.jsonl` per issue.
    #[command(subcommand)]
    Hooks(super::hooks::HooksCommand),
    /// git's merge driver for the backlog: `spool merge BASE OURS THEIRS` (`%O %A %B`)
    /// merges per issue and field and writes the result to OURS; exit 1 if a conflict
    /// remains, 2 if a file could not be read.
    Merge(super::merge::MergeArgs),
    /// Rewrite a backlog that holds git conflict markers as the merge of its sides.
    Resolve(super::merge::ResolveArgs),
    /// Share the backlog through the remote: commit it, fetch, merge per issue, push
    /// (retried when the remote moved); never stashes or reverts your changes.
    Sync(super::sync::SyncArgs),
    /// Workflow runs: start, list, show, history, signal, cancel, terminate, retry.
    Run {
        /// The run database (default: `.git/spool/spool.db` of this repository).
        #[arg(
            long = "spool-db",
            env = "SPOOL_DB",
            global = true,
            value_name = "PATH"
        )]
        db: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: super::run::RunCommand,
    },
    /// Schedules (`.spool/schedules.toml`): create, list, show, pause, unpause, trigger,
    /// backfill, delete.
    Schedule {
        /// The run database (default: `.git/spool/spool.db` of this repository).
        #[arg(
            long = "spool-db",
            env = "SPOOL_DB",
            global = true,
            value_name = "PATH"
        )]
        db: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: super::schedule::ScheduleCommand,
    },
    /// See spool work: a throwaway repository with a small backlog, worked by the daemon
    /// with a scripted agent (no API key, no network needed).
    Demo(super::demo::DemoArgs),
    /// The scripted agent of `spool demo`, run as `demo-agent STEP PROMPT` in a run's
    /// worktree.
    #[command(hide = true)]
    DemoAgent(super::demo::DemoAgentArgs),
    /// Run the daemon in the foreground: claim ready issues the selectors in
    /// `.spool/config.toml` match and run their templates, until Ctrl-C or SIGTERM.
    Up(super::daemon::UpArgs),
    /// Stop the daemon running on this repository (`spool up --detach` or another
    /// terminal): it stops claiming, lets running steps finish within its grace period,
    /// and exits.
    Down(super::daemon::DownArgs),
    /// The daemon's runs in this repository: issue, status, template, age, current step.
    Status,
    /// The full output of a run's steps, agent transcripts included (`-f` follows it).
    Logs(super::logs::LogsArgs),
    /// Exit 0 when the run branch `spool/<ID>` has a commit after BASE (used by the
    /// `implement` template).
    #[command(hide = true)]
    VerifyCommits(super::daemon::VerifyCommitsArgs),
    /// Run one agent step of a run in the current directory (used by the `implement`
    /// template).
    #[command(hide = true)]
    AgentStep(super::daemon::AgentStepArgs),
    /// Run the workflow engine until interrupted.
    Worker {
        /// The run database (default: `.git/spool/spool.db` of this repository).
        #[arg(long = "spool-db", env = "SPOOL_DB", value_name = "PATH")]
        db: Option<std::path::PathBuf>,
        #[command(flatten)]
        args: super::worker::WorkerArgs,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Issue id prefix (default: the directory name).
    #[arg(long, short = 'p')]
    pub prefix: Option<String>,
    /// Also write the daemon's commented `.spool/config.toml` (for `spool up`); works
    /// on an initialized backlog too.
    #[arg(long)]
    pub daemon: bool,
}

#[derive(Debug, Args, Default)]
pub struct CreateArgs {
    /// Title (or use --title).
    pub title: Option<String>,
    #[arg(long = "title", hide = true, conflicts_with = "title")]
    pub title_flag: Option<String>,
    /// Issue type: bug, feature, task, epic, chore, ... (default task).
    #[arg(short = 't', long = "type")]
    pub issue_type: Option<String>,
    /// Priority 0 (critical) to 4 (backlog); also P0..P4. Default 2.
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    #[arg(short = 'd', long, alias = "body")]
    pub description: Option<String>,
    #[arg(long)]
    pub design: Option<String>,
    #[arg(long, alias = "acceptance-criteria")]
    pub acceptance: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// Labels (repeat or comma-separate).
    #[arg(short = 'l', long = "labels", alias = "label", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Make this a child of PARENT (id `<parent>.<n>`).
    #[arg(long)]
    pub parent: Option<String>,
    /// Dependencies: `type:id` or `id` (blocks), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub deps: Vec<String>,
    /// Use this exact id.
    #[arg(long)]
    pub id: Option<String>,
    #[arg(short = 'a', long)]
    pub assignee: Option<String>,
    #[arg(long)]
    pub external_ref: Option<String>,
    /// Hide from ready until this time (RFC3339, YYYY-MM-DD, or +6h/+2d).
    #[arg(long)]
    pub defer: Option<String>,
    /// Due time (RFC3339, YYYY-MM-DD, or +6h/+2d).
    #[arg(long)]
    pub due: Option<String>,
    /// Estimated minutes of work.
    #[arg(long)]
    pub estimate: Option<i64>,
    /// Print only the id.
    #[arg(long)]
    pub silent: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct ListArgs {
    /// Statuses, comma-separated.
    #[arg(short = 's', long, value_delimiter = ',')]
    pub status: Vec<String>,
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub issue_type: Vec<String>,
    /// Must have all of these labels.
    #[arg(short = 'l', long = "label", value_delimiter = ',')]
    pub label: Vec<String>,
    /// Must have at least one of these labels.
    #[arg(long = "label-any", value_delimiter = ',')]
    pub label_any: Vec<String>,
    #[arg(short = 'a', long)]
    pub assignee: Option<String>,
    /// Only unassigned issues.
    #[arg(long, alias = "unassigned")]
    pub no_assignee: bool,
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    /// Title contains (case-insensitive).
    #[arg(long, alias = "title-contains")]
    pub title: Option<String>,
    /// Descendants of this issue.
    #[arg(long)]
    pub parent: Option<String>,
    /// Include closed issues (and everything else hidden by default).
    #[arg(long)]
    pub all: bool,
    /// At most N issues (0 = all).
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
    /// priority, created, updated, closed, status, id, title, type, assignee.
    #[arg(long, default_value = "priority")]
    pub sort: String,
    #[arg(long)]
    pub reverse: bool,
}

#[derive(Debug, Args, Default)]
pub struct ReadyArgs {
    /// At most N issues (0 = all).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub limit: usize,
    /// priority (default), hybrid, oldest.
    #[arg(short = 's', long, default_value = "priority")]
    pub sort: String,
    #[arg(short = 'a', long)]
    pub assignee: Option<String>,
    #[arg(short = 'u', long)]
    pub unassigned: bool,
    /// Must have all of these labels.
    #[arg(short = 'l', long = "label", value_delimiter = ',')]
    pub label: Vec<String>,
    /// Must have at least one of these labels.
    #[arg(long = "label-any", value_delimiter = ',')]
    pub label_any: Vec<String>,
    /// Only these types (replaces the default exclusion of infrastructure types).
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub issue_type: Vec<String>,
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    /// Descendants of this issue.
    #[arg(long)]
    pub parent: Option<String>,
    /// Say for each issue why it is or isn't ready.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args, Default)]
pub struct BlockedArgs {
    #[arg(long)]
    pub parent: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct UpdateArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[arg(short = 's', long)]
    pub status: Option<String>,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(short = 't', long = "type")]
    pub issue_type: Option<String>,
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    #[arg(short = 'a', long)]
    pub assignee: Option<String>,
    #[arg(short = 'd', long, alias = "body")]
    pub description: Option<String>,
    #[arg(long)]
    pub design: Option<String>,
    #[arg(long, alias = "acceptance-criteria")]
    pub acceptance: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    #[arg(long)]
    pub append_notes: Option<String>,
    #[arg(long = "add-label", value_delimiter = ',')]
    pub add_label: Vec<String>,
    #[arg(long = "remove-label", value_delimiter = ',')]
    pub remove_label: Vec<String>,
    /// New parent (empty string removes the parent).
    #[arg(long)]
    pub parent: Option<String>,
    /// Hide from ready until (RFC3339, YYYY-MM-DD, +6h/+2d; empty clears).
    #[arg(long)]
    pub defer: Option<String>,
    /// Due time (RFC3339, YYYY-MM-DD, +6h/+2d; empty clears).
    #[arg(long)]
    pub due: Option<String>,
    #[arg(long)]
    pub external_ref: Option<String>,
    #[arg(long)]
    pub estimate: Option<i64>,
    /// Atomically claim: open and unassigned (or yours) → in_progress, assigned to you.
    #[arg(long)]
    pub claim: bool,
}

#[derive(Debug, Args, Default)]
pub struct CloseArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[arg(short = 'r', long, aliases = ["comment", "resolution"])]
    pub reason: Option<String>,
    /// Close even with open blockers, open children, or pinned.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args, Default)]
pub struct ReopenArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[arg(short = 'r', long)]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DepCommand {
    /// ISSUE depends on DEPENDS_ON (default type blocks).
    Add {
        issue: String,
        depends_on: String,
        #[arg(short = 't', long = "type", default_value = "blocks")]
        dep_type: String,
    },
    /// Remove the edge from ISSUE to DEPENDS_ON.
    #[command(alias = "rm")]
    Remove { issue: String, depends_on: String },
    /// An issue's dependencies (down) or dependents (up).
    List {
        issue: String,
        #[arg(long, default_value = "down")]
        direction: String,
    },
    /// The dependency tree of an issue.
    Tree {
        issue: String,
        #[arg(long, default_value = "down")]
        direction: String,
        #[arg(long, default_value_t = 50)]
        max_depth: usize,
    },
    /// Blocking cycles in the backlog.
    Cycles,
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Add a label to issues: `label add ID... LABEL`.
    Add {
        /// Issue ids, then the label.
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
    },
    /// Remove a label from issues: `label remove ID... LABEL`.
    #[command(alias = "rm")]
    Remove {
        /// Issue ids, then the label.
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
    },
    /// An issue's labels.
    List { id: String },
    /// Every label in use, with counts.
    ListAll,
}

#[derive(Debug, Args)]
pub struct CommentsArgs {
    /// `add` to add a comment, else the issue id.
    pub first: String,
    /// With `add`: ID TEXT.
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommentAddArgs {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Args, Default)]
pub struct DoctorArgs {
    /// `validate` (default: every check) or `pollution`.
    #[arg(long)]
    pub check: Option<String>,
    /// Accepted for bd compatibility: the validate check never rewrites the file.
    #[arg(long, hide = true)]
    pub fix: bool,
    /// With `--check=pollution`: delete (tombstone) the test issues found, after
    /// confirmation.
    #[arg(long)]
    pub clean: bool,
    /// Do not ask for confirmation (needed for `--clean` when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Check this file instead of the workspace backlog (e.g. a staged copy).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ExportArgs {
    /// Output file (default stdout).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// `v1` (bd v1: `_type`, counts) or `classic`.
    #[arg(long, default_value = "v1")]
    pub format: String,
    /// Include tombstones.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args, Default)]
pub struct ImportArgs {
    /// JSONL file to import (`-`, or none, for stdin).
    pub file: Option<PathBuf>,
    /// The file to import, as classic bd takes it (`bd import -i FILE`).
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    pub input: Option<PathBuf>,
    /// Show what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
}
