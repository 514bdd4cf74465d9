#!/usr/bin/env node
// What a person does in the studio's GraphiQL, in a real Chromium with no internet: create a
// video, start its generation, watch the job's stages and progress arrive over the subscription,
// then play the finished MP4 in a <video> element with its captions in a <track>.
//
//   node tests/browser/studio_walkthrough.mjs '{"url": "http://127.0.0.1:8000/graphql#token=…",
//     "input": {"title": "…", "description": "…", "inputType": "DESCRIPTION"},
//     "chromium": "/usr/bin/chromium"}'
//
// stdout: one JSON report {ok, error, videoId, states, video, player, external, pageErrors}.
// `states` are the subscription's results in the order the result pane showed them; `player` is
// what the <video> element reported (duration, size, time played, decoded audio bytes, cues).
// Exit status: 0 passed, 2 anything failed. tests/app/test_graphiql_walkthrough.py runs this.

import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../graphiql/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.argv[2] ?? "{}");
const target = new URL(config.url);
const timeoutMs = config.timeoutMs ?? 60000;

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
  "--autoplay-policy=no-user-gesture-required",
  `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${target.hostname}`,
];

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
const VARIABLES_EDITOR = ".graphiql-editor-tool > .graphiql-editor:first-child .CodeMirror";
const RESPONSE_EDITOR = ".graphiql-response .CodeMirror";
const EXECUTE_BUTTON = ".graphiql-execute-button";

const CREATE = `mutation Create($input: CreateVideoInput!) {
  createVideo(input: $input) { video { id } }
}`;
const START = `mutation Start($id: ID!) {
  startGeneration(videoId: $id) { job { id status } }
}`;
const WATCH = `subscription Watch($jobId: ID!) {
  jobProgress(jobId: $jobId) { status stage progress error }
}`;
const PLAYER = `query Player($id: ID!) {
  video(id: $id) {
    status mediaUrl posterUrl durationMs
    captionTracks { language format url }
  }
}`;

const report = {
  ok: false,
  error: null,
  videoId: null,
  states: [],
  video: null,
  player: null,
  external: [],
  pageErrors: [],
};

function record(url) {
  const parsed = new URL(url);
  if (["data:", "blob:", "about:"].includes(parsed.protocol)) return;
  if (parsed.host !== target.host) report.external.push(url);
}

async function graphiql(page, query, variables) {
  const setEditor = (selector, text) =>
    page.evaluate(
      ([editor, value]) => document.querySelector(editor).CodeMirror.setValue(value),
      [selector, text],
    );
  const response = () =>
    page.evaluate((selector) => document.querySelector(selector)?.CodeMirror.getValue() ?? "", RESPONSE_EDITOR);
  await page.waitForSelector(VARIABLES_EDITOR, { state: "attached" });
  await setEditor(VARIABLES_EDITOR, JSON.stringify(variables, null, 2));
  await setEditor(QUERY_EDITOR, query);
  // Wait until GraphiQL has parsed this text: it decides from the parse whether the operation
  // goes over HTTP or the websocket.
  await page.waitForFunction(
    ([selector, text]) => document.querySelector(selector).CodeMirror.documentAST?.loc?.source.body === text,
    [QUERY_EDITOR, query],
  );
  const before = await response();
  await page.click(EXECUTE_BUTTON);
  await page.waitForFunction(
    ([selector, old]) => {
      const text = document.querySelector(selector)?.CodeMirror.getValue() ?? "";
      return text !== "" && text !== old;
    },
    [RESPONSE_EDITOR, before],
  );
  return response;
}

async function run(context) {
  context.on("request", (request) => record(request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));

  await page.goto(target.href, { waitUntil: "load" });
  await page.waitForSelector(QUERY_EDITOR);

  const created = JSON.parse(await (await graphiql(page, CREATE, { input: config.input }))());
  report.videoId = created.data.createVideo.video.id;
  const started = JSON.parse(await (await graphiql(page, START, { id: report.videoId }))());
  const jobId = started.data.startGeneration.job.id;

  // The result pane shows each new subscription result as it arrives: keep every distinct one
  // until the job has ended.
  const pane = await graphiql(page, WATCH, { jobId });
  let seen = "";
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await page.waitForFunction(
      ([selector, old]) => {
        const value = document.querySelector(selector)?.CodeMirror.getValue() ?? "";
        return value !== old && value.includes("jobProgress") ? value : false;
      },
      [RESPONSE_EDITOR, seen],
      { polling: 10 },
    );
    seen = await text.jsonValue();
    const state = JSON.parse(seen).data.jobProgress;
    report.states.push(state);
    if (!["QUEUED", "RUNNING"].includes(state.status)) break;
    if (Date.now() > deadline) throw new Error("the job did not end in time");
  }
  void pane;

  const player = JSON.parse(await (await graphiql(page, PLAYER, { id: report.videoId }))());
  report.video = player.data.video;
  const vtt = report.video.captionTracks.find((track) => track.format === "vtt");

  // The player: a page of the studio's own origin (as a web app would be), with the signed URLs.
  await page.goto(new URL("/healthz", target).href);
  report.player = await page.evaluate(
    async ([mediaUrl, trackUrl, language]) => {
      document.body.innerHTML = "";
      const video = document.createElement("video");
      video.muted = true; // autoplay without a gesture; audio is still decoded
      video.src = mediaUrl;
      const track = document.createElement("track");
      track.kind = "captions";
      track.srclang = language;
      track.src = trackUrl;
      track.default = true;
      video.appendChild(track);
      document.body.appendChild(video);
      const event = (target, name) =>
        new Promise((resolve, reject) => {
          target.addEventListener(name, resolve, { once: true });
          target.addEventListener("error", () => reject(new Error(`${name}: ${video.error?.message ?? "error"}`)), { once: true });
        });
      await Promise.all([event(video, "loadedmetadata"), event(track, "load")]);
      const captions = video.textTracks[0];
      captions.mode = "showing";
      const shown = new Set();
      const collect = () => {
        for (const cue of captions.activeCues ?? []) shown.add(cue.text);
      };
      captions.addEventListener("cuechange", collect);
      await video.play();
      // Play through the first caption into the next one.
      const until = Math.min(video.duration - 0.1, captions.cues[0].endTime + 0.5);
      await new Promise((resolve) => {
        const check = () => (video.currentTime >= until ? resolve() : setTimeout(check, 50));
        check();
      });
      collect();
      video.pause();
      return {
        duration: video.duration,
        width: video.videoWidth,
        height: video.videoHeight,
        played: video.currentTime,
        audioBytes: video.webkitAudioDecodedByteCount,
        videoBytes: video.webkitVideoDecodedByteCount,
        cues: video.textTracks[0].cues.length,
        shownCues: [...shown],
      };
    },
    [report.video.mediaUrl, vtt.url, vtt.language],
  );
}

const userDataDir = mkdtempSync(join(tmpdir(), "studio-walkthrough-"));
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
process.exitCode = report.ok ? 0 : 2;
