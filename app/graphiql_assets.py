"""GraphiQL's browser files, served by the app itself so that GraphiQL works offline.

Strawberry's GraphiQL page loads React, GraphiQL and the explorer plugin from a public CDN, with
``integrity`` hashes. The same files ship inside this package, in :data:`ASSETS_DIR`, with a
manifest (``files``: CDN URL → local file, integrity, sha256; ``packages``: the npm version and
lock-file integrity of each package they come from). ``scripts/build_graphiql.py`` regenerates
them from ``graphiql/package-lock.json`` when Strawberry or the pins change, and
``tests/app/test_graphiql_shipped.py`` checks them against the lock file and the page.
:func:`assets_mount` serves them under :data:`ASSETS_URL_PATH`; :func:`local_asset_urls` and
:func:`replace_asset_urls` point a page at them (``app.graphiql`` renders the page). The
integrity attributes stay, and still match, because the bytes are identical.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

ASSETS_DIR: Final = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_URL_PATH: Final = "/graphiql-assets"
MANIFEST_NAME: Final = "manifest.json"
#: Regenerates the shipped files from graphiql/package-lock.json (a checkout, Node.js and npm).
BUILD_COMMAND: Final = "python scripts/build_graphiql.py"

# The files live under versioned paths (``react@18.2.0/umd/…``): a new version is a new URL.
_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class PageAsset:
    """A ``<script src>`` or stylesheet ``<link href>`` that the page loads from elsewhere."""

    url: str
    integrity: str | None


def find_page_assets(page_html: str) -> list[PageAsset]:
    """Every external script and stylesheet of the page, in page order (``data:`` URLs excluded)."""
    parser = _AssetParser()
    parser.feed(page_html)
    parser.close()
    return parser.assets


def assets_mount(directory: Path = ASSETS_DIR) -> Mount:
    """``/graphiql-assets``: the shipped files, cacheable for a year (their paths are versioned)."""
    return Mount(ASSETS_URL_PATH, app=_AssetFiles(directory=directory), name="graphiql-assets")


def local_asset_urls(
    page_html: str, assets_dir: Path = ASSETS_DIR
) -> tuple[dict[str, str], list[str]]:
    """The app's URL for each of the page's external files, and the CDN URLs with no shipped
    file (all of them when the manifest is missing or unreadable)."""
    assets = find_page_assets(page_html)
    files = read_manifest(assets_dir).get("files")
    if not isinstance(files, dict):
        return {}, [asset.url for asset in assets]
    local_urls: dict[str, str] = {}
    missing: list[str] = []
    for asset in assets:
        entry = files.get(asset.url)
        file = entry.get("file") if isinstance(entry, dict) else None
        if isinstance(file, str) and (assets_dir / file).is_file():
            local_urls[asset.url] = f"{ASSETS_URL_PATH}/{file}"
        else:
            missing.append(asset.url)
    return local_urls, missing


def read_manifest(assets_dir: Path = ASSETS_DIR) -> dict[str, Any]:
    """The manifest of the shipped files; empty when it is missing or unreadable."""
    try:
        manifest = json.loads((assets_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def replace_asset_urls(page_html: str, local_urls: dict[str, str]) -> str:
    """The page with every ``src``/``href`` found in ``local_urls`` pointing at the app's copy."""
    return _URL_ATTRIBUTE.sub(lambda match: _local_attribute(match, local_urls), page_html)


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[PageAsset] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else None
        if tag == "link" and (attributes.get("rel") or "").lower() == "stylesheet":
            url = attributes.get("href")
        if url and url.startswith(("http://", "https://", "//")):
            self.assets.append(PageAsset(url=url, integrity=attributes.get("integrity")))


class _AssetFiles(StaticFiles):
    def __init__(self, *, directory: PathLike) -> None:
        super().__init__(directory=directory, check_dir=False)

    async def check_config(self) -> None:
        """Accept a missing folder (a broken install): the page then says what is missing."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path == MANIFEST_NAME:  # bookkeeping, not something the page loads
            return Response("Not Found", status_code=404, media_type="text/plain")
        return await super().get_response(path, scope)

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = _CACHE_CONTROL
        return response


_URL_ATTRIBUTE = re.compile(
    r"""\b(?P<name>src|href)\s*=\s*(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)')"""
)


def _local_attribute(match: re.Match[str], local_urls: dict[str, str]) -> str:
    value = match["double"] if match["double"] is not None else match["single"]
    local_url = local_urls.get(html.unescape(value))
    if local_url is None:
        return match[0]
    return f'{match["name"]}="{html.escape(local_url)}"'
