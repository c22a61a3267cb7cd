// The dashboard's state and wiring (docs/dashboard.md).
//
// Theory of operation. The SSE stream (/events) opens first; once it is open the state
// is read over the REST API (running jobs, recent outcomes, workflow instances and the
// summary: counts, stale and re-attached jobs, the throughput chart), with the events
// that arrive meanwhile held and applied after it. From then on the stream moves it: a
// progress event updates its job's bar in place, a lifecycle event re-reads that one job
// or instance (gathered for 150 ms; past eight at once, the lists are read again
// instead), and `reset` (the server could not replay what we missed) re-reads everything. While the stream is down (a
// supervisor restart) the page says so and polls; when it comes back the stream resumes
// from the last event id and the page re-reads the summary. Rendering is batched: state
// changes mark the page dirty and one requestAnimationFrame redraws it.

import { ApiError, EventStream, getJson, getText, postJson, setToken, takeTokenFromUrl } from "./api.js";
import { duration, h, morph, replace, shortId } from "./dom.js";
import * as views from "./views.js";

const RECENT = 30;
const INSTANCES = 8;
const SUMMARY_EVERY_MS = 10000;
const POLL_WHILE_DOWN_MS = 3000;
const LOG_EVERY_MS = 2000;
const MAX_RUNNING = 200; // running jobs listed
const MAX_SINGLE_READS = 8; // changed jobs read one by one; more: the lists again
const REFETCH_DELAY_MS = 150; // changes gathered before they are read
const EVENTS = [
  "reset",
  "job.submitted", "job.external.spawned", "job.external.progress", "job.external.log",
  "job.stale", "job.reconnected", "job.lost", "job.retrying", "job.retried",
  "job.completed", "job.failed", "job.cancelled", "job.deleted", "job.requeued",
  "workflow.started", "workflow.progress", "workflow.completed", "workflow.failed",
  "workflow.cancelled", "workflow.step.started", "workflow.step.completed",
  "workflow.step.failed", "workflow.step.retry",
];
const FINAL_JOB = new Set(["job.completed", "job.failed", "job.cancelled", "job.deleted"]);

const state = {
  jobs: new Map(), // id -> job, running and recent
  summary: null,
  stale: new Set(),
  reattached: new Set(),
  definitions: new Map(), // workflow name -> definition (its step graph)
  instances: new Map(), // id -> instance
  open: null, // the job shown in the drawer
  log: { id: null, offset: 0, text: "", complete: false, started: false },
  stream: "connecting",
};

const $ = (id) => document.getElementById(id);
let dirty = false;
const refetchJobs = new Set();
const refetchInstances = new Set();

function render() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(draw);
}

function draw() {
  dirty = false;
  const jobs = [...state.jobs.values()];
  const running = jobs.filter((j) => j.status === "running")
    .sort((a, b) => (a.started_at || "").localeCompare(b.started_at || ""));
  const recent = jobs.filter((j) => ["completed", "failed", "cancelled"].includes(j.status))
    .sort((a, b) => (b.finished_at || "").localeCompare(a.finished_at || "")).slice(0, RECENT);
  morph($("cards"), views.cards(state.summary, state.stale.size, running.length));
  morph($("chart"), views.chart(state.summary));
  $("running-count").textContent = String(running.length);
  morph($("running"), running.length ? running.map((job) => views.runningRow(job,
    { stale: state.stale.has(job.id), reattached: state.reattached.has(job.id) }, openJob))
    : h("div", { class: "empty" }, "nothing running"));
  morph($("recent"), recent.length ? recent.map((job) => views.outcomeRow(job, openJob))
    : h("div", { class: "empty" }, "no finished jobs yet"));
  const instances = [...state.instances.values()]
    .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || "")).slice(0, INSTANCES);
  $("workflow-count").textContent = instances.length ? String(instances.length) : "";
  morph($("workflows"), instances.length
    ? instances.map((i) => views.instanceRow(i, state.definitions.get(i.workflow)))
    : h("div", { class: "empty" }, state.definitions.size ? "no instances yet" : "workflows are not enabled"));
  const conn = $("conn");
  conn.textContent = state.stream;
  conn.className = `pill pill-${state.stream}`;
  conn.dataset.state = state.stream;
  if (state.summary) {
    $("node").textContent = state.summary.node;
    const since = Date.now() / 1000 - state.summaryAt;
    $("uptime").textContent = "up " + duration(state.summary.now - state.summary.started_at + since);
  }
  drawDrawer();
}

