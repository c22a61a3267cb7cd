// What each part of the page looks like, built from plain state objects (no fetching
// here): counters, the throughput chart, job rows, workflow step graphs.

import { ago, clock, duration, h, seconds, shortId, svg } from "./dom.js";

export function cards(summary, stale, running) {
  const counts = summary ? summary.counts : {};
  const tp = summary ? summary.throughput : null;
  const total = (key) => (tp && tp[key] ? tp[key].reduce((a, b) => a + b, 0) : 0);
  const card = (label, value, kind, title) =>
    h("div", { class: `card card-${kind}`, "data-counter": kind, title },
      h("div", { class: "card-value" }, String(value)),
      h("div", { class: "card-label" }, label));
  return [
    card("running", running, "running"),
    card("pending", counts.pending ?? 0, "pending"),
    card("scheduled", counts.scheduled ?? 0, "scheduled", "waiting for run_at or a retry's backoff"),
    card("stale", stale, "stale", "running jobs whose worker has gone silent"),
    card("completed", total("completed"), "completed", "in the last 30 minutes"),
    card("failed", total("failed"), "failed", "in the last 30 minutes"),
  ];
}

export function chart(summary) {
  const width = 600;
  const height = 100;
  const tp = summary ? summary.throughput : null;
  if (!tp) return h("div", { class: "muted" }, "no data yet");
  const n = tp.completed.length;
  const totals = tp.completed.map((c, i) => c + tp.failed[i] + tp.cancelled[i]);
  const top = Math.max(1, ...totals);
  const bar = width / n;
  // Stretched to the panel's width (bars only: text would stretch too, so the labels
  // are HTML below it).
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "chart-svg", role: "img" });
  root.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "axis" }));
  for (let i = 0; i < n; i++) {
    let y = height;
    for (const [key, cls] of [["completed", "ok"], ["failed", "bad"], ["cancelled", "off"]]) {
      const value = tp[key][i];
      if (!value) continue;
      const tall = (value / top) * (height - 4);
      y -= tall;
      const rect = svg("rect", { x: i * bar + 1, y, width: Math.max(1, bar - 2), height: tall, class: cls });
      const title = svg("title");
      const at = new Date((tp.start + i * 60) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      title.textContent = `${at}: ${value} ${key}`;
      rect.append(title);
      root.append(rect);
    }
  }
  const sum = (key) => tp[key].reduce((a, b) => a + b, 0);
  return [root, h("div", { class: "chart-legend" },
    h("span", {}, `${n} min ago`),
    h("span", {}, h("i", { class: "dot ok" }), ` completed ${sum("completed")}  `,
      h("i", { class: "dot bad" }), ` failed ${sum("failed")}  `,
      h("i", { class: "dot off" }), ` cancelled ${sum("cancelled")}  · peak ${top}/min`),
    h("span", {}, "now"))];
}

export function badges(job, flags) {
  const out = [];
  if (flags.stale) out.push(h("span", { class: "badge badge-stale", title: "no message from the worker for a heartbeat timeout" }, "stale"));
  if (flags.reattached) out.push(h("span", { class: "badge badge-reattached", title: "the worker outlived a supervisor restart and re-attached" }, "re-attached"));
  const ps = job.process_state;
  if (ps === "reconnecting" || ps === "orphaned" || ps === "spawning") {
    out.push(h("span", { class: `badge badge-${ps}` }, ps));
  }
  return out;
}

export function progressBar(percent) {
  const pct = typeof percent === "number" ? Math.max(0, Math.min(100, percent)) : null;
  return h("div", { class: "bar" + (pct === null ? " bar-unknown" : ""), role: "progressbar",
    "aria-valuenow": pct === null ? null : pct.toFixed(1), "aria-valuemin": 0, "aria-valuemax": 100 },
    h("div", { class: "bar-fill", style: `width: ${pct === null ? 100 : pct}%` }),
    h("span", { class: "bar-text" }, pct === null ? "" : `${pct.toFixed(pct < 10 ? 1 : 0)}%`));
}

export function runningRow(job, flags, open) {
  const started = seconds(job.started_at);
  return h("a", { class: "row row-running", href: `#job/${job.id}`, "data-job": job.id, onclick: open },
    h("div", { class: "row-main" },
      h("div", { class: "row-title" },
        h("span", { class: "name" }, job.name),
        h("span", { class: "id" }, shortId(job.id)),
        badges(job, flags)),
      h("div", { class: "row-message" }, job.progress.message || "\u00a0")),
    h("div", { class: "row-progress" }, progressBar(job.progress.percent)),
    h("div", { class: "row-meta" },
      h("div", {}, `attempt ${job.attempts}/${job.max_attempts}`),
      h("div", { class: "muted" }, started ? duration(Date.now() / 1000 - started) : "")));
}

