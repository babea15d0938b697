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

  // Values a log axis can place: zero and negatives become gaps (a loss of 0 has no log).
  function positive(data) {
    return [data[0]].concat(data.slice(1).map((ys) => ys.map((v) => (v > 0 ? v : null))));
  }

  // The "log scale" checkbox above a chart: redraws the same data on a log y axis.
  function logToggle(element, state) {
    const label = document.createElement("label");
    label.className = "log-toggle";
    const box = document.createElement("input");
    box.type = "checkbox";
    label.appendChild(box);
    label.appendChild(document.createTextNode(" log scale"));
    box.addEventListener("change", () => {
      state.log = box.checked;
      element.dataset.log = String(state.log);
      if (state.plot) state.plot.destroy();
      state.plot = null;
      if (state.data) draw(element, state, state.series, state.data);
    });
    element.insertBefore(label, element.firstChild);
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
    if (!element.querySelector(".log-toggle")) logToggle(element, state);
    state.series = series;
    state.data = data;
    const shown = state.log ? positive(data) : data;
    if (state.plot && state.seriesCount === series.length) {
      state.plot.setData(shown);
      return;
    }
    if (state.plot) state.plot.destroy();
    const options = Object.assign(chartSize(element), {
      title: element.dataset.title || "",
      scales: { x: { time: false }, y: state.log ? { distr: 3, log: 10 } : {} },
      axes: [{ label: "step" }, {}],
      series: [{ label: "step" }].concat(series),
    });
    state.plot = new uPlot(options, shown, element);
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
      // A run shows its device from its first chunk on: a page opened before then catches up.
      const device = document.getElementById("run-device");
      if (device && metrics.device) device.textContent = metrics.device;
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
        set("pruned", row.pruned_at === null ? "" : "pruned at " + row.pruned_at.toLocaleString("en"));
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

  // ---- Parallel coordinates of a sweep: one axis per varying parameter and one for the
  // metric, one line per scored trial. Drawn as SVG elements (never markup from strings).
  const SVG_NS = "http://www.w3.org/2000/svg";

  function svgElement(tag, attributes, parent) {
    const element = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (parent) parent.appendChild(element);
    return element;
  }

  function shortNumber(value) {
    if (value === 0) return "0";
    const magnitude = Math.abs(value);
    if (magnitude >= 1e5 || magnitude < 1e-3) return value.toExponential(1).replace("e+", "e");
    return String(Number(value.toPrecision(3)));
  }

  // Where a value sits on an axis, as a fraction from the bottom (0) to the top (1).
  function axisFraction(axis, value) {
    if (value === null || value === undefined) return null;
    if (axis.kind === "categorical") {
      const index = axis.categories.indexOf(value);
      if (index < 0) return null;
      return axis.categories.length > 1 ? index / (axis.categories.length - 1) : 0.5;
    }
    const scale = axis.kind === "log" ? Math.log10 : (v) => v;
    const low = scale(axis.low), high = scale(axis.high);
    if (!(high > low)) return 0.5;
    return (scale(value) - low) / (high - low);
  }

  // Labelled positions on an axis: every category; decades on a log axis (and its ends);
  // five even steps on a linear one.
  function axisTicks(axis) {
    if (axis.kind === "categorical") return axis.categories.map((c) => [c, c]);
    if (!(axis.high > axis.low)) return [[axis.low, shortNumber(axis.low)]];
    if (axis.kind === "log") {
      const ticks = [[axis.low, shortNumber(axis.low)], [axis.high, shortNumber(axis.high)]];
      for (let k = Math.ceil(Math.log10(axis.low)); k <= Math.floor(Math.log10(axis.high)); k++) {
        const value = Math.pow(10, k);
        const fraction = axisFraction(axis, value);
        if (fraction > 0.08 && fraction < 0.92) ticks.push([value, shortNumber(value)]);
      }
      return ticks;
    }
    return [0, 1, 2, 3, 4].map((i) => {
      const value = axis.low + ((axis.high - axis.low) * i) / 4;
      return [value, shortNumber(value)];
    });
  }

  // A completed trial's colour: pale for the worst metric, dark blue for the best.
  function metricColour(fraction) {
    const pale = [198, 219, 239], dark = [8, 48, 107];
    const mix = pale.map((p, i) => Math.round(p + (dark[i] - p) * fraction));
    return "rgb(" + mix.join(",") + ")";
  }

  function drawParallel(figure, data) {
    const holder = figure.querySelector(".parallel-plot");
    holder.textContent = "";
    const width = Math.max(480, holder.clientWidth || 900), height = 340;
    const top = 36, bottom = height - 24, left = 70, right = width - 110;
    const plot = svgElement("svg", {
      width, height, viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": "parallel coordinates: parameters against " + data.metric,
    }, holder);
    const gap = data.axes.length > 1 ? (right - left) / (data.axes.length - 1) : 0;
    const xOf = (i) => (data.axes.length > 1 ? left + i * gap : (left + right) / 2);
    const yOf = (axis, value) => {
      const fraction = axisFraction(axis, value);
      return fraction === null ? null : bottom - fraction * (bottom - top);
    };
    const metricAxis = data.axes[data.axes.length - 1];
    const lines = svgElement("g", { class: "lines" }, plot);
    // Drawn pruned first, the best last: the best is never hidden under another line.
    const order = data.trials.slice().sort((a, b) =>
      (a.best - b.best) || (b.pruned - a.pruned) || (a.trial - b.trial));
    for (const trial of order) {
      let path = "", pen = "M";
      trial.values.forEach((value, i) => {
        const y = yOf(data.axes[i], value);
        if (y === null) { pen = "M"; return; }
        path += pen + xOf(i).toFixed(1) + " " + y.toFixed(1) + " ";
        pen = "L";
      });
      const link = svgElement("a", { href: "/runs/" + trial.run_id }, lines);
      const metric = trial.values[trial.values.length - 1];
      let fraction = axisFraction(metricAxis, metric);
      if (!metricAxis.maximize) fraction = 1 - fraction;
      const kind = trial.best ? "best" : trial.pruned ? "pruned" : "completed";
      const line = svgElement("path", {
        d: path.trim(), class: "trial-line " + kind, "data-trial": trial.trial, fill: "none",
      }, link);
      if (kind === "completed") line.setAttribute("stroke", metricColour(fraction));
      const end = yOf(metricAxis, metric);
      if (end !== null) {
        svgElement("circle", {
          cx: xOf(data.axes.length - 1), cy: end.toFixed(1), r: trial.best ? 5 : 3.5,
          class: "trial-end " + kind,
        }, link);
      }
      const title = svgElement("title", {}, link);
      title.textContent = trial.title + " → " + data.metric + " " + shortNumber(metric)
        + (trial.best ? " (best)" : "");
    }
    data.axes.forEach((axis, i) => {
      const x = xOf(i);
      const group = svgElement("g", { class: "axis" + (axis.metric ? " metric-axis" : "") }, plot);
      svgElement("line", { x1: x, x2: x, y1: top, y2: bottom }, group);
      const name = svgElement("text", { x, y: top - 14, "text-anchor": "middle", class: "axis-name" }, group);
      name.textContent = axis.name + (axis.kind === "log" ? " (log)" : "")
        + (axis.metric ? (axis.maximize ? " ↑" : " ↓") : "");
      for (const [value, text] of axisTicks(axis)) {
        const y = yOf(axis, value);
        if (y === null) continue;
        svgElement("line", { x1: x - 4, x2: x, y1: y, y2: y }, group);
        const label = svgElement("text", { x: x - 7, y: y + 4, "text-anchor": "end", class: "tick" }, group);
        label.textContent = text;
      }
    });
    figure.dataset.lines = String(data.trials.length);
    figure.dataset.pruned = String(data.trials.filter((t) => t.pruned).length);
    const unscored = figure.querySelector(".unscored");
    if (unscored) {
      unscored.textContent = data.unscored
        ? " · " + data.unscored + " trial(s) without a metric yet are not drawn" : "";
    }
  }

  async function parallelChart(figure) {
    async function update() {
      const data = await getJson(figure.dataset.src);
      if (!data.trials.length) {
        figure.querySelector(".parallel-plot").textContent = "no trial has a metric yet";
        figure.dataset.lines = "0";
      } else {
        drawParallel(figure, data);
      }
      if (data.status === "running") setTimeout(() => update().catch(console.warn), pollMs);
    }
    await update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const kinds = { run: runChart, compare: compareChart, sweep: sweepChart };
    for (const element of document.querySelectorAll(".chart[data-kind]")) {
      kinds[element.dataset.kind](element).catch((error) => note(element, String(error)));
    }
    const runs = document.getElementById("runs");
    if (runs) liveRuns(runs);
    const parallel = document.getElementById("parallel");
    if (parallel) {
      parallelChart(parallel).catch((error) => {
        parallel.querySelector(".parallel-plot").textContent = String(error);
      });
    }
  });
})();
