#!/usr/bin/env python3
"""Regenerate GraphiQL's shipped browser files from ``graphiql/package-lock.json``.

    .venv/bin/python scripts/build_graphiql.py           # npm ci in graphiql/ if needed, then copy
    .venv/bin/python scripts/build_graphiql.py --no-npm  # use graphiql/node_modules as it is
    .venv/bin/python scripts/build_graphiql.py --check   # rebuild elsewhere, compare, write nothing

The files are committed in ``app/static/graphiql/`` and shipped in the package, so that
``GET /graphql`` works offline straight after ``pip install``, with no Node.js. This script is
only for changing them: after upgrading Strawberry (whose GraphiQL page names the versions) or
the pins in ``graphiql/package.json``. Commit what it writes.

Strawberry's GraphiQL page loads its scripts and stylesheets from a public CDN, each with an
``integrity`` hash. This script reads the installed page, finds every such file, installs the
same package versions with ``npm ci`` (exactly as the lock file pins them: npm checks each
tarball against the lock's ``integrity``), checks each file against the page's hash, and copies
it into ``app/static/graphiql/`` with ``manifest.json``: for each package its version and the
lock's ``integrity``; for each file the CDN URL it stands for, the page's hash and its sha256.
``app/graphiql_assets.py`` rewrites the page with it; ``tests/app/test_graphiql_shipped.py``
checks it, without network, against the lock file, the page and the files. A wrong version or
a hash mismatch stops the build with exit status 1, naming the file; the previous output is left
as it was.

Run it with the project's Python: it reads the page from the installed ``strawberry-graphql``.
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strawberry.http.ides import get_graphql_ide_html

from app.graphiql_assets import MANIFEST_NAME, PageAsset, find_page_assets

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "app" / "static" / "graphiql"
NPM_PROJECT = ROOT / "graphiql"
LOCK_FILE = NPM_PROJECT / "package-lock.json"
NODE_MODULES = NPM_PROJECT / "node_modules"
# What npm ci writes into node_modules: the packages it installed, with their integrity.
INSTALLED_LOCK = NODE_MODULES / ".package-lock.json"
NPM_CI = ["ci", "--no-audit", "--no-fund", "--ignore-scripts"]
# Written after a successful `npm ci`: the hash of the package files it installed from.
STAMP = NODE_MODULES / ".studio-build-stamp"

# A CDN path names an npm package file: /<package>@<version>/<file>, the package maybe scoped.
CDN_PATH = re.compile(r"^/(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<file>.+)$")
SRI_ALGORITHMS = ("sha256", "sha384", "sha512")  # weakest to strongest, as SRI ranks them


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class BuiltAsset:
    url: str
    package: str
    file: str  # path under OUTPUT, also the path under /graphiql-assets/
    source: Path
    integrity: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-npm", action="store_true", help="use graphiql/node_modules as it is (no npm ci)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="build into a temporary folder and compare with app/static/graphiql/ (exit 1 when "
        "they differ); writes nothing",
    )
    args = parser.parse_args()

    page = get_graphql_ide_html("graphiql")
    strawberry = f"strawberry-graphql {installed_version('strawberry-graphql')}"
    assets = find_page_assets(page)
    if not assets:
        print(f"error: {strawberry}'s GraphiQL page loads no external files", file=sys.stderr)
        return 1
    try:
        if not args.no_npm:
            install_packages()
        lock = locked_packages(_read_json(LOCK_FILE))
        installed = locked_packages(_read_json(INSTALLED_LOCK)) if INSTALLED_LOCK.is_file() else {}
        built = [check_asset(asset, lock, installed) for asset in assets]
        check_dependencies({asset.package for asset in built})
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    manifest = build_manifest(built, lock, installed_version("strawberry-graphql"))
    if args.check:
        return check_output(built, manifest)
    write_output(built, manifest, OUTPUT)
    print(f"GraphiQL for {strawberry}: {len(built)} files checked and copied to {OUTPUT}")
    for asset in built:
        print(f"  {asset.file} ({asset.source.stat().st_size:,} bytes)")
    print("Commit app/static/graphiql/ (and graphiql/package*.json if you changed them).")
    return 0


def install_packages() -> None:
    """``npm ci`` in graphiql/, unless node_modules was installed from the same package files."""
    stamp = _package_files_hash()
    if STAMP.is_file() and STAMP.read_text(encoding="utf-8").strip() == stamp:
        print("graphiql/node_modules is current (npm ci skipped)")
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm not found: install Node.js 20 or later (it includes npm)")
    # --ignore-scripts: only files are copied out of these packages; nothing needs to run.
    print(f"$ npm {' '.join(NPM_CI)}  (in graphiql/)", flush=True)
    # npm's peer-dependency warnings (graphiql-explorer asks for React 16) do not apply: the
    # page uses the packages' prebuilt bundles, which the integrity check below pins byte for byte.
    result = subprocess.run([npm, *NPM_CI, "--loglevel=error"], cwd=NPM_PROJECT, check=False)
    if result.returncode != 0:
        raise BuildError(f"npm ci failed with exit status {result.returncode}")
    STAMP.write_text(stamp + "\n", encoding="utf-8")


def locked_packages(lock: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every package a lock file pins at the top of node_modules: name → version, integrity."""
    packages: dict[str, dict[str, str]] = {}
    for path, entry in lock.get("packages", {}).items():
        name = path.removeprefix("node_modules/")
        if path.startswith("node_modules/") and "/node_modules/" not in path:
            packages[name] = {
                "version": str(entry.get("version", "")),
                "integrity": str(entry.get("integrity", "")),
            }
    return packages


