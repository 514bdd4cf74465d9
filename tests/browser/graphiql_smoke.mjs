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
// tests/support/browser.py runs this script; graphiql_page.mjs holds what it shares with
// studio_walkthrough.mjs.
//
// stdout: one JSON report {ok, error, response, requests, external, pageErrors, consoleErrors}.
// Exit status: 0 passed, 1 a request went to another host, 2 anything else failed.

import {
  EXECUTE_BUTTON,
  QUERY_EDITOR,
  RESPONSE_EDITOR,
  newReport,
  responseText,
  runInChromium,
  setQuery,
  setVariables,
  watchedPage,
} from "./graphiql_page.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");
config.timeoutMs ??= 30000;
const target = new URL(config.url);

const UPLOAD_INPUT = "#studio-upload-file";

const report = newReport({ response: null });

// Strawberry's page reads `?headers=` with decodeURIComponent, which leaves "+" alone: encode
// spaces as %20, not as URLSearchParams' "+".
function pageUrl() {
  if (!config.headers) return target.href;
  const separator = target.search ? "&" : "?";
  return `${target.href}${separator}headers=${encodeURIComponent(JSON.stringify(config.headers))}`;
}

async function run(context) {
  const page = await watchedPage(context, target, report, config.timeoutMs);
  await page.goto(pageUrl(), { waitUntil: "load" });
  await page.waitForSelector(QUERY_EDITOR);
  if (config.variables) await setVariables(page, config.variables);
  if (config.upload) await page.setInputFiles(UPLOAD_INPUT, config.upload);
  await setQuery(page, config.query);
  await page.click(EXECUTE_BUTTON);
  try {
    await page.waitForFunction(
      ([selector, expected]) =>
        document.querySelector(selector)?.CodeMirror.getValue().includes(expected),
      [RESPONSE_EDITOR, config.expect],
    );
  } finally {
    report.response = await responseText(page);
  }
  // Let anything the page starts after showing the result (e.g. a late fetch) show up too.
  await page.waitForLoadState("networkidle");
}

await runInChromium({ config, target, report, profilePrefix: "graphiql-smoke-" }, run);
