"""GraphiQL without internet access: Strawberry's page, pointed at files the app serves itself.

Strawberry's GraphiQL page loads React, GraphiQL and the explorer plugin from a public CDN, with
``integrity`` hashes. ``scripts/build_graphiql.py`` installs the same package versions with npm,
checks every file against the page's hash, and copies them into :data:`ASSETS_DIR` with a
manifest (CDN URL → local file, integrity). :func:`render_graphiql_page` swaps each CDN URL for
the local copy; the integrity attributes stay, and still match, because the bytes are identical.

GraphiQL itself only sends JSON. The page also gets an upload bar and a fetcher around GraphiQL's
that sends a mutation with a chosen file as a GraphQL multipart request (SPEC §5 Uploads).
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

ASSETS_DIR: Final = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_URL_PATH: Final = "/graphiql-assets"
MANIFEST_NAME: Final = "manifest.json"
BUILD_COMMAND: Final = "python scripts/build_graphiql.py"

# The files live under versioned paths (``react@18.2.0/umd/…``): a new version is a new URL.
_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
_HEADERS_NAME: Final = "STUDIO_GRAPHIQL_HEADERS"
#: The variable a file chosen in the page's upload bar fills, unless the user types another.
DEFAULT_UPLOAD_VARIABLE: Final = "input.sample"


@dataclass(frozen=True)
class PageAsset:
    """A ``<script src>`` or stylesheet ``<link href>`` that the page loads from elsewhere."""

    url: str
    integrity: str | None


class GraphiQLPageError(RuntimeError):
    """Strawberry's page no longer has the code that request headers or uploads are wired into."""


def find_page_assets(page_html: str) -> list[PageAsset]:
    """Every external script and stylesheet of the page, in page order (``data:`` URLs excluded)."""
    parser = _AssetParser()
    parser.feed(page_html)
    parser.close()
    return parser.assets


def assets_mount(directory: Path = ASSETS_DIR) -> Mount:
    """``/graphiql-assets``: the built files, cacheable for a year (their paths are versioned)."""
    return Mount(ASSETS_URL_PATH, app=_AssetFiles(directory=directory), name="graphiql-assets")


def render_graphiql_page(
    original_html: str,
    *,
    headers: dict[str, str] | None = None,
    token_from_fragment: bool = False,
    assets_dir: Path = ASSETS_DIR,
) -> str:
    """Strawberry's GraphiQL page with every CDN URL replaced by the app's own copy.

    When the files are not built (or were built for another Strawberry page), the answer is a
    short page saying how to build them, rather than GraphiQL stuck at "Loading...".

    ``headers`` (development: a viewer's token) fill GraphiQL's headers editor on first load,
    unless the URL carries its own ``?headers=``; GraphiQL sends the editor's headers with every
    HTTP request and in the websocket ``connection_init`` payload. They are also given to the
    fetcher as ``wsConnectionParams``, so subscriptions authenticate the way SPEC §5 describes.

    ``token_from_fragment`` (development) does the same with a token the page reads from its own
    URL fragment, ``/graphql#token=…`` (what `studio token` prints): a fragment never reaches
    the server, so the token is in no request line or access log, and the page removes it from
    the address bar once read.

    Every page can also upload: a bar under GraphiQL takes a file and the variable path it
    fills (:data:`DEFAULT_UPLOAD_VARIABLE`). A mutation that declares that variable and leaves
    the path null or out goes as a GraphQL multipart request (``operations``, ``map``, the file as
    part ``0``) with the editor's headers and ``Apollo-Require-Preflight: true``; every other
    operation goes through GraphiQL's own fetcher, unchanged.
    """
    assets = find_page_assets(original_html)
    local_urls, missing = _local_urls(assets, assets_dir)
    if missing:
        return _not_built_page(missing)
    page = _URL_ATTRIBUTE.sub(lambda match: _local_attribute(match, local_urls), original_html)
    if headers is not None:
        page = _with_headers(page, script_json(headers))
    elif token_from_fragment:
        page = _with_headers(page, _HEADERS_FROM_FRAGMENT_JS)
    return _with_uploads(page)


