#!/usr/bin/env python3
"""Drives the official beads MCP server package (`beads-mcp`) against the spool binary.

beads-mcp talks to `bd` only through its executable (`BEADS_PATH`): it runs
`bd <subcommand> <args> [--actor X] --json`, parses stdout as one JSON document and
validates it with its pydantic models. This script points it at spool and walks every
client method that maps to a command spool implements, then the tool functions
(`beads_mcp.tools`) and the FastMCP server itself (in-memory client), asserting the
values that come back.

With a fixtures directory, it also runs the read commands over each real backlog there
and validates every issue object spool prints with beads-mcp's models.

Usage: check_beads_mcp.py SPOOL_BINARY [FIXTURES_DIR]
Exits non-zero at the first failure; prints `N passed, 0 failed` when all pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable

PASSED = 0


class CheckFailed(Exception):
    """An expectation about spool's answer did not hold."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


async def step(name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Runs one named check; the first failure ends the run."""
    global PASSED
    chatter = io.StringIO()  # beads-mcp logs every command it runs to stderr
    try:
        with contextlib.redirect_stderr(chatter):
            await body()
    except Exception as e:  # noqa: BLE001 - any failure, reported with its cause
        sys.stderr.write(chatter.getvalue())
        print(f"FAIL {name}: {type(e).__name__}: {e}", file=sys.stderr)
        stderr = getattr(e, "stderr", "")
        if stderr:
            print(f"  stderr: {stderr.strip()}", file=sys.stderr)
        if not isinstance(e, CheckFailed):
            traceback.print_exc(file=sys.stderr)
        print(f"{PASSED} passed, 1 failed")
        sys.exit(1)
    PASSED += 1
    print(f"ok {name}")


def ids(issues: list[Any]) -> list[str]:
    return [i.id for i in issues]


def id_set(issues: list[Any]) -> set[str]:
    return set(ids(issues))


async def expect_command_error(what: str, call: Awaitable[Any], mentions: str | None = None) -> None:
    from beads_mcp.bd_client import BdCommandError

    try:
        result = await call
    except BdCommandError as e:
        if mentions is not None:
            expect(
                mentions in (e.stderr or str(e)),
                f"{what}: error should mention {mentions!r}, got {e.stderr or e!s}",
            )
        return
    raise CheckFailed(f"{what}: expected BdCommandError, got {result!r}")


def jsonl_record(repo: Path, issue_id: str) -> dict[str, Any]:
    """The issue's line in `.beads/issues.jsonl`, as written to disk."""
    for line in (repo / ".beads" / "issues.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec.get("id") == issue_id:
                return rec
    raise CheckFailed(f"{issue_id} is not in .beads/issues.jsonl")


def git_init(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)


async def client_checks(spool: str, repo: Path, scratch: Path) -> None:
    from beads_mcp.bd_client import BdCliClient
    from beads_mcp.models import (
        AddCommentParams,
        AddDependencyParams,
        AddNoteParams,
        BlockedParams,
        ClaimIssueParams,
        CloseIssueParams,
        CreateIssueParams,
        InitParams,
        ListCommentsParams,
        ListIssuesParams,
        ReadyWorkParams,
        ReopenIssueParams,
        ShowIssueParams,
        UpdateIssueParams,
    )

    bd = BdCliClient(bd_path=spool, working_dir=str(repo), actor="alice")
    carol = BdCliClient(bd_path=spool, working_dir=str(repo), actor="carol")
    s: dict[str, Any] = {}  # issues created along the way, by role

    async def version() -> None:
        await bd._check_version()

    await step("_check_version accepts spool's `version`", version)

    async def init() -> None:
        out = await bd.init(InitParams(prefix="mcp"))
        expect("mcp" in out, f"init output should name the prefix: {out!r}")
        expect((repo / ".beads" / "issues.jsonl").is_file(), "init creates .beads/issues.jsonl")
        expect((repo / ".beads" / "metadata.json").is_file(), "init creates .beads/metadata.json")

    await step("init creates the backlog", init)

    async def init_twice() -> None:
        await expect_command_error("second init", bd.init(InitParams(prefix="mcp")))

    await step("init refuses an initialized backlog", init_twice)

    async def create_full() -> None:
        a = await bd.create(
            CreateIssueParams(
                title="Fix login crash",
                description="Login crashes on empty password",
                design="Guard the empty case",
                acceptance="No crash; error shown",
                external_ref="gh-9",
                priority=1,
                issue_type="bug",
                assignee="bob",
                labels=["backend", "urgent"],
            )
        )
        expect(a.id.startswith("mcp-"), f"new id uses the prefix: {a.id}")
        eq(a.title, "Fix login crash", "title")
        eq(a.description, "Login crashes on empty password", "description")
        eq(a.design, "Guard the empty case", "design")
        eq(a.acceptance_criteria, "No crash; error shown", "acceptance_criteria")
        eq(a.external_ref, "gh-9", "external_ref")
        eq(a.priority, 1, "priority")
        eq(a.issue_type, "bug", "issue_type")
        eq(a.assignee, "bob", "assignee")
        eq(a.status, "open", "status")
        eq(sorted(a.labels), ["backend", "urgent"], "labels")
        expect(a.closed_at is None, "a new issue has no closed_at")
        rec = jsonl_record(repo, a.id)
        eq(rec.get("created_by"), "alice", "created_by on disk is the --actor")
        eq(rec.get("external_ref"), "gh-9", "external_ref on disk")
        s["A"] = a

    await step("create with every field", create_full)

    async def create_with_id_and_deps() -> None:
        b = await bd.create(
            CreateIssueParams(
                title="Write release notes",
                priority=3,
                issue_type="task",
                id="mcp-notes",
                labels=["docs"],
                deps=[s["A"].id],
            )
        )
        eq(b.id, "mcp-notes", "explicit id")
        eq(b.labels, ["docs"], "labels")
        deps = jsonl_record(repo, b.id).get("dependencies", [])
        eq(
            [(d["depends_on_id"], d["type"]) for d in deps],
            [(s["A"].id, "blocks")],
            "--deps records a blocks edge on disk",
        )
        s["B"] = b

    await step("create with explicit id and deps", create_with_id_and_deps)

    async def create_epic_child_chore() -> None:
        e = await bd.create(CreateIssueParams(title="Search epic", issue_type="epic", priority=2))
        c = await bd.create(
            CreateIssueParams(
                title="Index documents",
                issue_type="feature",
                priority=2,
                labels=["backend"],
                deps=[f"parent-child:{e.id}"],
            )
        )
        d = await bd.create(CreateIssueParams(title="Tidy config", issue_type="chore", priority=4))
        deps = jsonl_record(repo, c.id).get("dependencies", [])
        eq([(x["depends_on_id"], x["type"]) for x in deps], [(e.id, "parent-child")], "typed dep spec")
        s.update(E=e, C=c, D=d)

    await step("create epic, child (type:id dep) and chore", create_epic_child_chore)

    async def create_duplicate_id() -> None:
        await expect_command_error(
            "create with an existing id", bd.create(CreateIssueParams(title="Again", id="mcp-notes"))
        )

    await step("create refuses an existing id", create_duplicate_id)

    A, B, C, D, E = s["A"].id, s["B"].id, s["C"].id, s["D"].id, s["E"].id

    # --- ready: every parameter ---------------------------------------------------
    async def ready_default() -> None:
        got = await bd.ready()
        eq(id_set(got), {A, C, D, E}, "ready: open issues without open blockers")
        expect(B not in ids(got), "B is blocked by A")

    await step("ready (defaults)", ready_default)

    async def ready_limit() -> None:
        got = await bd.ready(ReadyWorkParams(limit=1))
        eq(ids(got), [A], "limit=1 keeps the most urgent")

    await step("ready limit", ready_limit)

    async def ready_filters() -> None:
        eq(ids(await bd.ready(ReadyWorkParams(issue_type="feature"))), [C], "ready type=feature")
        eq(ids(await bd.ready(ReadyWorkParams(priority=4))), [D], "ready priority=4")
        eq(ids(await bd.ready(ReadyWorkParams(assignee="bob"))), [A], "ready assignee=bob")
        eq(ids(await bd.ready(ReadyWorkParams(labels=["backend", "urgent"]))), [A], "ready labels AND")
        eq(id_set(await bd.ready(ReadyWorkParams(labels=["backend"]))), {A, C}, "ready label backend")
        eq(ids(await bd.ready(ReadyWorkParams(labels_any=["urgent", "docs"]))), [A], "ready labels_any")
        eq(id_set(await bd.ready(ReadyWorkParams(unassigned=True))), {C, D, E}, "ready unassigned")
        eq(ids(await bd.ready(ReadyWorkParams(parent_id=E))), [C], "ready parent_id")

    await step("ready filters: type, priority, assignee, labels, labels_any, unassigned, parent", ready_filters)

    async def ready_sort() -> None:
        eq(ids(await bd.ready(ReadyWorkParams(sort_policy="oldest"))), [A, E, C, D], "sort oldest")
        eq(
            ids(await bd.ready(ReadyWorkParams(sort_policy="priority"))),
            [A, C, E, D],
            "sort priority (ties: newest first)",
        )
        hybrid = ids(await bd.ready(ReadyWorkParams(sort_policy="hybrid")))
        eq((hybrid[0], hybrid[-1], set(hybrid)), (A, D, {A, C, D, E}), "sort hybrid (all recent: by priority)")
        await expect_command_error("unknown sort", bd.ready(ReadyWorkParams(sort_policy="sideways")))

    await step("ready sort_policy", ready_sort)

    # --- list: every parameter ----------------------------------------------------
    async def list_all_params() -> None:
        eq(id_set(await bd.list_issues()), {A, B, C, D, E}, "list (defaults)")
        eq(id_set(await bd.list_issues(ListIssuesParams(status="open"))), {A, B, C, D, E}, "list status")
        eq(ids(await bd.list_issues(ListIssuesParams(priority=3))), [B], "list priority")
        eq(ids(await bd.list_issues(ListIssuesParams(issue_type="epic"))), [E], "list type")
        eq(ids(await bd.list_issues(ListIssuesParams(assignee="bob"))), [A], "list assignee")
        eq(ids(await bd.list_issues(ListIssuesParams(labels=["docs"]))), [B], "list labels")
        eq(
            id_set(await bd.list_issues(ListIssuesParams(labels_any=["docs", "urgent"]))),
            {A, B},
            "list labels_any",
        )
        eq(ids(await bd.list_issues(ListIssuesParams(query="RELEASE"))), [B], "list query (title)")
        eq(
            id_set(await bd.list_issues(ListIssuesParams(unassigned=True))),
            {B, C, D, E},
            "list unassigned",
        )
        eq(len(await bd.list_issues(ListIssuesParams(limit=2))), 2, "list limit")
        listed = {i.id: i for i in await bd.list_issues()}
        eq(listed[B].dependency_count, 1, "list: B has one dependency")
        eq(listed[A].dependent_count, 1, "list: A has one dependent")

    await step("list_issues with every parameter", list_all_params)

    # --- show ------------------------------------------------------------------------
    async def show_links() -> None:
        a = await bd.show(ShowIssueParams(issue_id=A))
        eq(a.title, "Fix login crash", "show title")
        eq(a.design, "Guard the empty case", "show design")
        eq([(d.id, d.dependency_type, d.title) for d in a.dependents], [(B, "blocks", "Write release notes")], "show A dependents")
        b = await bd.show(ShowIssueParams(issue_id=B))
        eq([(d.id, d.dependency_type, d.status) for d in b.dependencies], [(A, "blocks", "open")], "show B dependencies")
        expect(b.dependencies[0].created_at is not None, "linked issues carry created_at")
        e = await bd.show(ShowIssueParams(issue_id=E))
        eq([(d.id, d.dependency_type) for d in e.dependents], [(C, "parent-child")], "show epic dependents")
        short = await bd.show(ShowIssueParams(issue_id=A.removeprefix("mcp-")))
        eq(short.id, A, "show resolves a short id")

    await step("show with dependencies and dependents", show_links)

    # --- blocked / dependencies -------------------------------------------------------
    async def blocked_initial() -> None:
        got = await bd.blocked()
        eq(ids(got), [B], "blocked: B")
        eq((got[0].blocked_by, got[0].blocked_by_count), ([A], 1), "blocked_by")
        eq(await bd.blocked(BlockedParams(parent_id=E)), [], "nothing under E is blocked yet")

    await step("blocked", blocked_initial)

    async def add_dependency() -> None:
        await bd.add_dependency(AddDependencyParams(issue_id=C, depends_on_id=D))
        await bd.add_dependency(AddDependencyParams(issue_id=D, depends_on_id=A, dep_type="related"))
        got = await bd.blocked(BlockedParams(parent_id=E))
        eq([(i.id, i.blocked_by) for i in got], [(C, [D])], "blocked under E")
        d = await bd.show(ShowIssueParams(issue_id=D))
        eq([(x.id, x.dependency_type) for x in d.dependencies], [(A, "related")], "related edge")
        eq([(x.id, x.dependency_type) for x in d.dependents], [(C, "blocks")], "D blocks C")
        ready = ids(await bd.ready())
        expect(D in ready and C not in ready, f"related does not block, blocks does: {ready}")
        eq(ids(await bd.ready(ReadyWorkParams(parent_id=E))), [], "ready under E is empty")

    await step("add_dependency (blocks, related) and blocked(parent_id)", add_dependency)

    async def dependency_refusals() -> None:
        await expect_command_error(
            "blocking cycle", bd.add_dependency(AddDependencyParams(issue_id=A, depends_on_id=B))
        )
        await expect_command_error(
            "self edge", bd.add_dependency(AddDependencyParams(issue_id=A, depends_on_id=A))
        )

    await step("add_dependency refuses cycles and self edges", dependency_refusals)

    # --- update -------------------------------------------------------------------------
    async def update_every_field() -> None:
        u = await bd.update(
            UpdateIssueParams(
                issue_id=A,
                status="in_progress",
                priority=0,
                assignee="carol",
                title="Fix login crash on Safari",
                description="Safari only",
                design="Guard both cases",
                acceptance_criteria="No crash anywhere",
                notes="Reproduced on 17.1",
                external_ref="gh-10",
            )
        )
        eq(u.id, A, "update returns the issue")
        eq(
            (u.status, u.priority, u.assignee, u.title, u.description),
            ("in_progress", 0, "carol", "Fix login crash on Safari", "Safari only"),
            "update status/priority/assignee/title/description",
        )
        eq(
            (u.design, u.acceptance_criteria, u.notes, u.external_ref),
            ("Guard both cases", "No crash anywhere", "Reproduced on 17.1", "gh-10"),
            "update design/acceptance/notes/external_ref",
        )
        expect(u.updated_at >= s["A"].updated_at, "updated_at moves forward")
        shown = await bd.show(ShowIssueParams(issue_id=A))
        eq((shown.status, shown.external_ref), ("in_progress", "gh-10"), "show sees the update")

    await step("update with every parameter", update_every_field)

    async def update_issue_with_links() -> None:
        u = await bd.update(UpdateIssueParams(issue_id=B, priority=2))
        eq((u.id, u.priority), (B, 2), "update an issue that has dependencies")

    await step("update returns a valid issue when it has dependencies", update_issue_with_links)

    # --- claim --------------------------------------------------------------------------
    async def claim() -> None:
        got = await bd.claim(ClaimIssueParams(issue_id=D))
        eq((got.id, got.status, got.assignee), (D, "in_progress", "alice"), "claim")
        again = await bd.claim(ClaimIssueParams(issue_id=D))
        eq((again.status, again.assignee), ("in_progress", "alice"), "re-claim by the holder")
        await expect_command_error("claim by another actor", carol.claim(ClaimIssueParams(issue_id=D)), "alice")
        eq(jsonl_record(repo, D).get("assignee"), "alice", "the failed claim changed nothing")

    await step("claim, and a second actor's claim fails", claim)

    # --- close / reopen -----------------------------------------------------------------
    async def close() -> None:
        closed = await bd.close(CloseIssueParams(issue_id=A, reason="Fixed in abc123"))
        eq([(i.id, i.status) for i in closed], [(A, "closed")], "close")
        expect(closed[0].closed_at is not None, "closed_at is set")
        eq(jsonl_record(repo, A).get("close_reason"), "Fixed in abc123", "close_reason on disk")
        expect(B in ids(await bd.ready()), "closing A makes B ready")
        eq(ids(await bd.list_issues(ListIssuesParams(status="closed"))), [A], "list status=closed")

    await step("close", close)

    async def reopen() -> None:
        got = await bd.reopen(ReopenIssueParams(issue_ids=[A], reason="Regression found"))
        eq([(i.id, i.status, i.closed_at) for i in got], [(A, "open", None)], "reopen")
        expect(B not in ids(await bd.ready()), "reopened A blocks B again")
        await expect_command_error("reopen an open issue", bd.reopen(ReopenIssueParams(issue_ids=[A])))

    await step("reopen with reason", reopen)

    # --- comments and notes ---------------------------------------------------------------
    async def comments() -> None:
        msg = await bd.add_comment(AddCommentParams(issue_id=B, text="Drafted the outline"))
        expect(B in msg, f"add_comment confirmation: {msg!r}")
        await bd.add_comment(AddCommentParams(issue_id=B, text="Second pass <done> & checked"))
        got = await bd.list_comments(ListCommentsParams(issue_id=B))
        eq([c.text for c in got], ["Drafted the outline", "Second pass <done> & checked"], "comment texts")
        eq({c.author for c in got}, {"alice"}, "comment author is the actor")
        eq({c.issue_id for c in got}, {B}, "comment issue_id")
        expect(all(c.id for c in got) and len({c.id for c in got}) == 2, f"distinct string ids: {got}")
        eq(await bd.list_comments(ListCommentsParams(issue_id=C)), [], "no comments")

    await step("add_comment and list_comments", comments)

    async def notes() -> None:
        msg = await bd.add_note(AddNoteParams(issue_id=C, text="first note"))
        expect(C in msg, f"add_note confirmation: {msg!r}")
        await bd.add_note(AddNoteParams(issue_id=C, text="second note"))
        notes = (await bd.show(ShowIssueParams(issue_id=C))).notes or ""
        expect(
            "first note" in notes and notes.index("first note") < notes.index("second note"),
            f"notes appended in order: {notes!r}",
        )

    await step("add_note appends", notes)

    # --- stats, quickstart, doctor ---------------------------------------------------------
    async def stats() -> None:
        st = (await bd.stats()).summary
        open_ = await bd.list_issues(ListIssuesParams(status="open"))
        in_progress = await bd.list_issues(ListIssuesParams(status="in_progress"))
        closed = await bd.list_issues(ListIssuesParams(status="closed"))
        eq(st.total_issues, 5, "total_issues")
        eq(
            (st.open_issues, st.in_progress_issues, st.closed_issues),
            (len(open_), len(in_progress), len(closed)),
            "status counts agree with list",
        )
        eq(st.blocked_issues, len(await bd.blocked()), "blocked_issues agrees with blocked")
        eq(st.ready_issues, len(await bd.ready(ReadyWorkParams(limit=100))), "ready_issues agrees with ready")

    await step("stats", stats)

    async def quickstart() -> None:
        text = await bd.quickstart()
        expect("ready" in text and "close" in text, f"quickstart text: {text[:200]!r}")

    await step("quickstart", quickstart)

    async def validate() -> None:
        report = await bd.validate()
        eq((report.get("ok"), report.get("errors")), (True, 0), f"validate on a healthy backlog: {report}")
        report = await bd.validate(checks="orphans", fix_all=True)
        eq(report.get("ok"), True, "validate with fix_all")

    await step("validate (doctor --check=validate)", validate)

    async def pollution() -> None:
        leaked = await bd.create(CreateIssueParams(title="test issue 1"))
        report = await bd.detect_pollution()
        found = [i["id"] for i in report.get("issues", [])]
        eq(found, [leaked.id], "pollution finds the test issue only")
        eq(report.get("polluted_count"), 1, "bd's polluted_count")
        expect("deleted_count" not in report, f"detection alone deletes nothing: {report}")
        eq(jsonl_record(repo, leaked.id).get("status"), "open", "detection leaves the issue as it is")
        s["leaked"] = leaked.id

    await step("detect_pollution", pollution)

    async def pollution_clean() -> None:
        leaked = s["leaked"]
        before = {i.id for i in await bd.list_issues(ListIssuesParams(limit=100))}
        expect(leaked in before, "the test issue is listed before the clean")
        report = await bd.detect_pollution(clean=True)
        eq((report.get("deleted_count"), report.get("deleted")), (1, [leaked]), f"clean deletes it: {report}")
        rec = jsonl_record(repo, leaked)
        eq(
            (rec.get("status"), rec.get("deleted_by"), rec.get("original_type"), rec.get("title")),
            ("tombstone", "alice", "task", "test issue 1"),
            "the issue's line becomes a tombstone",
        )
        expect(bool(rec.get("deleted_at")), f"deleted_at is set: {rec}")
        after = {i.id for i in await bd.list_issues(ListIssuesParams(limit=100))}
        eq(after, before - {leaked}, "the tombstone is no longer listed")
        eq((await bd.detect_pollution()).get("issues"), [], "nothing left to clean")

    await step("detect_pollution(clean=True) tombstones the test issue", pollution_clean)

    async def repair_deps() -> None:
        gone = await bd.create(CreateIssueParams(title="Removed by a teammate"))
        holder = await bd.create(CreateIssueParams(title="Waits on the removed issue", deps=[gone.id, f"related:{A}"]))
        path = repo / ".beads" / "issues.jsonl"
        kept = [l for l in path.read_text().splitlines(keepends=True) if json.loads(l).get("id") != gone.id]
        path.write_text("".join(kept))
        report = await bd.repair_deps()
        eq(
            report,
            {
                "orphans_found": 1,
                "orphans": [{"issue_id": holder.id, "depends_on_id": gone.id, "type": "blocks"}],
            },
            "repair_deps finds the edge to the removed issue",
        )
        eq(path.read_text(), "".join(kept), "repair_deps without fix writes nothing")
        fixed = await bd.repair_deps(fix=True)
        eq((fixed.get("orphans_found"), fixed.get("fixed")), (1, 1), f"repair_deps(fix=True): {fixed}")
        deps = jsonl_record(repo, holder.id).get("dependencies", [])
        eq([d["depends_on_id"] for d in deps], [A], "only the orphaned edge is gone from the file")
        eq((await bd.repair_deps()).get("orphans_found"), 0, "nothing left to repair")
        await bd.close(CloseIssueParams(issue_id=holder.id))

    await step("repair_deps finds and removes orphaned dependencies", repair_deps)

    def backlog_facts() -> dict[str, Any]:
        """What the schema and migration answers must say, computed from the file."""
        records = [json.loads(l) for l in (repo / ".beads" / "issues.jsonl").read_text().splitlines() if l.strip()]
        in_effect: dict[str, dict[str, Any]] = {}
        for rec in records:
            in_effect.pop(rec["id"], None)
            in_effect[rec["id"]] = rec
        live = [r["id"] for r in records if in_effect.get(r["id"]) is r and r.get("status") != "tombstone"]
        return {
            "live": live,
            "tombstones": sum(1 for r in in_effect.values() if r.get("status") == "tombstone"),
            "lines": len(records),
            "fields": sorted({k for r in records for k in r}),
        }

    async def schema_info() -> None:
        facts = backlog_facts()
        version = json.loads(subprocess.run([spool, "version", "--json"], capture_output=True, check=True).stdout)
        info = await bd.get_schema_info()
        eq(info.get("issue_count"), len(facts["live"]), "issue_count: live issues in the file")
        eq(info.get("config"), {"issue_prefix": "mcp"}, "configured prefix")
        schema = info.get("schema") or {}
        eq(schema.get("schema_version"), version["version"], "schema_version is spool's bd version")
        eq(schema.get("sample_issue_ids"), facts["live"][:3], "sample ids: the first live ids")
        eq(schema.get("detected_prefix"), "mcp", "detected prefix")
        eq(schema.get("fields"), facts["fields"], "the issue fields present")
        eq(schema.get("tables"), ["issues", "dependencies", "labels", "comments"], "record kinds present")
        records = schema.get("records") or {}
        eq(
            (records.get("lines"), records.get("classic_issue_lines"), records.get("tombstones")),
            (facts["lines"], facts["lines"], facts["tombstones"]),
            f"record counts: {records}",
        )
        eq(facts["tombstones"], 1, "the cleaned test issue is the one tombstone")

    await step("get_schema_info describes the backlog", schema_info)

    async def migration() -> None:
        facts = backlog_facts()
        plan = await bd.inspect_migration()
        eq(plan.get("registered_migrations"), [], "no migrations: there is no database")
        eq(plan.get("warnings"), [], "no warnings on a healthy, configured backlog")
        eq(plan.get("invariants_to_check"), [], "no invariants")
        state = plan.get("current_state") or {}
        eq(
            (state.get("issue_count"), state.get("db_exists"), state.get("missing_config"), state.get("config")),
            (len(facts["live"]), False, [], {"issue_prefix": "mcp"}),
            f"current_state: {state}",
        )

    await step("inspect_migration reports the JSONL store", migration)

    # --- unknown ids ---------------------------------------------------------------------
    async def unknown_ids() -> None:
        nope = "mcp-doesnotexist"
        await expect_command_error("show", bd.show(ShowIssueParams(issue_id=nope)), nope)
        await expect_command_error("update", bd.update(UpdateIssueParams(issue_id=nope, priority=1)), nope)
        await expect_command_error("claim", bd.claim(ClaimIssueParams(issue_id=nope)), nope)
        await expect_command_error("close", bd.close(CloseIssueParams(issue_id=nope)), nope)
        await expect_command_error("reopen", bd.reopen(ReopenIssueParams(issue_ids=[nope])), nope)
        await expect_command_error(
            "add_dependency", bd.add_dependency(AddDependencyParams(issue_id=A, depends_on_id=nope)), nope
        )
        await expect_command_error("add_comment", bd.add_comment(AddCommentParams(issue_id=nope, text="x")), nope)
        await expect_command_error("list_comments", bd.list_comments(ListCommentsParams(issue_id=nope)), nope)
        await expect_command_error("add_note", bd.add_note(AddNoteParams(issue_id=nope, text="x")), nope)
        await expect_command_error("ready parent", bd.ready(ReadyWorkParams(parent_id=nope)), nope)

    await step("unknown ids raise BdCommandError", unknown_ids)

    # --- BEADS_DIR routing -------------------------------------------------------------------
    async def beads_dir() -> None:
        elsewhere = scratch / "elsewhere"
        elsewhere.mkdir()
        routed = BdCliClient(bd_path=spool, working_dir=str(elsewhere), beads_dir=str(repo / ".beads"), actor="dana")
        eq(id_set(await routed.list_issues()), {A, B, C, D, E}, "BEADS_DIR selects the backlog")
        made = await routed.create(CreateIssueParams(title="Routed issue"))
        eq(jsonl_record(repo, made.id).get("created_by"), "dana", "writes land in BEADS_DIR")
        await bd.close(CloseIssueParams(issue_id=made.id))

    await step("BEADS_DIR routes commands from another directory", beads_dir)


async def tool_checks(spool: str, scratch: Path) -> None:
    """The MCP tool functions, as the server calls them (client pool, version check)."""
    from beads_mcp import tools

    os.environ["BEADS_ACTOR"] = "tool-agent"
    fresh = scratch / "toolrepo"
    fresh.mkdir()
    git_init(fresh)
    tools.current_workspace.set(str(fresh))
    s: dict[str, Any] = {}

    async def init() -> None:
        out = await tools.beads_init(prefix="tl")
        expect("tl" in out, f"init output: {out!r}")

    await step("tools.beads_init", init)

    async def create_and_query() -> None:
        a = await tools.beads_create_issue(title="Tool task", description="made by a tool", labels=["x"])
        b = await tools.beads_create_issue(title="Tool follow-up", deps=[a.id], priority=1)
        eq((a.title, a.labels), ("Tool task", ["x"]), "tool create")
        eq(ids(await tools.beads_ready_work()), [a.id], "tool ready")
        eq(ids(await tools.beads_list_issues(query="follow")), [b.id], "tool list")
        eq([d.id for d in (await tools.beads_show_issue(issue_id=b.id)).dependencies], [a.id], "tool show")
        blocked = await tools.beads_blocked()
        eq([(i.id, i.blocked_by) for i in blocked], [(b.id, [a.id])], "tool blocked")
        s.update(a=a.id, b=b.id)

    await step("tools: create, ready, list, show, blocked", create_and_query)

    async def update_routes() -> None:
        a, b = s["a"], s["b"]
        u = await tools.beads_update_issue(issue_id=a, priority=0)
        eq(u.priority, 0, "tool update")
        claimed = await tools.beads_claim_issue(issue_id=a)
        eq((claimed.status, claimed.assignee), ("in_progress", "tool-agent"), "tool claim")
        closed = await tools.beads_update_issue(issue_id=a, status="closed", notes="done via tool")
        eq([(i.id, i.status) for i in closed], [(a, "closed")], "status=closed routes to close")
        eq(jsonl_record(fresh, a).get("close_reason"), "done via tool", "close reason")
        reopened = await tools.beads_update_issue(issue_id=a, status="open")
        eq([(i.id, i.status) for i in reopened], [(a, "open")], "status=open routes to reopen")
        closed = await tools.beads_close_issue(issue_id=a)
        eq(closed[0].status, "closed", "tool close")
        eq(ids(await tools.beads_ready_work()), [b], "b is ready once a is closed")

    await step("tools: update (with close/reopen routing), claim, close", update_routes)

    async def deps_comments_notes() -> None:
        a, b = s["a"], s["b"]
        msg = await tools.beads_add_dependency(issue_id=b, depends_on_id=a, dep_type="related")
        expect(msg.startswith("Error") and "already depends" in msg, f"one edge per pair: {msg!r}")
        c = await tools.beads_create_issue(title="Tool third")
        msg = await tools.beads_add_dependency(issue_id=c.id, depends_on_id=b)
        expect(msg.startswith("Added dependency"), f"tool dep: {msg!r}")
        msg = await tools.beads_add_dependency(issue_id=c.id, depends_on_id="tl-nope")
        expect(msg.startswith("Error") and "tl-nope" in msg, f"tool dep on unknown id: {msg!r}")
        await tools.beads_add_comment(issue_id=b, text="tool comment")
        eq([(x.text, x.author) for x in await tools.beads_list_comments(issue_id=b)], [("tool comment", "tool-agent")], "tool comments")
        await tools.beads_add_note(issue_id=b, text="tool note")
        eq((await tools.beads_show_issue(issue_id=b)).notes, "tool note", "tool note")

    await step("tools: dependency, comments, notes", deps_comments_notes)

    async def reports() -> None:
        st = (await tools.beads_stats()).summary
        eq((st.total_issues, st.closed_issues, st.blocked_issues), (3, 1, 1), "tool stats")
        expect("ready" in await tools.beads_quickstart(), "tool quickstart")
        eq((await tools.beads_validate()).get("ok"), True, "tool validate")
        eq((await tools.beads_detect_pollution()).get("issues"), [], "tool pollution")

    await step("tools: stats, quickstart, validate, detect_pollution", reports)

    async def maintenance() -> None:
        leftover = await tools.beads_create_issue(title="test")
        cleaned = await tools.beads_detect_pollution(clean=True)
        eq(cleaned.get("deleted"), [leftover.id], f"tool pollution clean: {cleaned}")
        eq(jsonl_record(fresh, leftover.id).get("deleted_by"), "tool-agent", "tombstoned by the tool's actor")
        eq(await tools.beads_repair_deps(fix=True), {"orphans_found": 0, "orphans": [], "fixed": 0}, "tool repair")
        schema = await tools.beads_get_schema_info()
        eq((schema.get("issue_count"), schema["schema"].get("detected_prefix")), (3, "tl"), "tool schema")
        plan = await tools.beads_inspect_migration()
        eq(plan["current_state"].get("issue_count"), 3, "tool migration plan")

    await step("tools: detect_pollution(clean), repair_deps, get_schema_info, inspect_migration", maintenance)


async def server_checks(scratch: Path) -> None:
    """The FastMCP server itself, through an in-memory MCP client."""
    from fastmcp import Client

    from beads_mcp import server

    repo = scratch / "toolrepo"

    def payload(result: Any) -> Any:
        if result.structured_content is not None:
            data = result.structured_content
            return data.get("result", data) if isinstance(data, dict) else data
        return json.loads(result.content[0].text)

    async def over_mcp() -> None:
        async with Client(server.mcp) as mcp:
            names = {t.name for t in await mcp.list_tools()}
            expect({"ready", "list", "show", "create", "update", "close", "stats"} <= names, f"tools: {names}")
            await mcp.call_tool("context", {"workspace_root": str(repo)})
            made = payload(await mcp.call_tool("create", {"title": "Over MCP", "priority": 1}))
            new_id = made["id"]
            ready = payload(await mcp.call_tool("ready", {}))
            expect(new_id in [i["id"] for i in ready], f"ready over MCP: {ready}")
            shown = payload(await mcp.call_tool("show", {"issue_id": new_id}))
            eq((shown["id"], shown["title"], shown["priority"]), (new_id, "Over MCP", 1), "show over MCP")
            blocked = payload(await mcp.call_tool("list", {"status": "blocked"}))
            expect(isinstance(blocked, list), f"list status=blocked: {blocked}")
            stats = payload(await mcp.call_tool("stats", {}))
            eq(stats["summary"]["total_issues"], 4, "stats over MCP")

    await step("FastMCP server: context, create, ready, show, list, stats", over_mcp)

    async def admin_over_mcp() -> None:
        async with Client(server.mcp) as mcp:
            await mcp.call_tool("context", {"workspace_root": str(repo)})
            schema = payload(await mcp.call_tool("admin", {"action": "schema"}))
            eq(schema["schema"]["detected_prefix"], "tl", "admin schema")
            plan = payload(await mcp.call_tool("admin", {"action": "migration"}))
            eq(plan["registered_migrations"], [], "admin migration")
            repair = payload(await mcp.call_tool("admin", {"action": "repair"}))
            eq(repair["orphans_found"], 0, "admin repair")
            pollution = payload(await mcp.call_tool("admin", {"action": "pollution", "clean": True}))
            eq(pollution["deleted_count"], 0, "admin pollution clean with nothing to clean")

    await step("FastMCP server: admin schema, migration, repair, pollution", admin_over_mcp)


def expected_orphans(path: Path) -> list[dict[str, str]]:
    """Dependencies of live issues whose target id is on no line (`external:` aside)."""
    in_effect: dict[str, dict[str, Any]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw) if raw.strip() else {}
        if "id" in rec and rec.get("_type", "issue") == "issue":
            in_effect.pop(rec["id"], None)
            in_effect[rec["id"]] = rec
    return [
        {"issue_id": rec["id"], "depends_on_id": d["depends_on_id"], "type": d.get("type", "")}
        for rec in in_effect.values()
        if rec.get("status") != "tombstone"
        for d in rec.get("dependencies") or []
        if d["depends_on_id"] not in in_effect and not d["depends_on_id"].startswith("external:")
    ]


async def fixture_checks(spool: str, fixtures: Path, scratch: Path) -> None:
    """Real backlogs of every bd generation: each issue object validates as beads-mcp's."""
    from beads_mcp.bd_client import BdCliClient, _sanitize_issue_deps
    from beads_mcp.models import Issue, ListIssuesParams, ReadyWorkParams, ShowIssueParams

    files = sorted(p for p in fixtures.glob("*.jsonl") if "deletions" not in p.name)
    expect(bool(files), f"no backlog fixtures in {fixtures}")
    for n, path in enumerate(files):
        repo = scratch / f"fixture{n}"
        (repo / ".beads").mkdir(parents=True)
        target = repo / ".beads" / "issues.jsonl"
        target.write_bytes(path.read_bytes())
        bd = BdCliClient(bd_path=spool, working_dir=str(repo), actor="reader")

        async def sweep() -> None:
            everything = await bd._run_command("list", "--all", "--limit", "0")
            expect(isinstance(everything, list) and everything, "list --all returns issues")
            for raw in everything:
                Issue.model_validate(_sanitize_issue_deps(raw))
            every_id = [i["id"] for i in everything]
            shown = await bd._run_command("show", *every_id)
            eq([i["id"] for i in shown], every_id, "show returns each issue asked for")
            for raw in shown:
                Issue.model_validate(raw)
            linked = [i for i in shown if i.get("dependencies") or i.get("dependents")][:3]
            for raw in linked:
                got = await bd.show(ShowIssueParams(issue_id=raw["id"]))
                eq(
                    [d.id for d in got.dependencies],
                    [d["id"] for d in raw["dependencies"]],
                    f"show {raw['id']} dependencies",
                )
            ready = await bd.ready(ReadyWorkParams(limit=100))
            blocked = await bd.blocked()
            await bd.list_issues(ListIssuesParams(limit=100))
            summary = (await bd.stats()).summary
            eq(summary.total_issues, len(everything), "stats total_issues")
            eq(summary.blocked_issues, len(blocked), "stats blocked_issues")
            expect(len(ready) == min(100, summary.ready_issues), "ready agrees with stats")
            info = await bd.get_schema_info()
            eq(info.get("issue_count"), summary.total_issues, "info issue_count agrees with stats")
            plan = await bd.inspect_migration()
            eq(plan["current_state"].get("issue_count"), summary.total_issues, "migration plan issue_count")
            eq(plan["current_state"]["records"].get("invalid_lines"), 0, "every line of a real backlog is read")
            eq((await bd.repair_deps()).get("orphans"), expected_orphans(target), "orphans computed from the file")
            expect(target.read_bytes() == path.read_bytes(), "reads leave the file untouched")

        await step(f"real backlog {path.name}", sweep)


async def main() -> None:
    if len(sys.argv) not in (2, 3):
        print("usage: check_beads_mcp.py SPOOL_BINARY [FIXTURES_DIR]", file=sys.stderr)
        sys.exit(2)
    spool = os.path.abspath(sys.argv[1])
    if not os.access(spool, os.X_OK):
        print(f"not an executable: {spool}", file=sys.stderr)
        sys.exit(2)
    # beads-mcp reads its configuration from the environment; start from a clean one.
    for var in ("BEADS_DIR", "BEADS_DB", "BEADS_WORKING_DIR", "BEADS_ACTOR", "BD_ACTOR", "SPOOL_NOW"):
        os.environ.pop(var, None)
    os.environ["BEADS_PATH"] = spool
    with tempfile.TemporaryDirectory(prefix="spool-mcp-") as tmp:
        scratch = Path(tmp).resolve()
        repo = scratch / "repo"
        repo.mkdir()
        git_init(repo)
        await client_checks(spool, repo, scratch)
        await tool_checks(spool, scratch)
        await server_checks(scratch)
        if len(sys.argv) == 3:
            await fixture_checks(spool, Path(sys.argv[2]), scratch)
    print(f"{PASSED} passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main())
