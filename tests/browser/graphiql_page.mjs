// The parts of a GraphiQL page in a real Chromium that graphiql_smoke.mjs and
// studio_walkthrough.mjs share: a Chromium that resolves no host but the server's own, a report
// of every request the page makes (and of those that went elsewhere), the page's errors, and
// GraphiQL's editors.
//
// playwright-core comes from tests/browser/node_modules (`npm ci` in tests/browser/); it drives
// the system's Chromium and downloads nothing.

import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("./package.json", import.meta.url));
const { chromium } = require("playwright-core");

export const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
// The variables editor comes first in the editor tools, before the headers editor.
export const VARIABLES_EDITOR = ".graphiql-editor-tool > .graphiql-editor:first-child .CodeMirror";
export const RESPONSE_EDITOR = ".graphiql-response .CodeMirror";
export const EXECUTE_BUTTON = ".graphiql-execute-button";

// The report's fields every script fills in; a script adds its own.
export function newReport(fields = {}) {
  return {
    ok: false,
    error: null,
    requests: [],
    external: [],
    pageErrors: [],
    consoleErrors: [],
    ...fields,
  };
}

// Launch Chromium (`config.chromium`) in a fresh profile, run `run(context)` and fill in
// `report.ok` (false when the page asked a host other than `target`'s for anything) or
// `report.error`; the profile goes afterwards. Then print the report as one JSON line and set the
// exit status: 0 passed, 1 a request went to another host, 2 anything else failed.
export async function runInChromium({ config, target, report, profilePrefix, flags = [] }, run) {
  const timeoutMs = config.timeoutMs;
  const userDataDir = mkdtempSync(join(tmpdir(), profilePrefix));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: config.chromium,
      headless: true,
      args: [...chromiumFlags(target), ...flags],
      timeout: timeoutMs,
    });
    await run(context);
    report.ok = report.external.length === 0;
    if (!report.ok) report.error = "requests went to hosts other than the server under test";
  } catch (error) {
    report.error = String(error?.stack ?? error);
  } finally {
    await context?.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = report.ok ? 0 : report.external.length > 0 ? 1 : 2;
}

// The context's first page, waiting `timeoutMs` at most for anything, with every request and
// websocket it opens, its uncaught errors and its console errors written into `report`.
export async function watchedPage(context, target, report, timeoutMs) {
  const record = (kind, url) => {
    report.requests.push(`${kind} ${url}`);
    if (isExternal(url, target)) report.external.push(`${kind} ${url}`);
  };
  context.on("request", (request) => record(request.resourceType(), request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  page.on("websocket", (socket) => record("websocket", socket.url()));
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  return page;
}

export function setEditor(page, selector, text) {
  return page.evaluate(
    ([editor, value]) => document.querySelector(editor).CodeMirror.setValue(value),
    [selector, text],
  );
}

export async function setVariables(page, variables) {
  await page.waitForSelector(VARIABLES_EDITOR, { state: "attached" });
  await setEditor(page, VARIABLES_EDITOR, JSON.stringify(variables, null, 2));
}

// GraphiQL parses the editor's text 100 ms after a change, and decides from that parse whether
// to send the operation over HTTP or the websocket (subscriptions): wait until it has parsed
// this query, or a subscription would go out as a plain POST.
export async function setQuery(page, query) {
  await setEditor(page, QUERY_EDITOR, query);
  await page.waitForFunction(
    ([selector, text]) =>
      document.querySelector(selector).CodeMirror.documentAST?.loc?.source.body === text,
    [QUERY_EDITOR, query],
  );
}

// The result pane's text, or null before GraphiQL shows the pane.
export function responseText(page) {
  return page.evaluate(
    (selector) => document.querySelector(selector)?.CodeMirror.getValue() ?? null,
    RESPONSE_EDITOR,
  );
}

function chromiumFlags(target) {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    // No name resolves except the server's own: the page sees a machine without internet, so a
    // file still loaded from a CDN fails here even where the CDN is reachable.
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${target.hostname}`,
  ];
}

function isExternal(url, target) {
  const parsed = new URL(url);
  if (["data:", "blob:", "about:"].includes(parsed.protocol)) return false;
  return parsed.host !== target.host;
}