def script_json(value: object) -> str:
    """JSON that is safe inside an HTML ``<script>`` element.

    ``<``, ``>`` and ``&`` become JSON escapes, so no value can close the element (``</script>``)
    or open a comment (``<!--``); ``json.dumps`` already escapes U+2028 and U+2029.
    """
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
        """Accept a missing folder: the page then says how to build it, and it may appear later."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path == MANIFEST_NAME:  # the build's bookkeeping, not something the page loads
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


def _local_urls(assets: list[PageAsset], assets_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The app's URL for each asset, and the CDN URLs that have no built file."""
    try:
        manifest = json.loads((assets_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, [asset.url for asset in assets]
    local_urls: dict[str, str] = {}
    missing: list[str] = []
    for asset in assets:
        entry = manifest.get(asset.url) if isinstance(manifest, dict) else None
        file = entry.get("file") if isinstance(entry, dict) else None
        if isinstance(file, str) and (assets_dir / file).is_file():
            local_urls[asset.url] = f"{ASSETS_URL_PATH}/{file}"
        else:
            missing.append(asset.url)
    return local_urls, missing


_URL_ATTRIBUTE = re.compile(
    r"""\b(?P<name>src|href)\s*=\s*(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)')"""
)


def _local_attribute(match: re.Match[str], local_urls: dict[str, str]) -> str:
    value = match["double"] if match["double"] is not None else match["single"]
    local_url = local_urls.get(html.unescape(value))
    if local_url is None:
        return match[0]
    return f'{match["name"]}="{html.escape(local_url)}"'


def _not_built_page(missing: list[str]) -> str:
    items = "\n".join(f"      <li><code>{html.escape(url)}</code></li>" for url in missing)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>GraphiQL is not built</title>
    <style>
      body {{ font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 44rem; }}
      code, pre {{ font-family: ui-monospace, monospace; }}
      pre {{ background: #f4f4f4; padding: 0.75rem 1rem; }}
    </style>
  </head>
  <body>
    <h1>GraphiQL's files are not built</h1>
    <p>
      This server serves GraphiQL's JavaScript and CSS itself, so that GraphiQL works without
      internet access. Build them once (it needs Node.js and npm), then reload this page:
    </p>
    <pre>{html.escape(BUILD_COMMAND)}</pre>
    <p>The GraphQL endpoint itself works; only the in-browser IDE is missing. Files not built:</p>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


# Where Strawberry's page builds its fetcher and keeps the headers editor's value. A Strawberry
# upgrade that changes either fails loudly here (and in tests/app/test_graphiql.py).
_FETCHER = re.compile(r"GraphiQL\.createFetcher\(\s*\{")
_HEADERS_STATE = re.compile(r"React\.useState\(\s*parameters\.headers\s*\)")


_HEADERS_FROM_FRAGMENT_JS = """(() => {
      const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
      if (!token) return undefined;
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return { Authorization: "Bearer " + token };
    })()"""


def _with_headers(page: str, headers_expression: str) -> str:
    """Wire a JavaScript expression giving the headers (or ``undefined``) into the page."""
    page, fetchers = _FETCHER.subn(
        f"GraphiQL.createFetcher({{ wsConnectionParams: {_HEADERS_NAME},", page
    )
    page, states = _HEADERS_STATE.subn(
        "React.useState(parameters.headers || "
        f"({_HEADERS_NAME} && JSON.stringify({_HEADERS_NAME}, null, 2)))",
        page,
    )
    head_end = page.find("</head>")
    if fetchers != 1 or states != 1 or head_end < 0:
        raise GraphiQLPageError(
            "Strawberry's GraphiQL page changed: expected one `GraphiQL.createFetcher({`, one "
            "`React.useState(parameters.headers)` and a `</head>`; update app/graphiql.py"
        )
    definition = f"    <script>const {_HEADERS_NAME} = {headers_expression};</script>\n"
    return page[:head_end] + definition + page[head_end:]


# --- uploads ------------------------------------------------------------------------------------

# Strawberry's call, after `_with_headers` (which keeps it). Not `StudioGraphiQL.createFetcher(`.
_CREATE_FETCHER = re.compile(r"(?<![\w.$])GraphiQL\.createFetcher\(")

# GraphiQL's colours and fonts come with its `graphiql-container` class (light and dark themes);
# the page becomes a column so that the bar takes its own line instead of covering the editors.
_UPLOAD_STYLE = """    <style>
      body { display: flex; flex-direction: column; height: 100vh; }
      #graphiql { flex: 1; height: auto; min-height: 0; }
      #studio-upload.graphiql-container {
        flex: none; height: auto; align-items: center; gap: var(--px-12);
        padding: var(--px-4) var(--px-16); font-size: var(--font-size-hint);
        color: hsla(var(--color-neutral), var(--alpha-secondary));
        border-top: 1px solid hsla(var(--color-neutral), var(--alpha-background-heavy));
      }
      #studio-upload input[type="text"] {
        width: 14em; padding: var(--px-2) var(--px-6); border: none;
        border-radius: var(--border-radius-4); font-family: var(--font-family-mono);
        background: hsla(var(--color-neutral), var(--alpha-background-light));
      }
      #studio-upload button { font: inherit; }
    </style>
"""

# Loaded before the page's own script, which then calls `StudioGraphiQL.createFetcher` with the
# options it gave `GraphiQL.createFetcher` (URL, default headers, subscription URL).
_UPLOAD_SCRIPT = """    <script>
      const StudioGraphiQL = (() => {
        const byId = (id) => document.getElementById(id);
        const say = (text) => {
          const status = byId("studio-upload-status");
          if (status) status.value = text;
        };
        const isObject = (value) => value !== null && typeof value === "object";

        function operationOf(ast, name) {
          const operations = (ast?.definitions ?? []).filter(
            (d) => d.kind === "OperationDefinition",
          );
          if (name) return operations.find((d) => d.name?.value === name);
          return operations.length === 1 ? operations[0] : undefined;
        }

        // The chosen file, if this operation is a mutation that declares the path's variable and
        // has null or nothing at the path; its variables get the spec's null placeholder there.
        function pendingUpload(params, opts) {
          const file = byId("studio-upload-file")?.files?.[0];
          const operation = file && operationOf(opts?.documentAST, params.operationName);
          if (!file || operation?.operation !== "mutation") return null;
          const path = byId("studio-upload-path").value.trim();
          const keys = path.split(".");
          const leaf = keys.pop();
          const declared = (operation.variableDefinitions ?? []).some(
            (d) => d.variable.name.value === (keys[0] ?? leaf),
          );
          const variables = structuredClone(params.variables ?? {});
          let parent = variables;
          for (const key of keys) parent = isObject(parent) ? parent[key] : undefined;
          const free =
            isObject(parent) && (!Object.hasOwn(parent, leaf) || parent[leaf] === null);
          if (!declared || !leaf || keys.includes("") || !free) {
            say(`${file.name} not sent: this mutation has no null or missing variables.${path}`);
            return null;
          }
          parent[leaf] = null;
          return { file, path, variables };
        }

        async function send(options, upload, params, opts) {
          const body = new FormData();
          body.append("operations", JSON.stringify({ ...params, variables: upload.variables }));
          body.append("map", JSON.stringify({ 0: [`variables.${upload.path}`] }));
          body.append("0", upload.file, upload.file.name);
          // The browser writes the multipart Content-Type with its boundary: drop any other.
          const headers = Object.fromEntries(
            Object.entries({ ...options.headers, ...opts?.headers }).filter(
              ([name]) => name.toLowerCase() !== "content-type",
            ),
          );
          headers["Apollo-Require-Preflight"] = "true";
          say(`Sending ${upload.file.name} as variables.${upload.path}`);
          const post = options.fetch ?? fetch;
          const response = await post(options.url, { method: "POST", headers, body });
          const text = await response.text();
          say(`Sent ${upload.file.name} as variables.${upload.path} (HTTP ${response.status})`);
          try {
            return JSON.parse(text);
          } catch {
            throw new Error(`HTTP ${response.status}: ${text}`);
          }
        }

        function createFetcher(options) {
          const fetcher = GraphiQL.createFetcher(options);
          return (params, opts) => {
            const upload = pendingUpload(params, opts);
            return upload ? send(options, upload, params, opts) : fetcher(params, opts);
          };
        }

        document.addEventListener("DOMContentLoaded", () => {
          byId("studio-upload-file").addEventListener("change", () => say(""));
          byId("studio-upload-clear").addEventListener("click", () => {
            byId("studio-upload-file").value = "";
            say("");
          });
        });
        return { createFetcher };
      })();
    </script>
"""


def _upload_bar() -> str:
    variable = html.escape(DEFAULT_UPLOAD_VARIABLE)
    return f"""    <div id="studio-upload" class="graphiql-container" role="group"
      aria-label="Upload a file with a mutation">
      <label>File <input id="studio-upload-file" type="file" /></label>
      <button id="studio-upload-clear" type="button">Clear</button>
      <label>
        sent as <code>variables.</code><input id="studio-upload-path" type="text"
          value="{variable}" spellcheck="false" autocomplete="off" />
        with the next mutation that leaves it null
      </label>
      <output id="studio-upload-status" aria-live="polite"></output>
    </div>
"""


def _with_uploads(page: str) -> str:
    """Put the upload bar under GraphiQL and have the page create its fetcher through ours."""
    page, fetchers = _CREATE_FETCHER.subn("StudioGraphiQL.createFetcher(", page)
    head_end, body_end = page.find("</head>"), page.rfind("</body>")
    if fetchers != 1 or head_end < 0 or body_end < head_end:
        raise GraphiQLPageError(
            "Strawberry's GraphiQL page changed: expected one `GraphiQL.createFetcher(`, a "
            "`</head>` and a `</body>`; update app/graphiql.py"
        )
    return (
        page[:head_end]
        + _UPLOAD_STYLE
        + _UPLOAD_SCRIPT
        + page[head_end:body_end]
        + _upload_bar()
        + page[body_end:]
    )
