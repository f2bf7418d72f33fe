// arnisd live status page: polls coordinator/status (and, less often, jobs) and draws each frame
// from one status document: progress, the job's map with its tiles (map_view.js), the
// chunks/s plot (progress_plot.js), the workers and the jobs.
"use strict";
(function () {
  var POLL_MS = 1000, JOBS_EVERY = 5;
  var polls = 0;
  var jobs = [];           // the last jobs list fetched
  var stateOf = ArnisdMap.stateOf, workerColour = ArnisdMap.workerColour;

  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = value; }
  function pick(doc, names) {
    for (var i = 0; i < names.length; i++) {
      if (doc[names[i]] !== undefined && doc[names[i]] !== null) return doc[names[i]];
    }
    return null;
  }
  function duration(seconds) {
    if (seconds === null || !isFinite(seconds)) return "–";
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }

  var mapView = new ArnisdMap.MapView($("map"), $("grid"), $("overlay-toggle"));
  var plot = new ArnisdPlot.Plot($("progress-plot"), workerColour, $("plot-caption"));

  function drawTileCounts(doc) {
    var counts = { pending: 0, leased: 0, done: 0, failed: 0 }, errors = [];
    (doc.tiles || []).forEach(function (tile) {
      var state = stateOf(tile.state);
      counts[state] += 1;
      if (state === "failed" && tile.error) errors.push(tile.tile + ": " + tile.error);
    });
    ["pending", "leased", "done", "failed"].forEach(function (s) { text("count-" + s, counts[s]); });
    var list = $("errors");
    list.textContent = "";
    errors.slice(0, 20).forEach(function (e) {
      var li = document.createElement("li"); li.textContent = e; list.appendChild(li);
    });
    var bbox = doc.bbox;
    if (bbox && bbox.min_lat !== undefined) {
      text("corner-nw", bbox.max_lat + ", " + bbox.min_lng);
      text("corner-se", bbox.min_lat + ", " + bbox.max_lng);
    }
  }

  function drawProgress(doc) {
    var total = doc.total_chunks || 0, done = doc.completed || 0;
    var leased = doc.in_progress || 0, failed = doc.failed || 0;
    function pct(n) { return total ? (100 * n / total) : 0; }
    $("bar-done").style.width = pct(done) + "%";
    $("bar-leased").style.width = pct(leased) + "%";
    $("bar-failed").style.width = pct(failed) + "%";
    text("progress-percent", total ? pct(done).toFixed(1) + "%" : "–");
    text("tiles-summary", done + " / " + total);
    var rate = pick(doc, ["throughput_tiles_per_s", "tiles_per_s"]);
    text("throughput", rate === null ? "–" : Number(rate).toFixed(2));
    var eta = pick(doc, ["eta_s"]);
    if (eta === null && rate > 0) eta = (total - done - failed) / rate;
    text("eta", doc.finished || (total && done + failed === total) ? "done" : duration(eta));
    text("elapsed", duration(pick(doc, ["elapsed_s"])));
    var chunks = pick(doc, ["chunks_merged"]);
    text("chunks", chunks === null ? "–" : chunks);
    var title = doc.job_id ? "job " + doc.job_id : "no job";
    if (doc.job_state) title += " · " + doc.job_state;
    if (doc.output) title += " · " + doc.output;
    text("job-title", title);
  }

  function drawWorkers(doc) {
    var rows = pick(doc, ["workers_detail", "worker_rows"]) || [];
    var body = $("workers").tBodies[0];
    body.textContent = "";
    rows.forEach(function (w) {
      var slots = w.slots || 0;
      var busy = Array.isArray(w.leases) ? w.leases.length : (w.leases || w.busy || 0);
      var tr = document.createElement("tr");
      tr.setAttribute("data-worker", w.worker_id);
      function cell(value, cls) {
        var td = document.createElement("td"); if (cls) td.className = cls;
        td.textContent = value; tr.appendChild(td); return td;
      }
      var name = cell(w.worker_id);
      var swatch = document.createElement("i");
      swatch.className = "swatch"; swatch.style.background = workerColour(w.worker_id);
      name.insertBefore(swatch, name.firstChild);
      cell(slots, "num");
      var load = cell("", "load");
      load.title = busy + " of " + slots + " slots busy";
      var bar = document.createElement("div"); bar.className = "bar";
      var fill = document.createElement("span"); fill.className = "leased";
      fill.style.width = (slots ? 100 * Math.min(busy, slots) / slots : 0) + "%";
      bar.appendChild(fill); load.appendChild(bar);
      cell(w.tiles_done !== undefined ? w.tiles_done : "–", "num");
      cell(w.last_seen_s_ago !== undefined ? Number(w.last_seen_s_ago).toFixed(1) + " s" : "–", "num");
      body.appendChild(tr);
    });
    var workers = doc.workers || {};
    text("workers-summary", "(" + (workers.active || 0) + " active, " + (workers.idle || 0) + " idle)");
  }

  // The current job's row takes its state and counts from the same status document as the
  // progress card (the jobs list is fetched less often and would lag behind it).
  function drawJobs(jobs, doc) {
    var body = $("jobs").tBodies[0];
    body.textContent = "";
    jobs.slice(-20).reverse().forEach(function (listed) {
      var job = listed;
      if (doc.job_id && listed.job_id === doc.job_id) {
        job = Object.assign({}, listed, { state: doc.job_state || listed.state,
                                          completed: doc.completed, total_chunks: doc.total_chunks });
      }
      var tr = document.createElement("tr");
      tr.setAttribute("data-job", job.job_id);
      [job.job_id, job.state, job.output || "", (job.completed || 0) + " / " + (job.total_chunks || 0)]
        .forEach(function (value, i) {
          var td = document.createElement("td"); if (i === 3) td.className = "num";
          td.textContent = value === undefined || value === null ? "" : value; tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  function getJSON(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }

  function poll() {
    polls += 1;
    var work = [getJSON("coordinator/status?page=1")];   // page=1: someone watches the map
    if (polls % JOBS_EVERY === 1) {
      work.push(getJSON("jobs").then(function (doc) { jobs = doc.jobs || []; }));
    }
    Promise.all(work).then(function (answers) {
      var doc = answers[0];      // one status document draws the whole frame
      drawProgress(doc); drawTileCounts(doc); mapView.update(doc); plot.update(doc);
      drawWorkers(doc); drawJobs(jobs, doc);
      $("banner").classList.remove("show");
      text("updated", "updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-loaded", "true");
    }).catch(function () {
      $("banner").classList.add("show");
    }).then(function () { setTimeout(poll, POLL_MS); });
  }

  poll();
})();
