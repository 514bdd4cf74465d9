#!/usr/bin/env node
// GraphiQL in a real Chromium, with no internet: open the page, run one operation, wait for the
// expected text in the result pane, and fail if the page asked any other host for anything.
//
//   node tests/browser/graphiql_smoke.mjs '{"url": "http://127.0.0.1:8000/graphql",
//     "query": "{ hello }", "expect": "Hello", "chromium": "/usr/bin/chromium"}'
//
// Optional keys: "headers" (an object, given to the page as GraphiQL's `?headers=` parameter),
// "variables" (an object, typed into the variables editor), "upload" (a file's path, chosen in the
// page's upload bar before the operation runs), "timeoutMs" (each wait; default 30000).
// tests/support/browser.py runs this script.
//
// stdout: one JSON report {ok, error, response, requests, external, pageErrors, consoleErrors}.
// Exit status: 0 passed, 1 a request went to another host, 2 anything else failed.
//
// playwright-core comes from graphiql/node_modules (a devDependency there); it drives the
// system's Chromium and downloads nothing.

import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../graphiql/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.argv[2] ?? "{}");
const target = new URL(config.url);
const timeoutMs = config.timeoutMs ?? 30000;

const CHROMIUM_FLAGS = [
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

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
// The variables editor comes first in the editor tools, before the headers editor.
const VARIABLES_EDITOR = ".graphiql-editor-tool > .graphiql-editor:first-child .CodeMirror";
const UPLOAD_INPUT = "#studio-upload-file";
const RESPONSE_EDITOR = ".graphiql-response .CodeMirror";
const EXECUTE_BUTTON = ".graphiql-execute-button";

const report = {
  ok: false,
  error: null,
  response: null,
  requests: [],
  external: [],
  pageErrors: [],
  consoleErrors: [],
};

function isExternal(url) {
  const parsed = new URL(url);
  if (["data:", "blob:", "about:"].includes(parsed.protocol)) return false;
  return parsed.host !== target.host;
}

function record(kind, url) {
  report.requests.push(`${kind} ${url}`);
  if (isExternal(url)) report.external.push(`${kind} ${url}`);
}

// Strawberry's page reads `?headers=` with decodeURIComponent, which leaves "+" alone: encode
// spaces as %20, not as URLSearchParams' "+".
function pageUrl() {
  if (!config.headers) return target.href;
  const separator = target.search ? "&" : "?";
  return `${target.href}${separator}headers=${encodeURIComponent(JSON.stringify(config.headers))}`;
}

async function run(context) {
  context.on("request", (request) => record(request.resourceType(), request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  page.on("websocket", (socket) => record("websocket", socket.url()));
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });

  await page.goto(pageUrl(), { waitUntil: "load" });
  await page.waitForSelector(QUERY_EDITOR);
  const setEditor = (selector, text) =>
    page.evaluate(
      ([editor, value]) => document.querySelector(editor).CodeMirror.setValue(value),
      [selector, text],
    );
  if (config.variables) {
    await page.waitForSelector(VARIABLES_EDITOR, { state: "attached" });
    await setEditor(VARIABLES_EDITOR, JSON.stringify(config.variables, null, 2));
  }
  if (config.upload) await page.setInputFiles(UPLOAD_INPUT, config.upload);
  await setEditor(QUERY_EDITOR, config.query);
  // GraphiQL parses the editor's text 100 ms after a change, and decides from that parse whether
  // to send the operation over HTTP or the websocket (subscriptions): wait until it has parsed
  // this query, or a subscription would go out as a plain POST.
  await page.waitForFunction(
    ([selector, query]) =>
      document.querySelector(selector).CodeMirror.documentAST?.loc?.source.body === query,
    [QUERY_EDITOR, config.query],
  );
  await page.click(EXECUTE_BUTTON);
  const responseText = () =>
    page.evaluate((selector) => {
      const editor = document.querySelector(selector);
      return editor ? editor.CodeMirror.getValue() : null;
    }, RESPONSE_EDITOR);
  try {
    await page.waitForFunction(
      ([selector, expected]) =>
        document.querySelector(selector)?.CodeMirror.getValue().includes(expected),
      [RESPONSE_EDITOR, config.expect],
    );
  } finally {
    report.response = await responseText();
  }
  // Let anything the page starts after showing the result (e.g. a late fetch) show up too.
  await page.waitForLoadState("networkidle");
}

const userDataDir = mkdtempSync(join(tmpdir(), "graphiql-smoke-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: config.chromium,
    headless: true,
    args: CHROMIUM_FLAGS,
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