def check_asset(
    asset: PageAsset, lock: dict[str, dict[str, str]], installed: dict[str, dict[str, str]]
) -> BuiltAsset:
    """The installed copy of a CDN file, after checking that the lock file pins the page's
    version, that node_modules holds what the lock pins, and the page's integrity hash."""
    match = CDN_PATH.match(urlsplit(asset.url).path)
    if match is None:
        raise BuildError(f"{asset.url}: not a /<package>@<version>/<file> URL")
    package, version, file = match["package"], match["version"], match["file"]
    pinned = lock.get(package, {}).get("version")
    if pinned != version:
        raise BuildError(
            f"{asset.url}: the page loads {package}@{version} but graphiql/package-lock.json "
            f"pins {package}@{pinned}; pin {package} to {version} in graphiql/package.json and "
            "run `npm install` in graphiql/"
        )
    if installed.get(package) != lock[package]:
        raise BuildError(
            f"graphiql/node_modules/{package} is not what graphiql/package-lock.json pins "
            "(run without --no-npm)"
        )
    source = NODE_MODULES / package / file
    if not source.is_file():
        raise BuildError(f"{asset.url}: {source.relative_to(ROOT)} does not exist")
    if not asset.integrity:
        raise BuildError(f"{asset.url}: the page gives no integrity hash to check it against")
    data = source.read_bytes()
    if not integrity_matches(data, asset.integrity):
        actual = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        raise BuildError(
            f"{source.relative_to(ROOT)} does not match {asset.url}: "
            f"the page expects {asset.integrity}, the file is {actual}"
        )
    return BuiltAsset(
        url=asset.url,
        package=package,
        file=f"{package}@{version}/{file}",
        source=source,
        integrity=asset.integrity,
    )


def check_dependencies(used: set[str]) -> None:
    """graphiql/package.json pins exactly the packages the page loads files from."""
    declared = set(_read_json(NPM_PROJECT / "package.json").get("dependencies", {}))
    if unused := declared - used:
        raise BuildError(
            f"graphiql/package.json depends on {', '.join(sorted(unused))}, which the page "
            "no longer loads: remove them and run `npm install` in graphiql/"
        )
    if undeclared := used - declared:
        raise BuildError(
            f"the page loads {', '.join(sorted(undeclared))}, which graphiql/package.json does "
            "not depend on directly: add them, pinned to the page's versions"
        )


def integrity_matches(data: bytes, integrity: str) -> bool:
    """Subresource Integrity: the data matches one of the strongest algorithm's hashes."""
    hashes: dict[str, set[str]] = {}
    for token in integrity.split():
        algorithm, _, digest = token.partition("-")
        if algorithm in SRI_ALGORITHMS and digest:
            hashes.setdefault(algorithm, set()).add(digest.split("?")[0])
    if not hashes:
        return False
    strongest = max(hashes, key=SRI_ALGORITHMS.index)
    actual = base64.b64encode(hashlib.new(strongest, data).digest()).decode()
    return actual in hashes[strongest]


def build_manifest(
    built: list[BuiltAsset], lock: dict[str, dict[str, str]], strawberry_version: str
) -> dict[str, Any]:
    """What the shipped files are: enough to check them against the lock file and the page."""
    return {
        "strawberry-graphql": strawberry_version,
        "packages": {name: lock[name] for name in sorted({asset.package for asset in built})},
        "files": {
            asset.url: {
                "file": asset.file,
                "package": asset.package,
                "integrity": asset.integrity,
                "sha256": hashlib.sha256(asset.source.read_bytes()).hexdigest(),
            }
            for asset in built
        },
    }


def write_output(built: list[BuiltAsset], manifest: dict[str, Any], output: Path) -> None:
    """Replace ``output`` as a whole, so that files of an older build do not linger."""
    staging = output.with_name(f".{output.name}-build")
    shutil.rmtree(staging, ignore_errors=True)
    for asset in built:
        target = staging / asset.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(asset.source, target)
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)


def check_output(built: list[BuiltAsset], manifest: dict[str, Any]) -> int:
    """Compare a fresh build with the committed files, byte for byte."""
    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / "graphiql"
        write_output(built, manifest, fresh)
        differences = _differences(fresh, OUTPUT)
    if differences:
        print("app/static/graphiql/ differs from a fresh build:", file=sys.stderr)
        for difference in differences:
            print(f"  {difference}", file=sys.stderr)
        print("run scripts/build_graphiql.py and commit the result", file=sys.stderr)
        return 1
    print(f"app/static/graphiql/ is what graphiql/package-lock.json gives ({len(built)} files)")
    return 0


def _differences(fresh: Path, committed: Path) -> list[str]:
    def files(root: Path) -> set[str]:
        if not root.is_dir():
            return set()
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    ours, theirs = files(fresh), files(committed)
    return [
        *(f"missing: {name}" for name in sorted(ours - theirs)),
        *(f"not in the build: {name}" for name in sorted(theirs - ours)),
        *(
            f"differs: {name}"
            for name in sorted(ours & theirs)
            if not filecmp.cmp(fresh / name, committed / name, shallow=False)
        ),
    ]


def _read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise BuildError(f"{path.relative_to(ROOT)} is not a JSON object")
    return value


def _package_files_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((NPM_PROJECT / name).read_bytes())
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
