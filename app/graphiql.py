"""GraphiQL's page: Strawberry's, pointed at the app's own files, with headers and uploads.

:func:`render_graphiql_page` swaps each CDN URL of Strawberry's page for the copy the app serves
itself (``app.graphiql_assets``: the files shipped in the package, manifest, mount), so GraphiQL
works without internet access; when a file is missing, the page says which instead.

GraphiQL itself only sends JSON. The page also gets an upload bar and a fetcher around GraphiQL's
that sends a mutation with a chosen file as a GraphQL multipart request (SPEC §5 Uploads).
"""

from __future__ import annotations

import html
import json
import re
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Final

from app.graphiql_assets import ASSETS_DIR, BUILD_COMMAND, local_asset_urls, replace_asset_urls

_HEADERS_NAME: Final = "STUDIO_GRAPHIQL_HEADERS"
#: The variable a file chosen in the page's upload bar fills, unless the user types another.
DEFAULT_UPLOAD_VARIABLE: Final = "input.sample"


class GraphiQLPageError(RuntimeError):
    """Strawberry's page no longer has the code that request headers or uploads are wired into."""


def render_graphiql_page(
    original_html: str,
    *,
    headers: dict[str, str] | None = None,
    token_from_fragment: bool = False,
    assets_dir: Path = ASSETS_DIR,
) -> str:
    """Strawberry's GraphiQL page with every CDN URL replaced by the app's own copy.

    When a file is missing (a broken install, or a Strawberry whose page loads versions this
    package does not ship), the answer is a short page saying so, rather than GraphiQL stuck at
    "Loading...".

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
    local_urls, missing = local_asset_urls(original_html, assets_dir)
    if missing:
        return _missing_files_page(missing)
    page = replace_asset_urls(original_html, local_urls)
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


def _missing_files_page(missing: list[str]) -> str:
    items = "\n".join(f"      <li><code>{html.escape(url)}</code></li>" for url in missing)
    strawberry = html.escape(f"strawberry-graphql {installed_version('strawberry-graphql')}")
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>GraphiQL's files are missing</title>
    <style>
      body {{ font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 44rem; }}
      code, pre {{ font-family: ui-monospace, monospace; }}
      pre {{ background: #f4f4f4; padding: 0.75rem 1rem; }}
    </style>
  </head>
  <body>
    <h1>GraphiQL's files are missing</h1>
    <p>
      This server serves GraphiQL's JavaScript and CSS itself, from files shipped in the
      studio-api package, so that GraphiQL works without internet access. Some are missing:
      the install is incomplete, or the GraphiQL page of {strawberry} loads versions this
      package does not ship. Reinstall studio-api, or, in a checkout, regenerate the files
      (it needs Node.js and npm) and reload this page:
    </p>
    <pre>{html.escape(BUILD_COMMAND)}</pre>
    <p>The GraphQL endpoint itself works; only the in-browser IDE is missing. Files missing:</p>
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
