// arnisd status page: chunks per second over the job's time, one line per worker plus the total.
// Drawn from the status document's progress_history: {bucket_s, elapsed_s, chunks: {worker:
// [chunks committed in each bucket of bucket_s seconds since the job started]}}. A tile's chunks
// count when it commits, so each point averages the buckets of the last WINDOW_S seconds.
"use strict";
var ArnisdPlot = (function () {
  var SVG = "http://www.w3.org/2000/svg";
  var HEIGHT = 170, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 22;
  var WINDOW_S = 10;

  function element(name, attrs, parent) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(el);
    return el;
  }

  function seconds(s) {
    s = Math.round(s);
    return s >= 3600 ? Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m"
         : s >= 60 ? Math.floor(s / 60) + "m" + (s % 60 ? s % 60 + "s" : "") : s + "s";
  }

  // Rates (chunks/s) at the end of each bucket, averaged over the window before it.
  function rates(counts, bucketS, elapsedS, windowBuckets) {
    var out = [];
    for (var i = 0; i < counts.length; i++) {
      var first = Math.max(0, i - windowBuckets + 1), sum = 0;
      for (var j = first; j <= i; j++) sum += counts[j] || 0;
      var span = Math.min((i + 1) * bucketS, elapsedS) - first * bucketS;
      out.push({ t: Math.min((i + 1) * bucketS, elapsedS), rate: span > 0 ? sum / span : 0 });
    }
    return out;
  }

  function Plot(svg, colourOf, caption) {
    this.svg = svg;
    this.colourOf = colourOf;
    this.caption = caption;
  }

  Plot.prototype.update = function (doc) {
    var history = doc.progress_history, svg = this.svg, colourOf = this.colourOf;
    var width = Math.max(300, Math.round(svg.getBoundingClientRect().width) || 600);
    svg.setAttribute("viewBox", "0 0 " + width + " " + HEIGHT);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!history || !history.chunks || !history.bucket_s) {
      this.caption.textContent = "no history yet";
      return;
    }
    var bucketS = history.bucket_s, elapsedS = Math.max(history.elapsed_s || 0, 1e-3);
    var windowBuckets = Math.max(1, Math.round(WINDOW_S / bucketS));
    var workers = Object.keys(history.chunks).sort();
    var length = 0;
    workers.forEach(function (w) { length = Math.max(length, history.chunks[w].length); });
    var total = [];
    for (var i = 0; i < length; i++) {
      total.push(workers.reduce(function (s, w) { return s + (history.chunks[w][i] || 0); }, 0));
    }
    var series = workers.map(function (w) {
      return { id: w, points: rates(history.chunks[w], bucketS, elapsedS, windowBuckets) };
    });
    var totalPoints = rates(total, bucketS, elapsedS, windowBuckets);
    var top = 1;
    totalPoints.forEach(function (p) { top = Math.max(top, p.rate); });
    top = niceCeiling(top);
    var x = function (t) { return LEFT + (width - LEFT - RIGHT) * t / elapsedS; };
    var y = function (r) { return TOP + (HEIGHT - TOP - BOTTOM) * (1 - r / top); };
    var axes = element("g", { "class": "axes" }, svg);
    element("line", { x1: LEFT, y1: y(0), x2: width - RIGHT, y2: y(0) }, axes);
    element("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: y(0) }, axes);
    element("line", { "class": "gridline", x1: LEFT, y1: y(top / 2), x2: width - RIGHT, y2: y(top / 2) }, axes);
    [[top, y(top) + 4], [top / 2, y(top / 2) + 4], [0, y(0)]].forEach(function (label) {
      element("text", { x: LEFT - 4, y: label[1], "text-anchor": "end" }, axes).textContent =
        Math.round(label[0]).toLocaleString();
    });
    element("text", { x: LEFT, y: HEIGHT - 6, "text-anchor": "start" }, axes).textContent = "0";
    element("text", { x: width - RIGHT, y: HEIGHT - 6, "text-anchor": "end", id: "plot-elapsed" },
            axes).textContent = seconds(elapsedS);
    function line(points, attrs) {
      attrs.points = [LEFT + "," + y(0)].concat(points.map(function (p) {
        return x(p.t).toFixed(1) + "," + y(p.rate).toFixed(1);
      })).join(" ");
      return element("polyline", attrs, svg);
    }
    series.forEach(function (s) {
      var el = line(s.points, { "class": "worker-rate", "data-worker": s.id, stroke: colourOf(s.id) });
      element("title", {}, el).textContent = s.id + ": chunks/s";
    });
    line(totalPoints, { "class": "total-rate", "data-worker": "" });
    var last = totalPoints.length ? totalPoints[totalPoints.length - 1].rate : 0;
    this.caption.textContent = "now " + Math.round(last).toLocaleString() + " chunks/s over " +
      workers.length + " worker" + (workers.length === 1 ? "" : "s") + " (" + seconds(windowBuckets * bucketS) + " average)";
  };

  function niceCeiling(value) {
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * magnitude >= value) return steps[i] * magnitude;
    return 10 * magnitude;
  }

  return { Plot: Plot, rates: rates };
})();
