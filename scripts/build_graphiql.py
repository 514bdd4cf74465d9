#!/usr/bin/env python3
"""Build GraphiQL's browser files, so that ``GET /graphql`` works without internet access.

    .venv/bin/python scripts/build_graphiql.py           # npm ci in graphiql/ if needed, then copy
    .venv/bin/python scripts/build_graphiql.py --no-npm  # use graphiql/node_modules as it is
    .venv/bin/python scripts/build_graphiql.py --if-npm  # without npm: say so, exit 0

Strawberry's GraphiQL page loads its scripts and stylesheets from a public CDN, each with an
``integrity`` hash. This script reads the installed page, finds every such file, takes the same
package version from ``graphiql/node_modules`` (pinned in ``graphiql/package.json``), checks its
hash against the page's, and copies it into the installed ``app`` package (``app/static/graphiql/``
in a checkout) with ``manifest.json`` (CDN URL → local file and integrity), which
``app/graphiql_assets.py`` uses to rewrite the page. A wrong version or a hash mismatch stops the
build with exit status 1, naming the file; the previous output is left as it was.

Run it with the project's Python: it reads the page from the installed ``strawberry-graphql``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from urllib.parse import urlsplit

from strawberry.http.ides import get_graphql_ide_html

from app.graphiql_assets import ASSETS_DIR, MANIFEST_NAME, PageAsset, find_page_assets

ROOT = Path(__file__).resolve().parents[1]
NPM_PROJECT = ROOT / "graphiql"
NODE_MODULES = NPM_PROJECT / "node_modules"
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
    file: str  # path under ASSETS_DIR, also the path under /graphiql-assets/
    source: Path
    integrity: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-npm", action="store_true", help="use graphiql/node_modules as it is (no npm ci)"
    )
    parser.add_argument(
        "--if-npm",
        action="store_true",
        help="when npm is not installed, print a note and exit 0 (the quick start's build step: "
        "the studio still runs, and its GraphiQL page says how to build the files)",
    )
    args = parser.parse_args()
    if args.if_npm and not args.no_npm and shutil.which("npm") is None:
        print(
            "note: npm not found, GraphiQL's files were not built; install Node.js 20+ and run "
            "scripts/build_graphiql.py for GraphiQL at /graphql (the API works without it)",
            file=sys.stderr,
        )
        return 0

    page = get_graphql_ide_html("graphiql")
    strawberry = f"strawberry-graphql {installed_version('strawberry-graphql')}"
    assets = find_page_assets(page)
    if not assets:
        print(f"error: {strawberry}'s GraphiQL page loads no external files", file=sys.stderr)
        return 1
    try:
        if not args.no_npm:
            install_packages()
        built = [check_asset(asset) for asset in assets]
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_output(built)
    print(f"GraphiQL for {strawberry}: {len(built)} files checked and copied to {ASSETS_DIR}")
    for asset in built:
        print(f"  {asset.file} ({asset.source.stat().st_size:,} bytes)")
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


def check_asset(asset: PageAsset) -> BuiltAsset:
    """The installed copy of a CDN file, after checking its version and its integrity hash."""
    match = CDN_PATH.match(urlsplit(asset.url).path)
    if match is None:
        raise BuildError(f"{asset.url}: not a /<package>@<version>/<file> URL")
    package, version, file = match["package"], match["version"], match["file"]
    installed = _installed_version(package)
    if installed != version:
        raise BuildError(
            f"{asset.url}: the page loads {package}@{version} but graphiql/node_modules has "
            f"{package}@{installed}; pin {package} to {version} in graphiql/package.json and "
            "run `npm install` in graphiql/"
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
        url=asset.url, file=f"{package}@{version}/{file}", source=source, integrity=asset.integrity
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


def write_output(built: list[BuiltAsset]) -> None:
    """Replace ASSETS_DIR as a whole, so that files of an older build do not linger."""
    staging = ASSETS_DIR.with_name(f".{ASSETS_DIR.name}-build")
    shutil.rmtree(staging, ignore_errors=True)
    for asset in built:
        target = staging / asset.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(asset.source, target)
    manifest = {asset.url: {"file": asset.file, "integrity": asset.integrity} for asset in built}
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(ASSETS_DIR, ignore_errors=True)
    staging.rename(ASSETS_DIR)


def _installed_version(package: str) -> str | None:
    try:
        metadata = json.loads((NODE_MODULES / package / "package.json").read_text("utf-8"))
    except FileNotFoundError:
        return None
    value = metadata.get("version")
    return value if isinstance(value, str) else None


def _package_files_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((NPM_PROJECT / name).read_bytes())
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
