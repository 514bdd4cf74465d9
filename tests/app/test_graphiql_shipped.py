"""GraphiQL's files ship in the package (app/static/graphiql/), so `pip install` alone gives a
working GraphiQL with no Node.js. This checks, without network, that they are what
``graphiql/package-lock.json`` pins and what the installed Strawberry's page loads.

What can be checked offline, and is:

* the manifest names, for each package, the version and ``integrity`` (the npm tarball's hash)
  that the lock file pins, and ``graphiql/package.json`` depends on exactly those packages, at
  those versions: a lock file changed without regenerating the files fails here;
* each shipped file has the sha256 the manifest records, and no file is there unlisted: a file
  edited, swapped or added by hand fails here;
* each file has the Subresource Integrity hash that Strawberry's page gives for its CDN URL,
  which names the same package and version: a file from another version fails here.

What needs the network (the files really are those tarballs' contents) is
``scripts/build_graphiql.py --check``: `npm ci` from the lock file (npm checks each tarball
against its ``integrity``), a fresh copy, and a byte-for-byte comparison.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from strawberry.http.ides import get_graphql_ide_html

from app.graphiql_assets import ASSETS_DIR, MANIFEST_NAME, find_page_assets

ROOT = Path(__file__).resolve().parents[2]
NPM_PROJECT = ROOT / "graphiql"
STRAWBERRY_PAGE = get_graphql_ide_html("graphiql")
REGENERATE = "run `python scripts/build_graphiql.py` and commit app/static/graphiql/"
# /<package>@<version>/<file>, the package maybe scoped (as scripts/build_graphiql.py reads it).
CDN_PATH = re.compile(r"/(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/")


def shipped_problems(assets_dir: Path, npm_project: Path, page_html: str) -> list[str]:
    """Every way the files in ``assets_dir`` differ from what the lock file and page pin."""
    manifest = _read(assets_dir / MANIFEST_NAME)
    lock = _read(npm_project / "package-lock.json")["packages"]
    dependencies: dict[str, str] = _read(npm_project / "package.json")["dependencies"]
    packages: dict[str, dict[str, str]] = manifest.get("packages", {})
    files: dict[str, dict[str, str]] = manifest.get("files", {})
    problems: list[str] = []

    if sorted(packages) != sorted(dependencies):
        problems.append(
            f"manifest packages {sorted(packages)} != package.json dependencies "
            f"{sorted(dependencies)}"
        )
    for name, shipped in packages.items():
        locked = lock.get(f"node_modules/{name}", {})
        pinned = {"version": locked.get("version"), "integrity": locked.get("integrity")}
        if shipped != pinned:
            problems.append(f"{name}: shipped {shipped}, the lock file pins {pinned}")
        if dependencies.get(name) != locked.get("version"):
            problems.append(f"{name}: package.json asks for {dependencies.get(name)}")

    on_disk = {
        str(path.relative_to(assets_dir))
        for path in assets_dir.rglob("*")
        if path.is_file() and path.name != MANIFEST_NAME
    }
    listed = {entry["file"] for entry in files.values()}
    problems += [f"{name}: on disk but not in the manifest" for name in sorted(on_disk - listed)]

    page = {asset.url: asset.integrity for asset in find_page_assets(page_html)}
    if sorted(files) != sorted(page):
        problems.append(f"the page loads {sorted(page)}, the manifest has {sorted(files)}")
    for url, entry in files.items():
        problems += _file_problems(assets_dir, url, entry, packages, page.get(url))
    return problems


def _file_problems(
    assets_dir: Path,
    url: str,
    entry: dict[str, str],
    packages: dict[str, dict[str, str]],
    page_integrity: str | None,
) -> list[str]:
    file, package = entry["file"], entry["package"]
    version = packages.get(package, {}).get("version")
    match = CDN_PATH.search(url)
    if match is None or (match["package"], match["version"]) != (package, version):
        return [f"{url}: not a file of {package}@{version}"]
    if not file.startswith(f"{package}@{version}/"):
        return [f"{file}: not under {package}@{version}/"]
    path = assets_dir / file
    if not path.is_file():
        return [f"{file}: missing"]
    data = path.read_bytes()
    problems = []
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        problems.append(f"{file}: its sha256 is not the manifest's")
    sri = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    if not (entry["integrity"] == page_integrity == sri):
        problems.append(
            f"{file}: is {sri}; the manifest says {entry['integrity']}, the page {page_integrity}"
        )
    return problems


def _read(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def test_the_shipped_files_are_what_the_lock_file_and_the_page_pin() -> None:
    assert (ASSETS_DIR / MANIFEST_NAME).is_file(), f"no GraphiQL files in {ASSETS_DIR}"
    assert shipped_problems(ASSETS_DIR, NPM_PROJECT, STRAWBERRY_PAGE) == [], REGENERATE


def test_the_shipped_files_are_every_file_of_the_page() -> None:
    manifest = _read(ASSETS_DIR / MANIFEST_NAME)
    assert len(manifest["files"]) == len(find_page_assets(STRAWBERRY_PAGE)) == 7
    assert sorted(manifest["packages"]) == [
        "@graphiql/plugin-explorer",
        "graphiql",
        "js-cookie",
        "react",
        "react-dom",
    ]


# --- the check fails when it should -----------------------------------------------------------


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the shipped files and of graphiql/'s package files, to spoil."""
    assets, npm_project = tmp_path / "graphiql-assets", tmp_path / "graphiql"
    shutil.copytree(ASSETS_DIR, assets)
    npm_project.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_PROJECT / name, npm_project / name)
    assert shipped_problems(assets, npm_project, STRAWBERRY_PAGE) == []
    return assets, npm_project