// --- reading state ------------------------------------------------------------------

async function loadAll() {
  await Promise.all([loadJobs(), loadSummary(), loadWorkflows()]);
  render();
}

// The running jobs and the latest ones: two reads, whatever the number of jobs that
// changed (this also bounds the jobs the page holds).
async function loadJobs() {
  const [runningJobs, recentJobs] = await Promise.all([
    getJson(`/jobs?status=running&limit=${MAX_RUNNING}`),
    getJson(`/jobs?limit=${RECENT * 2}`),
  ]);
  const jobs = new Map();
  const open = state.open && state.jobs.get(state.open);
  if (open) jobs.set(open.id, open); // the panel's job may be older than the lists
  for (const job of [...recentJobs.jobs, ...runningJobs.jobs]) jobs.set(job.id, job);
  state.jobs = jobs;
}

async function loadSummary() {
  const summary = await getJson("/dashboard/summary");
  state.summary = summary;
  state.summaryAt = Date.now() / 1000;
  state.stale = new Set(summary.stale);
  state.reattached = new Set(summary.reattached);
  for (const job of state.jobs.values()) {
    if (job.status === "running") job.process_state = summary.unconnected[job.id] || "running";
  }
  render();
}

async function loadWorkflows() {
  try {
    if (!state.definitions.size) {
      const defs = await getJson("/workflows");
      state.definitions = new Map(defs.workflows.map((d) => [d.name, d]));
    }
    const list = await getJson(`/workflows/instances?limit=${INSTANCES}`);
    const whole = await Promise.all(list.instances.map((i) => getJson(`/workflows/instances/${i.id}`)));
    state.instances = new Map(whole.map((i) => [i.id, i]));
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "workflows_disabled")) throw error;
  }
}

async function flushRefetches() {
  const jobs = [...refetchJobs];
  const instances = [...refetchInstances];
  refetchJobs.clear();
  refetchInstances.clear();
  // Many changed at once (a burst of outcomes): the two list reads instead of one
  // read per job, so the page's load on the supervisor does not grow with its rate.
  const bulk = jobs.length > MAX_SINGLE_READS;
  const instancesBulk = instances.length > MAX_SINGLE_READS;
  await Promise.all([
    bulk ? loadJobs() : null,
    instancesBulk ? loadWorkflows() : null,
    ...(bulk ? [] : jobs).map(async (id) => {
      try {
        state.jobs.set(id, await getJson(`/jobs/${id}`));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) state.jobs.delete(id);
      }
    }),
    ...(instancesBulk ? [] : instances).map(async (id) => {
      try {
        state.instances.set(id, await getJson(`/workflows/instances/${id}`));
      } catch (_) {
        /* gone or disabled: leave what we have */
      }
    }),
  ]);
  if (!bulk) prune();
  render();
  if (state.open && jobs.includes(state.open)) followLog();
}

// Jobs read one by one pile up: keep the running ones, the open one and the latest
// finished ones the page can show.
function prune() {
  if (state.jobs.size <= MAX_RUNNING + RECENT * 4) return;
  const finished = [...state.jobs.values()]
    .filter((j) => j.status !== "running" && j.id !== state.open)
    .sort((a, b) => (b.finished_at || b.created_at || "").localeCompare(a.finished_at || a.created_at || ""));
  for (const job of finished.slice(RECENT * 2)) state.jobs.delete(job.id);
}

let flushQueued = false;
function refetch(set, id) {
  set.add(id);
  if (flushQueued) return;
  flushQueued = true;
  setTimeout(() => {
    flushQueued = false;
    flushRefetches().catch(showError);
  }, REFETCH_DELAY_MS);
}

// --- the event stream ---------------------------------------------------------------

