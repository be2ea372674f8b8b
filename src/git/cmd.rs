//! The one way spool runs the `git` binary.
//!
//! Used only for what gix cannot do (network, linked-worktree porcelain). Every call gets
//! the same safeguards, after jj's `git_subprocess.rs`:
//! - argv only, never a shell string;
//! - `-c core.fsmonitor=false -c submodule.recurse=false`, so a user's fsmonitor daemon or
//!   submodule settings never run or change what the command does;
//! - `LC_ALL=C` / `LC_MESSAGES=C` (and no `LANGUAGE`) so output can be parsed;
//! - `GIT_TERMINAL_PROMPT=0` and stdin `/dev/null`: a command that wants credentials fails
//!   instead of waiting for a person who is not there;
//! - the `GIT_DIR`-family variables are removed, so a `spool` started from inside a git
//!   hook still operates on the directory it was given;
//! - stdout and stderr captured; a timeout after which the process group is killed.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

/// How long a local git command may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables that would redirect git away from the directory we pass.
const REDIRECTING_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "LANGUAGE",
];

/// A failed `git` invocation.
#[derive(Debug, thiserror::Error)]
pub enum GitCommandError {
    #[error("could not run `git {args}`: {source}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` did not finish within {after:?} and was killed")]
    Timeout { args: String, after: Duration },
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
}

/// What a finished `git` process printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    /// Exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl GitOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A `git` invocation context: the directory it runs in and its deadline.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    timeout: Duration,
}

impl Git {
    /// Runs git in `dir` (a work tree, or a git dir for bare repositories).
    pub fn new(dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Network operations need a longer deadline than local ones.
    pub fn with_timeout(mut self, timeout: Duration) -> Git {
        self.timeout = timeout;
        self
    }

    /// Runs `git <args>` and fails unless it exits 0.
    pub fn run<I, S>(&self, args: I) -> Result<GitOutput, GitCommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.output(&args)?;
        if out.success() {
            Ok(out)
        } else {
            Err(GitCommandError::Failed {
                args: display_args(&args),
                status: match out.code {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".to_string(),
                },
                stderr: out.stderr.trim().to_string(),
            })
        }
    }

    /// Runs `git <args>` and returns its output whatever the exit code, for commands
    /// whose failures are answers (`push --porcelain`, `merge-base --is-ancestor`).
    pub fn output<I, S>(&self, args: I) -> Result<GitOutput, GitCommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let shown = display_args(&args);
        let mut cmd = Command::new("git");
        cmd.args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "submodule.recurse=false",
        ])
        .args(&args)
        .current_dir(&self.dir)
        .env("LC_ALL", "C")
        .env("LC_MESSAGES", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for var in REDIRECTING_ENV {
            cmd.env_remove(var);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so a timeout kills helpers (ssh, remote helpers) too.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| GitCommandError::Spawn {
            args: shown.clone(),
            source,
        })?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let waited = child.wait_timeout(self.timeout);
        let status = match waited {
            Ok(Some(status)) => status,
            Ok(None) | Err(_) => {
                kill_group(&mut child);
                let _ = child.wait();
                join(stdout);
                join(stderr);
                return Err(GitCommandError::Timeout {
                    args: shown,
                    after: self.timeout,
                });
            }
        };
        Ok(GitOutput {
            code: status.code(),
            stdout: join(stdout),
            stderr: String::from_utf8_lossy(&join(stderr)).into_owned(),
        })
    }
}

fn display_args(args: &[std::ffi::OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a pipe to the end on its own thread, so a chatty child never blocks on a full pipe.
fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn join(handle: Option<std::thread::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let _ = child.kill();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_hanging_command_is_killed_with_its_children_at_the_timeout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let git = Git::new(tmp.path()).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        // The alias runs through a shell whose `sleep` child holds the output pipes: only
        // killing the whole process group lets the call return.
        let err = git
            .run(["-c", "alias.hang=!sleep 30", "hang"])
            .expect_err("must time out");
        assert!(matches!(err, GitCommandError::Timeout { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "returned after {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn failures_carry_the_exit_code_and_stderr_in_english() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = Git::new(tmp.path())
            .run(["rev-parse", "--verify", "HEAD"])
            .expect_err("not a repository");
        let GitCommandError::Failed { status, stderr, .. } = &err else {
            panic!("expected a failure, got {err}");
        };
        assert_eq!(status, "exit 128");
        assert!(stderr.contains("not a git repository"), "{stderr}");
        let out = Git::new(tmp.path())
            .output(["-c", "alias.env=!env", "env"])
            .expect("run");
        let env = out.stdout_str();
        assert!(env.lines().any(|l| l == "LC_ALL=C"), "{env}");
        assert!(env.lines().any(|l| l == "GIT_TERMINAL_PROMPT=0"), "{env}");
    }
}