def _edit_json(path: Path, edit: Any) -> None:
    value = _read(path)
    edit(value)
    path.write_text(json.dumps(value), encoding="utf-8")


def test_a_lock_file_upgraded_without_regenerating_the_files_fails(
    copies: tuple[Path, Path],
) -> None:
    assets, npm_project = copies

    def upgrade(lock: dict[str, Any]) -> None:
        lock["packages"]["node_modules/react"] |= {"version": "18.3.1", "integrity": "sha512-x"}

    _edit_json(npm_project / "package-lock.json", upgrade)

    problems = shipped_problems(assets, npm_project, STRAWBERRY_PAGE)
    assert any(problem.startswith("react: shipped") for problem in problems), problems


def test_a_lock_file_with_another_tarball_of_the_same_version_fails(
    copies: tuple[Path, Path],
) -> None:
    assets, npm_project = copies

    def swap(lock: dict[str, Any]) -> None:
        lock["packages"]["node_modules/graphiql"]["integrity"] = "sha512-another"

    _edit_json(npm_project / "package-lock.json", swap)

    problems = shipped_problems(assets, npm_project, STRAWBERRY_PAGE)
    assert any(problem.startswith("graphiql: shipped") for problem in problems), problems


def test_a_shipped_file_changed_by_hand_fails(copies: tuple[Path, Path]) -> None:
    assets, npm_project = copies
    script = assets / "react@18.2.0" / "umd" / "react.production.min.js"
    script.write_bytes(script.read_bytes() + b"\n// patched\n")

    problems = shipped_problems(assets, npm_project, STRAWBERRY_PAGE)
    assert len(problems) == 2, problems  # its sha256 and its integrity hash
    assert all(
        problem.startswith("react@18.2.0/umd/react.production.min.js") for problem in problems
    )


def test_a_file_changed_with_its_manifest_entry_still_fails_the_pages_hash(
    copies: tuple[Path, Path],
) -> None:
    assets, npm_project = copies
    script = assets / "js-cookie@3.0.5" / "dist" / "js.cookie.min.js"
    script.write_bytes(b"/* another js-cookie */")
    digest = hashlib.sha256(script.read_bytes()).hexdigest()

    def record(manifest: dict[str, Any]) -> None:
        for entry in manifest["files"].values():
            if entry["package"] == "js-cookie":
                entry["sha256"] = digest

    _edit_json(assets / MANIFEST_NAME, record)

    [problem] = shipped_problems(assets, npm_project, STRAWBERRY_PAGE)
    assert "the page sha384-" in problem


def test_an_unlisted_or_missing_file_fails(copies: tuple[Path, Path]) -> None:
    assets, npm_project = copies
    (assets / "react@18.2.0" / "umd" / "react.development.js").write_text("/* extra */")
    (assets / "graphiql@3.8.3" / "graphiql.min.css").unlink()

    problems = shipped_problems(assets, npm_project, STRAWBERRY_PAGE)
    assert problems == [
        "react@18.2.0/umd/react.development.js: on disk but not in the manifest",
        "graphiql@3.8.3/graphiql.min.css: missing",
    ]


def test_a_strawberry_page_that_loads_another_version_fails(copies: tuple[Path, Path]) -> None:
    assets, npm_project = copies
    newer_page = STRAWBERRY_PAGE.replace("graphiql@3.8.3", "graphiql@3.9.0")

    problems = shipped_problems(assets, npm_project, newer_page)
    assert problems[0].startswith("the page loads"), problems
