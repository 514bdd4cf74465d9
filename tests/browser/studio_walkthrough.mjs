#!/usr/bin/env node
// What a person does in the studio's GraphiQL, in a real Chromium with no internet: create a
// video, start its generation, watch the job's progress arrive over the subscription until it
// ends, then play the finished MP4 in a <video> element with its captions in a <track>.
//
//   node tests/browser/studio_walkthrough.mjs '{"url": "http://127.0.0.1:8000/graphql#token=…",
//     "input": {"title": "…", "description": "…", "inputType": "DESCRIPTION"},
//     "chromium": "/usr/bin/chromium"}'
//
// stdout: one JSON report {ok, error, videoId, states, video, player, requests, external,
// pageErrors, consoleErrors}. `states` are the subscription's results in the order the result
// pane showed them, through to the job's end (the pane shows the newest: a result replaced
// before it was looked at is not among them); `player` is what the <video> element reported
// (duration, size, time played, decoded audio bytes, cues). Exit status: 0 passed, 1 a request
// went to another host, 2 anything else failed. tests/app/test_graphiql_walkthrough.py runs
// this; graphiql_page.mjs holds what it shares with graphiql_smoke.mjs.

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
config.timeoutMs ??= 60000;
const target = new URL(config.url);

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

const report = newReport({ videoId: null, states: [], video: null, player: null });

// Type an operation and its variables into GraphiQL, run it, and wait for the result pane to
// change: the pane's new text.
async function runOperation(page, query, variables) {
  await setVariables(page, variables);
  await setQuery(page, query);
  const before = (await responseText(page)) ?? "";
  await page.click(EXECUTE_BUTTON);
  const changed = await page.waitForFunction(
    ([selector, old]) => {
      const text = document.querySelector(selector)?.CodeMirror.getValue() ?? "";
      return text !== "" && text !== old ? text : false;
    },
    [RESPONSE_EDITOR, before],
  );
  return changed.jsonValue();
}

async function run(context) {
  const page = await watchedPage(context, target, report, config.timeoutMs);
  await page.goto(target.href, { waitUntil: "load" });
  await page.waitForSelector(QUERY_EDITOR);

  const created = JSON.parse(await runOperation(page, CREATE, { input: config.input }));
  report.videoId = created.data.createVideo.video.id;
  const started = JSON.parse(await runOperation(page, START, { id: report.videoId }));
  const jobId = started.data.startGeneration.job.id;

  // The result pane shows each new subscription result as it arrives: keep every distinct one
  // until the job has ended.
  await runOperation(page, WATCH, { jobId });
  let seen = "";
  const deadline = Date.now() + config.timeoutMs;
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

  const player = JSON.parse(await runOperation(page, PLAYER, { id: report.videoId }));
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

await runInChromium(
  {
    config,
    target,
    report,
    profilePrefix: "studio-walkthrough-",
    flags: ["--autoplay-policy=no-user-gesture-required"],
  },
  run,
);