export function outcomeRow(job, open) {
  const took = job.started_at && job.finished_at
    ? duration(seconds(job.finished_at) - seconds(job.started_at)) : "";
  const error = job.error ? job.error.message : null;
  return h("a", { class: `row row-outcome status-${job.status}`, href: `#job/${job.id}`, "data-job": job.id, onclick: open },
    h("span", { class: `status status-${job.status}` }, job.status),
    h("div", { class: "row-main" },
      h("div", { class: "row-title" },
        h("span", { class: "name" }, job.name),
        h("span", { class: "id" }, shortId(job.id)),
        job.attempts > 1 ? h("span", { class: "badge" }, `${job.attempts} attempts`) : null),
      error ? h("div", { class: "row-error" }, error) : null),
    h("div", { class: "row-meta" },
      h("div", {}, took),
      h("div", { class: "muted", title: job.finished_at || "" }, ago(job.finished_at))));
}

// A workflow instance: its steps in the definition's order, each a node coloured by its
// state (not reached yet: dashed); a parallel step holds its branches, one lane each.
export function instanceRow(instance, definition) {
  return h("div", { class: `row row-workflow status-${instance.status}`, "data-instance": instance.id },
    h("div", { class: "wf-head" },
      h("span", { class: `status status-${instance.status}` }, instance.status),
      h("span", { class: "name" }, instance.workflow),
      h("span", { class: "id" }, shortId(instance.id)),
      h("span", { class: "muted small" }, clock(instance.created_at)),
      instance.error ? h("span", { class: "row-error" }, instance.error.message) : null),
    graph(definition, instance));
}

function graph(definition, instance) {
  const steps = definition ? definition.steps : Object.keys(instance.steps || {}).map((name) => ({ name, kind: "task" }));
  const nodes = [];
  steps.forEach((step, i) => {
    if (i > 0) nodes.push(h("span", { class: "arrow" }, "→"));
    nodes.push(stepNode(step, instance));
  });
  return h("div", { class: "graph" }, nodes);
}

function stepNode(step, instance) {
  const state = (instance && instance.steps && instance.steps[step.name]) || null;
  const status = state ? state.status : "unreached";
  const title = [step.kind, status, state && state.error ? state.error.message : null]
    .filter(Boolean).join(" · ");
  // A step that ran a job links to that job's panel (its log, its attempts).
  const jobId = state && state.job_id;
  const node = h(jobId ? "a" : "div", { class: `step step-${status} kind-${step.kind}`, title,
    "data-step": step.name, "data-status": status, href: jobId ? `#job/${jobId}` : null },
    h("span", { class: "step-name" }, step.name),
    state && state.progress_percent !== undefined ? progressBar(state.progress_percent) : null,
    state && state.attempts > 1 ? h("span", { class: "step-attempts" }, `×${state.attempts}`) : null);
  if (step.kind === "parallel" && step.branches) {
    const branches = (state && state.branches) || [];
    const lanes = step.branches.map((branch) => {
      const child = branches.find((b) => b.branch === branch.name) || null;
      return h("div", { class: "lane" },
        h("span", { class: "lane-name" }, branch.name),
        graph(branch, child || { steps: {} }));
    });
    node.append(h("div", { class: "lanes" }, lanes));
  }
  return node;
}

export function attempts(job, logText) {
  // The supervisor's own lines in the job's log ("[jobvisor] ...") tell each attempt's story.
  const lines = logText.split("\n").filter((line) => line.includes(" [jobvisor] "));
  const items = lines.slice(-50).map((line) => {
    const [stamp, , ...rest] = line.split(" ");
    return h("div", { class: "attempt" },
      h("span", { class: "muted" }, clock(stamp)), " ", rest.join(" "));
  });
  const head = h("div", { class: "attempt-head" },
    `attempt ${job.attempts} of ${job.max_attempts}`,
    job.pid ? h("span", { class: "muted" }, ` · pid ${job.pid}`) : null,
    job.status === "running" && job.last_heartbeat
      ? h("span", { class: "muted" }, ` · heartbeat ${ago(job.last_heartbeat)}`) : null);
  return [head, ...items];
}
