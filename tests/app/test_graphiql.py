"""GraphiQL's page points at the app's own copies of its files (SPEC §5: works offline).

These tests read Strawberry's installed page, so a Strawberry upgrade that changes it shows up
here. The page's upload fetcher runs under Node.js here, against stand-ins for the page and the
network; the browser itself is exercised in test_graphiql_browser.py and test_graphiql_studio.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.http.ides import get_graphql_ide_html

from app.graphiql import DEFAULT_UPLOAD_VARIABLE, GraphiQLPageError, render_graphiql_page
from app.graphiql_assets import (
    ASSETS_URL_PATH,
    BUILD_COMMAND,
    MANIFEST_NAME,
    assets_mount,
    find_page_assets,
)

STRAWBERRY_PAGE = get_graphql_ide_html("graphiql")
HEADERS_DEFINITION = re.compile(r"<script>const STUDIO_GRAPHIQL_HEADERS = (.*?);</script>")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """Placeholder files for every asset of Strawberry's page, laid out as the shipped ones are
    (tests/app/test_graphiql_shipped.py checks the real ones)."""
    files = {}
    for number, asset in enumerate(find_page_assets(STRAWBERRY_PAGE)):
        file = f"package{number}@1.0.0/{asset.url.rsplit('/', 1)[-1]}"
        (tmp_path / file).parent.mkdir(parents=True)
        (tmp_path / file).write_text(f"/* {asset.url} */")
        files[asset.url] = {"file": file, "integrity": asset.integrity}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"files": files}))
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
    for entry in manifest["files"].values():
        assert f'"{ASSETS_URL_PATH}/{entry["file"]}"' in page
        assert f'integrity="{entry["integrity"]}"' in page  # same bytes, same hash


def test_without_headers_the_page_sets_none(built: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)
    assert "STUDIO_GRAPHIQL_HEADERS" not in page
    assert "React.useState(parameters.headers)" in page  # the editor starts as Strawberry's does
    assert "StudioGraphiQL.createFetcher({\n" in page  # uploads only


def test_the_installed_page_finds_every_shipped_file() -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE)
    assert "GraphiQL's files are missing" not in page
    assert find_page_assets(page) == []


def test_missing_files_give_a_page_that_says_so(tmp_path: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=tmp_path)

    assert "GraphiQL's files are missing" in page
    assert f"strawberry-graphql {version('strawberry-graphql')}" in page
    assert BUILD_COMMAND == "python scripts/build_graphiql.py"
    assert f"<pre>{BUILD_COMMAND}</pre>" in page
    assert "Loading..." not in page
    assert "<script" not in page


def test_files_for_another_strawberry_page_count_as_missing(built: Path) -> None:
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    stale_url = next(iter(manifest["files"]))
    del manifest["files"][stale_url]
    (built / MANIFEST_NAME).write_text(json.dumps(manifest))

    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)

    assert "GraphiQL's files are missing" in page
    assert f"<code>{stale_url}</code>" in page
    assert page.count("<li>") == 1


def test_headers_fill_the_editor_and_the_websocket_connection_params(built: Path) -> None:
    headers = {"Authorization": "Bearer abc.def"}
    page = render_graphiql_page(STRAWBERRY_PAGE, headers=headers, assets_dir=built)

    definition = HEADERS_DEFINITION.search(page)
    assert definition is not None
    assert json.loads(definition[1]) == headers
    assert page.index(definition[0]) < page.index("</head>")  # defined before the page's script
    assert "StudioGraphiQL.createFetcher({ wsConnectionParams: STUDIO_GRAPHIQL_HEADERS," in page
    assert (
        "React.useState(parameters.headers || "
        "(STUDIO_GRAPHIQL_HEADERS && JSON.stringify(STUDIO_GRAPHIQL_HEADERS, null, 2)))"
    ) in page


def test_development_page_reads_the_token_from_its_fragment(built: Path) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, token_from_fragment=True, assets_dir=built)
    assert "window.location.hash" in page
    assert "StudioGraphiQL.createFetcher({ wsConnectionParams: STUDIO_GRAPHIQL_HEADERS," in page
    # Without the flag the page reads nothing from its URL.
    assert "window.location.hash" not in render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built)


def test_embedded_headers_cannot_close_the_script_element(built: Path) -> None:
    hostile = {"Authorization": "</script><script>alert(1)</script><!-- & \u2028"}
    page = render_graphiql_page(STRAWBERRY_PAGE, headers=hostile, assets_dir=built)

    harmless = render_graphiql_page(STRAWBERRY_PAGE, headers={"A": "b"}, assets_dir=built)
    assert page.count("</script>") == harmless.count("</script>")  # only our own
    definition = HEADERS_DEFINITION.search(page)
    assert definition is not None
    assert not re.search("<!--|<script>alert|\u2028", definition[0])
    assert json.loads(definition[1]) == hostile


def test_a_changed_strawberry_page_fails_loudly_rather_than_dropping_headers(built: Path) -> None:
    changed = STRAWBERRY_PAGE.replace("GraphiQL.createFetcher(", "GraphiQL.makeFetcher(")
    with pytest.raises(GraphiQLPageError, match="createFetcher"):
        render_graphiql_page(changed, headers={"Authorization": "x"}, assets_dir=built)


@pytest.mark.parametrize(
    ("old", "new"),
    [("GraphiQL.createFetcher(", "GraphiQL.makeFetcher("), ("</body>", "")],
    ids=["fetcher", "body"],
)
def test_a_changed_strawberry_page_fails_loudly_rather_than_dropping_uploads(
    built: Path, old: str, new: str
) -> None:
    with pytest.raises(GraphiQLPageError, match="createFetcher"):
        render_graphiql_page(STRAWBERRY_PAGE.replace(old, new), assets_dir=built)


# --- uploads --------------------------------------------------------------------------------

UPLOAD_SCRIPT = re.compile(r"<script>\s*(const StudioGraphiQL = .*?)</script>", re.DOTALL)


@pytest.mark.parametrize(
    "options",
    [{}, {"headers": {"Authorization": "Bearer abc.def"}}, {"token_from_fragment": True}],
    ids=["plain", "headers", "token-from-fragment"],
)
def test_every_page_creates_its_fetcher_through_the_upload_wrapper(
    built: Path, options: dict[str, Any]
) -> None:
    page = render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built, **options)

    assert page.count("StudioGraphiQL.createFetcher({") == 1  # the page's call, ours now
    script = UPLOAD_SCRIPT.search(page)
    assert script is not None
    assert page.index(script[0]) < page.index("</head>")  # defined before the page's script
    assert "return { createFetcher };" in script[1]  # nothing in it ended the element early
    assert "<!--" not in script[1]
    assert '"Apollo-Require-Preflight"' in script[1]
    # The bar: a file input and the variable path it fills, after GraphiQL, in the body.
    bar = page[page.index('<div id="studio-upload"') : page.index("</body>")]
    assert page.index('<div id="graphiql"') < page.index(bar)
    assert '<input id="studio-upload-file" type="file" />' in bar
    assert f'value="{DEFAULT_UPLOAD_VARIABLE}"' in bar
    assert DEFAULT_UPLOAD_VARIABLE == "input.sample"
    # Still nothing from anywhere but the app itself.
    assert find_page_assets(page) == []
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)
    assert not re.search(r"""["'`](?:https?:)?//""", script[1])