function onEvent(name, data) {
  if (name === "reset") {
    held = [];
    // A read in progress may predate what the reset says we missed: read again after it.
    (loading ? loading.then(() => reload()) : reload()).catch(showError);
    return;
  }
  if (loading) {
    held.push([name, data]);
    return;
  }
  if (name.startsWith("workflow.")) {
    onWorkflowEvent(name, data);
    return;
  }
  const id = data.id;
  if (!id) return;
  const job = state.jobs.get(id);
  if (name === "job.external.progress" && job) {
    job.progress = { ...job.progress, percent: data.percent ?? job.progress.percent, message: data.message ?? job.progress.message };
    // Its worker speaks, so it is connected (a welcome is no event of its own).
    if (job.process_state !== "running") job.process_state = "running";
    state.stale.delete(id);
    render();
    return;
  }
  if (name === "job.external.log") {
    if (state.open === id) followLog();
    return;
  }
  if (name === "job.stale") state.stale.add(id);
  if (name === "job.reconnected") state.reattached.add(id);
  if (FINAL_JOB.has(name)) {
    state.stale.delete(id);
    bumpChart(name.slice(4));
  }
  refetch(refetchJobs, id);
  summarySoon();
}

// Counts move with lifecycle events: read the summary again, at most once a second.
let summaryTimer = null;
function summarySoon() {
  if (summaryTimer) return;
  summaryTimer = setTimeout(() => {
    summaryTimer = null;
    loadSummary().catch(() => {});
  }, 1000);
}

function onWorkflowEvent(name, data) {
  const id = data.parent_id || data.id;
  const instance = state.instances.get(id);
  if (name === "workflow.progress" && data.step && instance && !data.parent_id) {
    const step = instance.steps[data.step];
    if (step) {
      step.progress_percent = data.percent;
      render();
      return;
    }
  }
  if (id) refetch(refetchInstances, id);
}

function bumpChart(outcome) {
  const tp = state.summary && state.summary.throughput;
  if (!tp || !tp[outcome]) return;
  const minute = Math.floor((Date.now() / 1000 - tp.start) / 60);
  if (minute >= 0 && minute < tp[outcome].length) tp[outcome][minute] += 1;
}

let stream = null;
let pollTimer = null;
let broken = false; // the stream was down since it was last live
let loaded = false; // the state has been read once over the REST API

function onStreamState(next) {
  state.stream = next;
  render();
  if (next === "live") {
    clearInterval(pollTimer);
    pollTimer = null;
    if (!loaded) {
      reload().catch(showError); // the stream is open: nothing after this read is missed
    } else if (broken) {
      // Back after a break: the stream replays what we missed after the last id we
      // saw (or says reset); stale and re-attached marks are not all events, so the
      // summary is read again. With no id to resume from, everything is.
      (stream.lastId ? loadSummary() : reload()).catch(showError);
    }
    broken = false;
  } else if (next !== "connecting") {
    broken = true;
    if (!pollTimer) {
      pollTimer = setInterval(() => reload().catch(() => {}), POLL_WHILE_DOWN_MS);
      if (!loaded) reload().catch(showError); // no stream yet: show the state anyway
    }
  }
}

// Reading everything while events arrive: the events are held and applied after the
// read, so one that came in between the read's requests is not lost under older data.
let loading = null;
let held = [];
function reload() {
  if (loading) return loading;
  held = [];
  loading = loadAll()
    .then(() => {
      loaded = true;
    })
    .finally(() => {
      loading = null;
      const events = held;
      held = [];
      for (const [name, data] of events) onEvent(name, data);
    });
  return loading;
}

// --- the job drawer -----------------------------------------------------------------

function openJob(event) {
  event.preventDefault();
  window.location.hash = "job/" + event.currentTarget.dataset.job;
}

function route() {
  const match = /^#job\/([^/]+)$/.exec(window.location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id === state.open) return;
  state.open = id;
  state.log = { id, offset: 0, text: "", complete: false, started: false };
  $("drawer").hidden = !id;
  $("d-action-error").textContent = "";
  if (id) {
    if (!state.jobs.has(id)) refetch(refetchJobs, id);
    followLog();
  }
  render();
}

