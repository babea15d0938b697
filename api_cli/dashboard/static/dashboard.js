// trainq dashboard: draws the charts (uPlot) and keeps running things up to date by polling the
// JSON endpoints. Text from the database only ever goes in through textContent, never as HTML.
"use strict";

(function () {
  const pollMs = Number(document.body.dataset.pollMs || 2000);
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  // A busy dashboard answers 503 with Retry-After: wait that long and ask again (a few times)
  // rather than stop polling.
  async function getJson(url, retries = 5) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.status === 503 && retries > 0) {
      const afterS = Number(response.headers.get("Retry-After")) || 1;
      await new Promise((resolve) => setTimeout(resolve, afterS * 1000));
      return getJson(url, retries - 1);
    }
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  function chartSize(element) {
    return { width: Math.max(320, (element.clientWidth || 620) - 12), height: 260 };
  }

  function note(element, text) {
    let p = element.querySelector(".chart-note");
    if (!p) {
      p = document.createElement("p");
      p.className = "chart-note";
      element.appendChild(p);
    }
    p.textContent = text;
  }

  // One chart: created on the first data, updated in place afterwards.
  function draw(element, state, series, data) {
    element.dataset.points = String(data[0].length);
    element.dataset.lastStep = String(data[0].length ? data[0][data[0].length - 1] : 0);
    if (!data[0].length) {
      note(element, "no metrics yet");
      return;
    }
    const old = element.querySelector(".chart-note");
    if (old) old.remove();
    if (state.plot && state.seriesCount === series.length) {
      state.plot.setData(data);
      return;
    }
    if (state.plot) state.plot.destroy();
    const options = Object.assign(chartSize(element), {
      title: element.dataset.title || "",
      scales: { x: { time: false } },
      axes: [{ label: "step" }, {}],
      series: [{ label: "step" }].concat(series),
    });
    state.plot = new uPlot(options, data, element);
    state.seriesCount = series.length;
  }

  function runSeries(element, metrics) {
    if (element.dataset.series === "loss") {
      return [[{ label: "loss", stroke: palette[0], width: 1.5 }], [metrics.steps, metrics.loss]];
    }
    const training = { label: "training accuracy", stroke: palette[0], width: 1.5 };
    // A run without a validation split has no validation series, so no legend entry for one.
    if (element.dataset.validation !== "yes" && !metrics.validation.steps.length) {
      return [[training], [metrics.steps, metrics.accuracy]];
    }
    const joined = uPlot.join([
      [metrics.steps, metrics.accuracy],
      [metrics.validation.steps, metrics.validation.accuracy],
    ]);
    return [[
      training,
      { label: "validation accuracy", stroke: palette[3], width: 2, spanGaps: true,
        points: { show: true, size: 6 } },
    ], joined];
  }

  async function runChart(element) {
    const state = {};
    async function update() {
      const metrics = await getJson(element.dataset.src);
      const [series, data] = runSeries(element, metrics);
      draw(element, state, series, data);
      element.dataset.status = metrics.status;
      const steps = document.getElementById("run-steps");
      if (steps && element.dataset.series === "loss") {
        steps.textContent = metrics.steps_done.toLocaleString("en") + " steps done";
      }
      const status = document.getElementById("run-status");
      if (status) status.textContent = metrics.status;
      if (metrics.status === "running" || metrics.status === "queued") {
        setTimeout(() => update().catch(console.warn), pollMs);
      }
    }
    await update();
  }

  async function compareChart(element) {
    const ids = element.dataset.runs.split(",").filter(Boolean);
    const state = {};
    async function update() {
      const runs = await Promise.all(ids.map((id) => getJson("/api/runs/" + id + "/metrics")));
      const key = element.dataset.series;
      const data = uPlot.join(runs.map((m) => [m.steps, m[key]]));
      const series = runs.map((m, i) => ({
        label: "run " + m.run_id, stroke: palette[i % palette.length], width: 1.5, spanGaps: true,
      }));
      draw(element, state, series, data);
      if (runs.some((m) => m.status === "running" || m.status === "queued")) {
        setTimeout(() => update().catch(console.warn), pollMs);
      }
    }
    await update();
  }

  async function sweepChart(element) {
    const state = {};
    async function update() {
      const curves = await getJson(element.dataset.src);
      if (!curves.trials.length) {
        note(element, "no trial has a validation metric yet");
      } else {
        const data = uPlot.join(curves.trials.map((t) => [t.steps, t.values]));
        const series = curves.trials.map((t, i) => ({
          label: "trial " + t.trial + (t.pruned ? " (pruned)" : "") + (t.best ? " (best)" : ""),
          stroke: palette[i % palette.length],
          width: t.best ? 3 : 1.5,
          dash: t.pruned ? [6, 4] : undefined,
          spanGaps: true,
          points: { show: true, size: t.pruned ? 10 : 5 },
        }));
        draw(element, state, series, data);
      }
      if (curves.status === "running") setTimeout(() => update().catch(console.warn), pollMs);
    }
    await update();
  }

  // The runs list: rows of running (and queued) runs are refreshed from /api/runs.
  function liveRuns(table) {
    async function update() {
      const page = await getJson(table.dataset.src);
      let active = false;
      for (const row of page.rows) {
        const tr = table.querySelector('tr[data-run-id="' + row.id + '"]');
        if (!tr) continue;
        const fmt = (v) => (v === null || v === undefined ? "-" : Number(v).toPrecision(4).replace(/\.?0+$/, ""));
        const set = (field, text) => {
          const cell = tr.querySelector('[data-field="' + field + '"]');
          if (cell && cell.textContent !== text) cell.textContent = text;
        };
        set("steps_done", row.steps_done.toLocaleString("en") + " / " + row.steps.toLocaleString("en"));
        set("loss", fmt(row.loss));
        set("accuracy", fmt(row.accuracy));
        set("val_accuracy", fmt(row.val_accuracy));
        set("test_accuracy", fmt(row.test_accuracy));
        set("device", row.device);
        set("age", row.age);
        set("status", row.status);
        tr.className = "status-" + row.status;
        active = active || row.status === "running" || row.status === "queued";
      }
      table.dataset.updated = String(Date.now());
      if (active) setTimeout(() => update().catch(console.warn), pollMs);
    }
    if (table.querySelector("tr.status-running, tr.status-queued")) {
      setTimeout(() => update().catch(console.warn), pollMs);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const kinds = { run: runChart, compare: compareChart, sweep: sweepChart };
    for (const element of document.querySelectorAll(".chart[data-kind]")) {
      kinds[element.dataset.kind](element).catch((error) => note(element, String(error)));
    }
    const runs = document.getElementById("runs");
    if (runs) liveRuns(runs);
  });
})();