def operation(kind: str, *variables: str, name: str | None = None) -> dict[str, Any]:
    """An ``OperationDefinition`` as GraphiQL's parser gives it: only what the fetcher reads."""
    return {
        "kind": "OperationDefinition",
        "operation": kind,
        "name": {"value": name} if name else None,
        "variableDefinitions": [{"variable": {"name": {"value": v}}} for v in variables],
    }


def document(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Document", "definitions": list(operations)}


CREATE = document(operation("mutation", "input"))
NAMED = document(operation("query", name="Look"), operation("mutation", "input", name="Make"))

# Runs the page's upload script with stand-ins for the page's elements, GraphiQL's own fetcher
# (answers {"delegated": true}) and fetch (records the request); prints what happened.
FETCHER_HARNESS = r"""
const vm = require("node:vm");
const { script, file, path, params, opts, response } = JSON.parse(process.argv[1]);
const status = { value: "" };
const elements = {
  "studio-upload-file": { files: file === null ? [] : [new File([file], "voice.wav")] },
  "studio-upload-path": { value: path },
  "studio-upload-status": status,
};
const posts = [];
const context = vm.createContext({
  document: { getElementById: (id) => elements[id], addEventListener() {} },
  GraphiQL: { createFetcher: () => async () => ({ delegated: true }) },
  fetch: async (url, { method, headers, body }) => {
    const parts = {};
    for (const [name, value] of body) {
      const text = typeof value === "string" ? null : await value.text();
      parts[name] = text === null ? JSON.parse(value) : [value.name, text];
    }
    posts.push({ url, method, headers, parts });
    return { status: response[0], statusText: "", text: async () => response[1] };
  },
  FormData,
  File,
  structuredClone,
});
vm.runInContext(`${script}
globalThis.StudioGraphiQL = StudioGraphiQL;`, context);
const fetcher = context.StudioGraphiQL.createFetcher({
  url: "/graphql",
  headers: { "x-csrftoken": "csrf" },
});
(async () => {
  let result;
  try {
    result = await fetcher(params, opts);
  } catch (error) {
    result = { thrown: error.message };
  }
  process.stdout.write(JSON.stringify({ result, posts, status: status.value }));
})();
"""


def run_page_fetcher(
    built: Path,
    params: dict[str, Any],
    ast: dict[str, Any],
    *,
    file: str | None = "RIFF audio",
    path: str = DEFAULT_UPLOAD_VARIABLE,
    headers: dict[str, str] | None = None,
    response: tuple[int, str] = (200, '{"data": {"ok": true}}'),
) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the page's upload fetcher runs under Node.js (`node`)")
    script = UPLOAD_SCRIPT.search(render_graphiql_page(STRAWBERRY_PAGE, assets_dir=built))
    assert script is not None
    case = {
        "script": script[1],
        "file": file,
        "path": path,
        "params": params,
        "opts": {"headers": headers, "documentAST": ast},
        "response": response,
    }
    result = subprocess.run(
        [node, "-e", FETCHER_HARNESS, json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def test_a_mutation_with_a_chosen_file_goes_as_a_multipart_request(built: Path) -> None:
    params = {"query": "mutation…", "variables": {"input": {"name": "A"}}}
    editor_headers = {"Authorization": "Bearer abc.def", "Content-Type": "application/json"}

    outcome = run_page_fetcher(built, params, CREATE, headers=editor_headers)

    assert outcome["result"] == {"data": {"ok": True}}  # the server's answer, for GraphiQL
    [post] = outcome["posts"]
    assert (post["url"], post["method"]) == ("/graphql", "POST")
    assert post["parts"] == {
        "operations": {"query": "mutation…", "variables": {"input": {"name": "A", "sample": None}}},
        "map": {"0": ["variables.input.sample"]},
        "0": ["voice.wav", "RIFF audio"],
    }
    # The page's and the editor's headers, the preflight marker, and no JSON Content-Type (the
    # browser writes the multipart one with its boundary).
    assert post["headers"] == {
        "x-csrftoken": "csrf",
        "Authorization": "Bearer abc.def",
        "Apollo-Require-Preflight": "true",
    }
    assert outcome["status"] == "Sent voice.wav as variables.input.sample (HTTP 200)"


@pytest.mark.parametrize(
    ("params", "ast", "path", "sent_variables"),
    [
        (
            {"variables": {"input": {"name": "A", "sample": None}}},
            CREATE,
            DEFAULT_UPLOAD_VARIABLE,
            {"input": {"name": "A", "sample": None}},
        ),
        (
            {"operationName": "Make", "variables": {"input": {}}},
            NAMED,
            DEFAULT_UPLOAD_VARIABLE,
            {"input": {"sample": None}},
        ),
        ({}, document(operation("mutation", "file")), " file ", {"file": None}),
    ],
    ids=["explicit-null", "named-operation", "top-level-variable"],
)
def test_the_file_fills_a_null_or_missing_variable_of_the_mutation(
    built: Path,
    params: dict[str, Any],
    ast: dict[str, Any],
    path: str,
    sent_variables: dict[str, Any],
) -> None:
    outcome = run_page_fetcher(built, {"query": "…", **params}, ast, path=path)
    [post] = outcome["posts"]
    assert post["parts"]["operations"]["variables"] == sent_variables
    assert post["parts"]["map"] == {"0": [f"variables.{path.strip()}"]}


@pytest.mark.parametrize(
    ("params", "ast", "file", "status"),
    [
        ({"variables": {"input": {"name": "A"}}}, CREATE, None, ""),
        ({}, document(operation("query", "input")), "RIFF", ""),
        ({}, document(operation("subscription", "input")), "RIFF", ""),
        ({"operationName": "Look"}, NAMED, "RIFF", ""),
        (
            {"variables": {"input": {"sample": "not a file"}}},
            CREATE,
            "RIFF",
            "voice.wav not sent: this mutation has no null or missing variables.input.sample",
        ),
        (
            {"variables": {"id": "1"}},
            document(operation("mutation", "id")),
            "RIFF",
            "voice.wav not sent: this mutation has no null or missing variables.input.sample",
        ),
        (
            {"variables": {"input": "text"}},
            CREATE,
            "RIFF",
            "voice.wav not sent: this mutation has no null or missing variables.input.sample",
        ),
    ],
    ids=[
        "no-file",
        "query",
        "subscription",
        "query-of-several",
        "value-given",
        "variable-not-declared",
        "parent-not-an-object",
    ],
)
def test_everything_else_goes_through_graphiqls_own_fetcher(
    built: Path, params: dict[str, Any], ast: dict[str, Any], file: str | None, status: str
) -> None:
    outcome = run_page_fetcher(built, {"query": "…", **params}, ast, file=file)
    assert outcome["result"] == {"delegated": True}
    assert outcome["posts"] == []
    assert outcome["status"] == status


def test_an_answer_that_is_not_json_is_an_error_graphiql_shows(built: Path) -> None:
    outcome = run_page_fetcher(
        built,
        {"query": "…", "variables": {"input": {}}},
        CREATE,
        response=(413, "Request Entity Too Large"),
    )
    assert outcome["result"] == {"thrown": "HTTP 413: Request Entity Too Large"}


async def test_assets_are_served_with_long_cache_headers(built: Path) -> None:
    file = json.loads((built / MANIFEST_NAME).read_text())["files"].popitem()[1]["file"]
    async with _client(built) as client:
        response = await client.get(f"{ASSETS_URL_PATH}/{file}")
        manifest = await client.get(f"{ASSETS_URL_PATH}/{MANIFEST_NAME}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert manifest.status_code == 404  # bookkeeping, not an asset


async def test_missing_assets_are_not_found_rather_than_a_server_error(tmp_path: Path) -> None:
    async with _client(tmp_path / "missing") as client:
        response = await client.get(f"{ASSETS_URL_PATH}/react@18.2.0/umd/react.production.min.js")
    assert response.status_code == 404


def _client(directory: Path) -> httpx.AsyncClient:
    app = Starlette(routes=[assets_mount(directory)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://studio.test")
