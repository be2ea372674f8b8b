//! The ready cache end to end: it never changes an answer, notices every change of the
//! backlog (even one that keeps the size and restores the mtime), and survives a corrupt
//! or unwritable cache.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

use common::{fixtures_dir, TestEnv};

fn line(id: &str, status: &str, priority: u8) -> String {
    format!(
        r#"{{"id":"{id}","title":"Issue {id}","status":"{status}","priority":{priority},"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"#
    )
}

fn cache_file(env: &TestEnv) -> PathBuf {
    env.root().join(".beads/.spool/ready-cache.bin")
}

fn run_uncached(env: &TestEnv, args: &[&str]) -> Output {
    env.cmd()
        .args(args)
        .env("SPOOL_NO_CACHE", "1")
        .output()
        .expect("spawn spool")
}

fn same(a: &Output, b: &Output, what: &str) {
    assert_eq!(a.status.code(), b.status.code(), "{what}: exit status");
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout),
        "{what}: stdout"
    );
    assert_eq!(
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
        "{what}: stderr"
    );
}

/// Waits (with a deadline) until the backlog's last change is older than the cache's
/// racy window, so that the stat key alone is trusted.
fn wait_until_not_racy(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let meta = std::fs::metadata(env.issues_path()).expect("stat backlog");
        let changed =
            SystemTime::UNIX_EPOCH + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
        let age = SystemTime::now()
            .duration_since(changed)
            .unwrap_or(Duration::ZERO);
        if age > Duration::from_secs(4) {
            return;
        }
        assert!(Instant::now() < deadline, "the clock does not advance");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_fixture_answers_the_same_with_and_without_the_cache() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let env = TestEnv::with_backlog(&text);
        let name = path.display().to_string();
        for args in [
            &["ready", "--json"][..],
            &["ready", "--json", "--limit", "0"],
            &["ready", "--sort", "oldest", "--limit", "3"],
            &["ready", "--json", "--sort", "hybrid", "--unassigned"],
            &["ready", "--json", "--type", "epic", "--limit", "0"],
        ] {
            let _ = std::fs::remove_dir_all(env.root().join(".beads/.spool"));
            let reference = run_uncached(&env, args);
            let cold = env.run(args);
            same(&reference, &cold, &format!("{name} {args:?} cold"));
            if reference.status.success() {
                assert!(cache_file(&env).is_file(), "{name}: no cache written");
            }
            let warm = env.run(args);
            same(&reference, &warm, &format!("{name} {args:?} warm"));
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures found");
}

#[test]
fn an_edit_with_the_same_size_and_restored_mtime_is_noticed() {
    let text = format!("{}\n{}\n", line("t-a", "open", 1), line("t-b", "open", 2));
    let env = TestEnv::with_backlog(&text);
    let mtime = SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::File::options()
        .write(true)
        .open(env.issues_path())
        .expect("open");
    f.set_modified(mtime).expect("set mtime");
    drop(f);
    assert_eq!(
        common::ids(&env.json(&["ready"])),
        ["t-a", "t-b"],
        "cold answer"
    );
    wait_until_not_racy(&env);
    // The first run after the racy window verifies by content and re-stamps the cache;
    // the next one trusts the stat alone and leaves the cache file as it is.
    env.json(&["ready"]);
    let stamped = std::fs::metadata(cache_file(&env)).expect("cache").ino();
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a", "t-b"]);
    assert_eq!(
        std::fs::metadata(cache_file(&env)).expect("cache").ino(),
        stamped,
        "a trusted cache is not rewritten"
    );

    // Same size, same inode, mtime restored: only the ctime tells.
    let edited = text.replacen(r#""status":"open""#, r#""status":"done""#, 1);
    assert_eq!(edited.len(), text.len());
    std::fs::write(env.issues_path(), &edited).expect("rewrite in place");
    let f = std::fs::File::options()
        .write(true)
        .open(env.issues_path())
        .expect("open");
    f.set_modified(mtime).expect("restore mtime");
    drop(f);
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-b"], "edit missed");
    assert_ne!(
        std::fs::metadata(cache_file(&env)).expect("cache").ino(),
        stamped,
        "the stale cache is replaced"
    );
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-b"]);
}

#[test]
fn an_edit_right_after_the_cache_was_built_is_noticed() {
    let text = format!("{}\n{}\n", line("t-a", "open", 1), line("t-b", "open", 2));
    let env = TestEnv::with_backlog(&text);
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a", "t-b"]);
    let edited = text.replacen(r#""priority":1"#, r#""priority":3"#, 1);
    std::fs::write(env.issues_path(), &edited).expect("rewrite in place");
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-b", "t-a"]);
}

#[test]
fn a_write_by_spool_is_noticed() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "open", 2)));
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a"]);
    env.ok(&["close", "t-a"]);
    assert!(common::ids(&env.json(&["ready"])).is_empty());
}

#[test]
fn a_corrupt_cache_is_ignored_and_replaced() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", "open", 1),
        line("t-b", "open", 2)
    ));
    let good = env.ok(&["ready", "--json"]);
    let cache = cache_file(&env);
    let original = std::fs::read(&cache).expect("cache written");
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    for garbage in [
        b"not a cache at all".to_vec(),
        Vec::new(),
        original[..original.len() / 2].to_vec(),
        flipped,
    ] {
        std::fs::write(&cache, &garbage).expect("corrupt the cache");
        assert_eq!(env.ok(&["ready", "--json"]), good);
        let replaced = std::fs::read(&cache).expect("cache rewritten");
        assert_ne!(replaced, garbage, "corrupt cache left in place");
        assert_eq!(env.ok(&["ready", "--json"]), good);
    }
}

#[test]
fn an_unwritable_cache_location_only_costs_speed() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "open", 2)));
    // A file where the cache directory should be: nothing can be written there.
    std::fs::write(env.root().join(".beads/.spool"), "in the way").expect("write");
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a"]);
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a"]);
}

#[test]
fn inside_a_git_repository_the_cache_lives_under_git_dir() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "open", 2)));
    std::fs::create_dir_all(env.root().join(".git")).expect("mkdir .git");
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a"]);
    assert!(env.root().join(".git/spool/ready-cache.bin").is_file());
    assert!(!cache_file(&env).exists(), "nothing cached inside .beads");
    assert_eq!(common::ids(&env.json(&["ready"])), ["t-a"]);
}
