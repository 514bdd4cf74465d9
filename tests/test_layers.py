"""The import rules of the three packages (STYLE: "imports flow one way"), read off the source
with `ast`, and the rule that a read on behalf of a viewer takes its owner.

Imports flow shell (`app.main`, `app.cli`) → `schema` → services (the rest of `app`) → `db` →
kernel (`app.settings`, `app.errors`, `app.auth`). Each test names a rule; a module that breaks
one fails it with the module, the line and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The kernel: the only `app` modules `db` may import (STYLE), and which import no other room.
KERNEL = frozenset({"app.settings", "app.errors", "app.auth"})
#: What the kernel may import besides itself: the database URL's parsing (a leaf of `db` that
#: imports no other module of the project), which the settings read.
KERNEL_LEAVES = frozenset({"db.url"})
#: The process shell: what builds the app and the command line; the only `app` modules that
#: may import `schema`.
SHELL = frozenset({"app.main", "app.cli"})
GRAPHQL_LIBRARIES = ("strawberry", "graphql")
WEB_LIBRARIES = ("starlette", "uvicorn")


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module an ``import`` or ``from … import`` names, with its line (also
    those inside functions and ``TYPE_CHECKING`` blocks: a lazy import is still a dependency)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # ``from app import media`` names ``app.media``
                yield node.lineno, f"{node.module}.{alias.name}"


def _within(module: str, packages: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def _broken(package: str, refused: object) -> list[str]:
    assert callable(refused)
    found = []
    for name, path in _modules(package):
        for line, imported in _imports(path):
            if refused(name, imported):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return found


def test_db_imports_only_the_kernel_of_app_and_nothing_of_graphql_or_the_web() -> None:
    def refused(_: str, imported: str) -> bool:
        if _within(imported, ("app",)):
            return imported != "app" and not _within(imported, KERNEL)
        return _within(imported, ("schema", *GRAPHQL_LIBRARIES, *WEB_LIBRARIES))

    assert _broken("db", refused) == []


def test_only_the_shell_of_app_imports_schema_or_graphql() -> None:
    def refused(module: str, imported: str) -> bool:
        if _within(module, SHELL):
            return False
        return _within(imported, ("schema", *GRAPHQL_LIBRARIES))

    assert _broken("app", refused) == []


def test_the_kernel_imports_no_other_room() -> None:
    leaves = [path for name, path in _modules("db") if name in KERNEL_LEAVES]
    assert leaves
    project = [imported for leaf in leaves for _, imported in _imports(leaf)]
    assert [m for m in project if _within(m, ("app", "db", "schema"))] == [], "leaves only"

    def refused(module: str, imported: str) -> bool:
        if not _within(module, KERNEL):
            return False
        if _within(imported, ("app",)):
            return imported != "app" and not _within(imported, KERNEL)
        if _within(imported, KERNEL_LEAVES):
            return False
        return _within(imported, ("db", "schema", *GRAPHQL_LIBRARIES, *WEB_LIBRARIES))

    assert _broken("app", refused) == []


def test_schema_never_imports_the_shell() -> None:
    def refused(_: str, imported: str) -> bool:
        return _within(imported, SHELL)

    assert _broken("schema", refused) == []


#: Public functions of `db.queries` that do not act for a viewer, and why. Every other public
#: function takes the owner (``owner_id(s)``, ``viewer_id``, ``actor_id(s)``, or ``keys`` of
#: (viewer, id) pairs) and filters by it.
NOT_FOR_A_VIEWER = {
    "audit.record_event": "writes an entry for the actor it is given",
    "audit.record_owned_change": "writes an entry for the row's own owner",
    "audit.transaction_now": "the database's clock",
    "changes.database_time": "the database's clock",
    "changes.job_states_between": "history of a job the subscription has read as its owner",
    "changes.video_states_between": "history of a video the subscription has read as its owner",
    "job_leases.renew_lease": "the worker's, through the lease it holds",
    "job_leases.check_lease": "the worker's, through the lease it holds",
    "job_leases.report_progress": "the worker's, through the lease it holds",
    "job_leases.finish": "the worker's, through the lease it holds",
    "job_leases.fail": "the worker's, through the lease it holds",
    "job_leases.hand_back": "the worker's, through the lease it holds",
    "job_queue.claim_next": "the worker claims any user's job",
    "job_queue.seconds_until_claimable": "the worker's wait",
    "job_stats.queue_stats": "metrics over every user",
    "pagination.fetch_pages": "generic: its caller passes the owner's condition as `where`",
    "pagination.count_for_parents": "generic: its caller passes the owner's condition as `where`",
    "purge.purge_deleted": "the operator's clean-up of every user's deleted rows",
    "purge.files_in_use": "the operator's clean-up",
    "purge.existing_profiles": "the operator's clean-up",
    "rate_limits.take": "buckets, not a user's rows",
    "rate_limits.refund": "buckets, not a user's rows",
    "rate_limits.wait_for": "buckets, not a user's rows",
    "rate_limits.sweep_idle": "buckets, not a user's rows",
    "users.get_user": "the account itself, by its id (the token's subject)",
    "users.get_user_by_email": "sign-in and seeding find the account",
    "users.ensure_user": "seeding and the token command create the account",
    "users.sign_in_user": "sign-in finds or creates the account",
    "video_media.media_is_live": "a signed media URL has been verified for its viewer",
    "video_media.published_media_path": "published media is public",
    "video_writes.has_active_job": "called with a video already read as its owner's",
    "voice_profiles.sample_is_live": "a signed media URL has been verified for its viewer",
    "voice_profiles.live_profile": "the worker reads the profile of the job it runs",
}
OWNER_PARAMETERS = frozenset(
    {"owner_id", "owner_ids", "viewer_id", "actor_id", "actor_ids", "keys"}
)


def test_every_public_query_function_takes_its_owner() -> None:
    missing, listed = [], set()
    for name, path in _modules("db/queries"):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            if node.name.startswith("_") or not isinstance(node, ast.AsyncFunctionDef):
                continue  # private, or not a statement (helpers that build conditions)
            key = f"{name.removeprefix('db.queries.')}.{node.name}"
            parameters = {a.arg for a in [*node.args.args, *node.args.kwonlyargs]}
            if key in NOT_FOR_A_VIEWER:
                listed.add(key)
            elif not parameters & OWNER_PARAMETERS:
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert missing == [], "take the owner, or say in NOT_FOR_A_VIEWER why not"
    assert sorted(set(NOT_FOR_A_VIEWER) - listed) == [], "listed but gone"
