/* Report charts: every <canvas data-chart="ID"> is drawn from the JSON in <script id="ID"
   type="application/json"> (written by Django's json_script). No inline scripts, so a strict CSP holds.

   The JSON: {type: "bar"|"line", labels: [...], datasets: [{label, data, type?, axis?, dashed?}],
              axes: {y: {title, unit}, y1?: {title, unit}}}
   unit "%" fixes the axis to 0–100; "h" labels hours; null values leave a gap. */
(function () {
  "use strict";

  var COLORS = ["#2456d6", "#e07b00", "#0f9d58", "#9c27b0", "#c62828", "#00838f"];

  function format(value, unit) {
    if (value === null || value === undefined) return "—";
    var number = Number(value).toLocaleString(undefined, { maximumFractionDigits: 1 });
    if (unit === "%") return number + "%";
    if (unit === "h") return number + " h";
    return number;
  }

  function axisUnit(spec, dataset) {
    var axis = spec.axes[dataset.axis || "y"];
    return axis ? axis.unit : "";
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof window.Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (d, i) {
      var color = COLORS[i % COLORS.length];
      var type = d.type || spec.type;
      return {
        label: d.label,
        data: d.data,
        type: type,
        yAxisID: d.axis || "y",
        backgroundColor: type === "line" ? color : color + "cc",
        borderColor: color,
        borderWidth: type === "line" ? 2.5 : 0,
        pointRadius: type === "line" ? 3.5 : 0,
        spanGaps: false,
        borderDash: d.dashed ? [6, 4] : [],
        clip: type === "line" ? false : undefined, // a point at 100% is drawn whole, not cut at the edge
        order: type === "line" ? 0 : 1, // lines in front of bars
      };
    });
    var scales = { x: { grid: { display: false }, offset: true } };
    Object.keys(spec.axes).forEach(function (id) {
      var axis = spec.axes[id];
      scales[id] = {
        position: id === "y" ? "left" : "right",
        beginAtZero: true,
        max: axis.unit === "%" ? 100 : undefined,
        title: { display: true, text: axis.title },
        grid: { drawOnChartArea: id === "y" },
        ticks: {
          precision: axis.unit ? undefined : 0,
          callback: function (value) { return format(value, axis.unit); },
        },
      };
    });
    new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        layout: { padding: { top: 8 } },
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return ctx.dataset.label + ": " + format(ctx.parsed.y, axisUnit(spec, spec.datasets[ctx.datasetIndex]));
              },
            },
          },
        },
        scales: scales,
      },
    });
    canvas.dataset.drawn = "true";
  }

  function drawAll() {
    if (window.Chart) {
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.color = "#5b6475";
    }
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
