"""GraphiQL's page points at the app's own copies of its files (SPEC §5: works offline).

These tests read Strawberry's installed page, so a Strawberry upgrade that changes it shows up
here. The browser itself is exercised in test_graphiql_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.http.ides import get_graphql_ide_html

from app.graphiql import (
    ASSETS_DIR,
    ASSETS_URL_PATH,
    BUILD_COMMAND,
    MANIFEST_NAME,
    GraphiQLPageError,
    assets_mount,
    find_page_assets,
    render_graphiql_page,
)

STRAWBERRY_PAGE = get_graphql_ide_html("graphiql")
HEADERS_DEFINITION = re.compile(r"<script>const STUDIO_GRAPHIQL_HEADERS = (.*?);</script>")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A build of placeholder files for every asset of Strawberry's page, as the script lays out."""
    manifest = {}
    for number, asset in enumerate(find_page_assets(STRAWBERRY_PAGE)):
        file = f"package{number}@1.0.0/{asset.url.rsplit('/', 1)[-1]}"
        (tmp_path / file).parent.mkdir(parents=True)
        (tmp_path / file).write_text(f"/* {asset.url} */")
        manifest[asset.url] = {"file": file, "integrity": asset.integrity}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    return tmp_path


def test_strawberrys_page_loads_scripts_and_stylesheets_from_a_cdn() -> None:
    assets = find_page_assets(STRAWBERRY_PAGE)
    assert len(assets) == 7
    assert all(asset.url.startswith("https://") for asset in assets)
    assert all(asset.integrity and asset.integrity.startswith("sha384-") for asset in assets)


def test_every_cdn_url_is_replaced_by_the_apps_copy(built: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)

    assert find_page_assets(page) == []
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    for entry in manifest.values():
        assert f'"{ASSETS_URL_PATH}/{entry["file"]}"' in page
        assert f'integrity="{entry["integrity"]}"' in page  # same bytes, same hash


def test_without_headers_only_the_urls_change(built: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)
    assert "STUDIO_GRAPHIQL_HEADERS" not in page
    assert len(page.splitlines()) == len(STRAWBERRY_PAGE.splitlines())


def test_unbuilt_assets_give_a_page_that_says_how_to_build_them(tmp_path: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=tmp_path)

    assert "GraphiQL's files are not built" in page
    assert BUILD_COMMAND == "python scripts/build_graphiql.py"
    assert f"<pre>{BUILD_COMMAND}</pre>" in page
    assert "Loading..." not in page
    assert "<script" not in page


def test_a_build_for_another_strawberry_page_counts_as_not_built(built: Path) -> None:
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    stale_url = next(iter(manifest))
    del manifest[stale_url]
    (built / MANIFEST_NAME).write_text(json.dumps(manifest))

    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)

    assert "GraphiQL's files are not built" in page
    assert f"<code>{stale_url}</code>" in page
    assert page.count("<li>") == 1


def test_headers_fill_the_editor_and_the_websocket_connection_params(built: Path) -> None:
    headers = {"Authorization": "Bearer abc.def"}
    page = render_graphiql_page(STRAWBERRY_PAGE, headers=headers, assets_dir=built)

    definition = HEADERS_DEFINITION.search(page)
    assert definition is not None
    assert json.loads(definition[1]) == headers
    assert page.index(definition[0]) < page.index("</head>")  # defined before the page's script
    assert "GraphiQL.createFetcher({ wsConnectionParams: STUDIO_GRAPHIQL_HEADERS," in page
    assert (
        "React.useState(parameters.headers || "
        "(STUDIO_GRAPHIQL_HEADERS && JSON.stringify(STUDIO_GRAPHIQL_HEADERS, null, 2)))"
    ) in page


def test_development_page_reads_the_token_from_its_fragment(built: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, token_from_fragment=True, assets_dir=built)
    assert "window.location.hash" in page
    assert "GraphiQL.createFetcher({ wsConnectionParams: STUDIO_GRAPHIQL_HEADERS," in page
    # Without the flag the page reads nothing from its URL.
    assert "window.location.hash" not in render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)


def test_embedded_headers_cannot_close_the_script_element(built: Path) -> None:
    hostile = {"Authorization": "</script><script>alert(1)</script><!-- & \u2028"}
    page = render_graphiql_page(STRAWBERRY_PAGE, headers=hostile, assets_dir=built)

    assert page.count("</script>") == STRAWBERRY_PAGE.count("</script>") + 1  # only our own
    definition = HEADERS_DEFINITION.search(page)
    assert definition is not None
    assert not re.search("<!--|<script>alert|\u2028", definition[0])
    assert json.loads(definition[1]) == hostile


def test_a_changed_strawberry_page_fails_loudly_rather_than_dropping_headers(built: Path) -> None:
    changed = STRAWBERRY_PAGE.replace("GraphiQL.createFetcher(", "GraphiQL.makeFetcher(")
    with pytest.raises(GraphiQLPageError, match="createFetcher"):
        render_graphiql_page(changed, headers={"Authorization": "x"}, assets_dir=built)


async def test_assets_are_served_with_long_cache_headers(built: Path) -> None:
    file = json.loads((built / MANIFEST_NAME).read_text()).popitem()[1]["file"]
    async with _client(built) as client:
        response = await client.get(f"{ASSETS_URL_PATH}/{file}")
        manifest = await client.get(f"{ASSETS_URL_PATH}/{MANIFEST_NAME}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert manifest.status_code == 404  # the build's bookkeeping, not an asset


async def test_unbuilt_assets_are_not_found_rather_than_a_server_error(tmp_path: Path) -> None:
    async with _client(tmp_path / "missing") as client:
        response = await client.get(f"{ASSETS_URL_PATH}/react@18.2.0/umd/react.production.min.js")
    assert response.status_code == 404


def test_the_build_matches_the_pages_integrity_hashes() -> None:
    """What scripts/build_graphiql.py wrote: every file of the page, with the page's hash."""
    if not (ASSETS_DIR / MANIFEST_NAME).is_file():
        pytest.skip(f"GraphiQL's files are not built (`{BUILD_COMMAND}`)")
    manifest = json.loads((ASSETS_DIR / MANIFEST_NAME).read_text())

    assets = find_page_assets(STRAWBERRY_PAGE)
    assert sorted(manifest) == sorted(asset.url for asset in assets)
    for asset in assets:
        entry = manifest[asset.url]
        digest = hashlib.sha384((ASSETS_DIR / entry["file"]).read_bytes()).digest()
        assert entry["integrity"] == asset.integrity
        assert asset.integrity == f"sha384-{base64.b64encode(digest).decode()}", entry["file"]


def _client(directory: Path) -> httpx.AsyncClient:
    app = Starlette(routes=[assets_mount(directory)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://studio.test")