// One reader of the open panel's log at a time; a call while it reads asks it to read
// once more when it is done (an event came in meanwhile), and a panel switched to
// another job starts that job's reader.
let following = false;
let followAgain = false;
async function followLog() {
  const log = state.log;
  if (!log.id) return;
  if (following) {
    followAgain = true;
    return;
  }
  following = true;
  followAgain = false;
  try {
    if (!log.started) {
      const tail = await getText(`/dashboard/jobs/${log.id}/log-tail`);
      if (state.log !== log) return;
      log.started = true;
      log.text = tail.text;
      log.offset = Number(tail.headers.get("x-log-offset")) || 0;
    }
    while (state.log === log) {
      const answer = await getText(`/jobs/${log.id}/logs?offset=${log.offset}`);
      if (state.log !== log) break;
      log.offset = Number(answer.headers.get("x-log-offset")) || log.offset;
      log.complete = answer.headers.get("x-log-complete") === "true";
      if (!answer.text) break;
      log.text = (log.text + answer.text).slice(-200000);
    }
  } catch (error) {
    showError(error);
  } finally {
    following = false;
    render();
    if (state.log !== log || followAgain) followLog();
  }
}

function drawDrawer() {
  const job = state.open ? state.jobs.get(state.open) : null;
  if (!state.open) return;
  if (!job) {
    $("d-title").textContent = shortId(state.open);
    return;
  }
  replace($("d-title"), h("span", { class: `status status-${job.status}` }, job.status), " ",
    h("span", { class: "name" }, job.name), " ", h("span", { class: "id" }, job.id));
  $("d-sub").textContent = `created ${job.created_at || ""}` + (job.finished_at ? ` · finished ${job.finished_at}` : "");
  $("d-cancel").hidden = !["pending", "scheduled", "running"].includes(job.status);
  $("d-retry").hidden = !["failed", "cancelled"].includes(job.status);
  replace($("d-progress"), job.status === "running"
    ? [views.progressBar(job.progress.percent), h("div", { class: "row-message" }, job.progress.message || "")]
    : null);
  replace($("d-error"), job.error
    ? h("div", { class: "error-box" }, h("strong", {}, `${job.error.reason}: `), job.error.message,
      job.error.stack ? h("pre", { class: "stack" }, job.error.stack) : null)
    : null);
  replace($("d-attempts"), views.attempts(job, state.log.text));
  const pre = $("d-log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  const tail = state.log.text.split("\n").slice(-500).join("\n");
  if (pre.textContent !== tail) {
    pre.textContent = tail;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  $("d-data").textContent = JSON.stringify(job.result !== null ? { data: job.data, result: job.result } : { data: job.data }, null, 2);
}

async function act(path) {
  $("d-action-error").textContent = "";
  try {
    const answer = await postJson(path, {});
    const job = answer.job || answer;
    if (job && job.id) {
      state.jobs.set(job.id, job);
      if (job.id !== state.open) window.location.hash = "job/" + job.id;
    }
    render();
  } catch (error) {
    $("d-action-error").textContent = error.message;
  }
}

// --- start --------------------------------------------------------------------------

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    showLogin("the token was refused");
    return;
  }
  const toast = $("toast");
  toast.textContent = String(error.message || error);
  toast.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { toast.hidden = true; }, 5000);
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

let started = false;
let tokenGiven = false; // a token came with the URL or from the form
async function start() {
  try {
    await loadSummary(); // checks the token before anything else is shown
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin(tokenGiven ? "the token was refused" : "");
      return;
    }
    throw error;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  if (started) return;
  started = true;
  // The stream first, the state once it is open (onStreamState): an event between
  // the two reads is then never missed.
  stream = new EventStream(EVENTS, { onEvent, onState: onStreamState });
  stream.open();
  setInterval(() => loadSummary().catch(() => {}), SUMMARY_EVERY_MS);
  setInterval(render, 1000); // elapsed times and "ago" move on their own
  // A worker's stdout and stderr are not events: an open panel on a live job reads on.
  setInterval(() => {
    if (state.log.id && !state.log.complete) followLog();
  }, LOG_EVERY_MS);
  window.addEventListener("hashchange", route);
  route();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken($("token").value);
  tokenGiven = true;
  start().catch(showError);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.open) window.location.hash = "";
});
$("d-close").addEventListener("click", (event) => {
  event.preventDefault();
  window.location.hash = "";
});
$("d-cancel").addEventListener("click", () => act(`/jobs/${state.open}/cancel`));
$("d-retry").addEventListener("click", () => act(`/jobs/${state.open}/retry`));

tokenGiven = takeTokenFromUrl();
start().catch(showError);
