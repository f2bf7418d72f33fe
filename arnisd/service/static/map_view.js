// arnisd status page: the running job's map, filling in as its tiles commit.
// Leaflet (shipped in static/leaflet) shows the job's map pyramid (jobs/ID/map/Z/X/Y.png, one
// pixel per block at the deepest zoom, described by jobs/ID/map/tiles.json). Over it lies one
// SVG in block coordinates: a grey mask over every tile not committed yet (always on) and the
// tile grid coloured by state and worker (switchable). Block (x, z) is drawn at
// lat = -(z - origin_z) / 2^max_zoom, lng = (x - origin_x) / 2^max_zoom, so Leaflet's zoom
// max_zoom is one screen pixel per block. The address keeps the view (#view=Z/X/Z: log2 of
// screen pixels per block, then the block at the centre), so a link shows the same place.
"use strict";
var ArnisdMap = (function () {
  var SVG = "http://www.w3.org/2000/svg";
  var TILE_PX = 256;
  var DEEPER_ZOOMS = 3;          // zoom past one pixel per block, to 8 pixels per block
  var RETRY_AFTER_MS = [2000, 6000];   // a map tile fetched as its job tile commits may lag
  var DESCRIPTION_EVERY = 2;     // polls between tries of tiles.json while it is missing
  var DEGREE_UNITS = 100000;     // tiles known only by lat/lon: about a metre per unit
  var STATE_ALIASES = { committed: "done", completed: "done", done: "done",
                        leased: "leased", in_progress: "leased", running: "leased",
                        failed: "failed", pending: "pending", queued: "pending" };

  function stateOf(raw) { return STATE_ALIASES[String(raw || "pending").toLowerCase()] || "pending"; }

  // One colour per worker id, the same on every page load (a hash of the id picks the hue).
  function workerColour(workerId) {
    var hash = 0, text = String(workerId);
    for (var i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
    return "hsl(" + (hash * 137.508 % 360).toFixed(0) + ", 70%, 42%)";
  }

  // A tile's rectangle in blocks (north up, z grows south); by its bbox when blocks are unknown.
  function tileBox(tile) {
    var b = tile.owned_blocks;
    if (b && b.length === 4) return { x: b[0], y: b[1], w: b[2] - b[0], h: b[3] - b[1] };
    if (b && b.x0 !== undefined) return { x: b.x0, y: b.z0, w: b.x1 - b.x0, h: b.z1 - b.z0 };
    var g = tile.bbox;
    if (g) return { x: g.min_lng * DEGREE_UNITS, y: -g.max_lat * DEGREE_UNITS,
                    w: (g.max_lng - g.min_lng) * DEGREE_UNITS, h: (g.max_lat - g.min_lat) * DEGREE_UNITS };
    return null;
  }

  function overlaps(a, x0, y0, x1, y1) {
    return a.x < x1 && a.x + a.w > x0 && a.y < y1 && a.y + a.h > y0;
  }

  function MapView(container, svg, toggle) {
    this.container = container;
    this.svg = svg;
    this.toggle = toggle;
    this.jobId = null;
    this.layoutKey = null;
    this.boxes = {};            // tile id -> {x, y, w, h} in blocks
    this.rects = {};            // tile id -> [mask rect, overlay rect]
    this.extent = null;         // the job's tiles' union {x, y, w, h}
    this.description = null;    // tiles.json of the job's map, once it is there
    this.pollsSinceTry = DESCRIPTION_EVERY;
    this.geometry = null;       // {ox, oz, maxZoom}
    this.committed = [];        // boxes of committed tiles
    this.committedKey = "";
    this.mapTiles = {};         // "z/x/y" -> {el, coords, version, retries: [ms]}
    this.map = null; this.layer = null; this.overlay = null; this.outside = null;
    this.fitted = false;
    this.maskGroup = document.createElementNS(SVG, "g");
    this.maskGroup.setAttribute("id", "map-mask");
    this.gridGroup = document.createElementNS(SVG, "g");
    this.gridGroup.setAttribute("id", "tile-overlay");
    svg.appendChild(this.maskGroup);
    svg.appendChild(this.gridGroup);
    var view = this;
    if (/(^|[?&])overlay=off(&|$)/.test(window.location.search)) toggle.checked = false;
    toggle.addEventListener("change", function () { view.showOverlay(); });
    this.showOverlay();
    if (window.L) this.createMap();
  }

  MapView.prototype.showOverlay = function () {
    this.gridGroup.style.display = this.toggle.checked ? "" : "none";
    this.container.setAttribute("data-overlay", this.toggle.checked ? "on" : "off");
  };

  MapView.prototype.createMap = function () {
    var view = this;
    this.map = L.map(this.container, { crs: L.CRS.Simple, zoomSnap: 0.25, zoomDelta: 0.5,
                                       minZoom: -8, maxZoom: 12, attributionControl: false,
                                       fadeAnimation: false });
    this.map.createPane("outside").style.zIndex = 350;   // above the map, under the grid
    this.map.on("zoomend moveend resize", function () { view.describeView(); });
  };

  MapView.prototype.toLatLng = function (x, z) {
    var g = this.geometry, scale = Math.pow(2, g.maxZoom);
    return L.latLng(-(z - g.oz) / scale, (x - g.ox) / scale);
  };

  MapView.prototype.boundsOf = function (box) {
    return L.latLngBounds(this.toLatLng(box.x, box.y + box.h), this.toLatLng(box.x + box.w, box.y));
  };

  // What a test (or a person in the inspector) needs to relate the screen to blocks.
  MapView.prototype.describeView = function () {
    if (!this.map || !this.geometry || !this.extent) return;
    var bounds = this.boundsOf(this.extent), box = this.container.getBoundingClientRect();
    var nw = this.map.latLngToContainerPoint(bounds.getNorthWest());
    var se = this.map.latLngToContainerPoint(bounds.getSouthEast());
    var left = box.left + this.container.clientLeft, top = box.top + this.container.clientTop;
    this.container.setAttribute("data-world-rect", [left + nw.x, top + nw.y,
      se.x - nw.x, se.y - nw.y].map(function (v) { return v.toFixed(2); }).join(" "));
    this.container.setAttribute("data-world-blocks", [this.extent.x, this.extent.y,
      this.extent.w, this.extent.h].join(" "));
    this.container.setAttribute("data-zoom", this.map.getZoom());
    this.container.classList.toggle("deep-zoom", this.map.getZoom() >= this.geometry.maxZoom);
    // the view in the address (#view=log2 pixels per block/x/z): a link shows the same place
    var centre = this.map.getCenter(), scale = Math.pow(2, this.geometry.maxZoom);
    var view = "#view=" + (this.map.getZoom() - this.geometry.maxZoom) + "/" +
      Math.round(centre.lng * scale + this.geometry.ox) + "/" + Math.round(-centre.lat * scale + this.geometry.oz);
    if (this.fitted && window.location.hash !== view) history.replaceState(null, "", view);
  };

  MapView.prototype.update = function (doc) {
    var tiles = doc.tiles || [];
    if ((doc.job_id || null) !== this.jobId) this.startJob(doc.job_id || null);
    var key = tiles.map(function (t) { return t.tile; }).join(",");
    if (key !== this.layoutKey) { this.layoutKey = key; this.rebuildGrid(tiles); }
    this.paintTiles(tiles, doc);
    this.fetchDescription();
    this.refreshMapTiles();
    this.describeView();       // the page around the map may have moved it
  };

  MapView.prototype.startJob = function (jobId) {
    this.jobId = jobId;
    this.description = null;
    this.pollsSinceTry = DESCRIPTION_EVERY;
    this.geometry = null;
    this.committedKey = "";
    this.fitted = false;
    this.layoutKey = null;
    if (this.layer) { this.map.removeLayer(this.layer); this.layer = null; }
    this.mapTiles = {};
  };

  MapView.prototype.fetchDescription = function () {
    if (this.description || !this.jobId || !this.map) return;
    if (++this.pollsSinceTry < DESCRIPTION_EVERY) return;
    this.pollsSinceTry = 0;
    var view = this, jobId = this.jobId;
    fetch("jobs/" + encodeURIComponent(jobId) + "/map/tiles.json", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (description) {
        if (!description || view.jobId !== jobId || view.description) return;
        view.description = description;
        view.placeOnMap();
      }).catch(function () { /* tried again a few polls later */ });
  };

  MapView.prototype.rebuildGrid = function (tiles) {
    var view = this;
    [this.maskGroup, this.gridGroup].forEach(function (g) { while (g.firstChild) g.removeChild(g.firstChild); });
    this.boxes = {}; this.rects = {};
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    tiles.forEach(function (tile) {
      var box = tileBox(tile);
      if (!box) return;
      view.boxes[tile.tile] = box;
      minX = Math.min(minX, box.x); minY = Math.min(minY, box.y);
      maxX = Math.max(maxX, box.x + box.w); maxY = Math.max(maxY, box.y + box.h);
      var pair = ["mask", "tile"].map(function (cls) {
        var rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("class", cls);
        rect.setAttribute("x", box.x); rect.setAttribute("y", box.y);
        rect.setAttribute("width", box.w); rect.setAttribute("height", box.h);
        rect.setAttribute("data-tile", tile.tile);
        return rect;
      });
      pair[1].appendChild(document.createElementNS(SVG, "title"));
      view.maskGroup.appendChild(pair[0]);
      view.gridGroup.appendChild(pair[1]);
      view.rects[tile.tile] = pair;
    });
    if (!isFinite(minX)) { this.extent = null; this.svg.setAttribute("viewBox", "0 0 100 60"); return; }
    this.extent = { x: minX, y: minY, w: maxX - minX, h: maxY - minY };
    this.svg.setAttribute("viewBox", minX + " " + minY + " " + this.extent.w + " " + this.extent.h);
    var outline = document.createElementNS(SVG, "rect");
    outline.setAttribute("class", "outline");
    outline.setAttribute("x", minX); outline.setAttribute("y", minY);
    outline.setAttribute("width", this.extent.w); outline.setAttribute("height", this.extent.h);
    this.gridGroup.appendChild(outline);
    this.placeOnMap();
  };

  // Tie the grid and the map pyramid to the map: geometry from tiles.json when the job has a
  // map, else from the tiles' extent (the grid alone over grey).
  MapView.prototype.placeOnMap = function () {
    if (!this.map || !this.extent) return;
    var d = this.description, e = this.extent, before = this.geometry;
    this.geometry = d ? { ox: d.origin_block_x, oz: d.origin_block_z, maxZoom: d.max_zoom }
                      : { ox: e.x, oz: e.y, maxZoom: Math.max(0, Math.ceil(Math.log2(Math.max(e.w, e.h, TILE_PX) / TILE_PX))) };
    if (before && (before.ox !== this.geometry.ox || before.oz !== this.geometry.oz ||
                   before.maxZoom !== this.geometry.maxZoom)) this.fitted = false;   // moved
    var bounds = this.boundsOf(e);
    if (this.overlay) this.overlay.setBounds(bounds);
    else this.overlay = L.svgOverlay(this.svg, bounds, { interactive: false }).addTo(this.map);
    var far = Math.max(e.w, e.h) * 4;
    var ring = function (box) {
      var b = this.boundsOf(box);
      return [b.getNorthWest(), b.getNorthEast(), b.getSouthEast(), b.getSouthWest()];
    }.bind(this);
    var rings = [ring({ x: e.x - far, y: e.y - far, w: e.w + 2 * far, h: e.h + 2 * far }), ring(e)];
    if (this.outside) this.outside.setLatLngs(rings);
    else this.outside = L.polygon(rings, { pane: "outside", stroke: false, fillColor: "#f3f3f3",
                                           fillOpacity: 1, interactive: false }).addTo(this.map);
    this.map.setMaxZoom(this.geometry.maxZoom + DEEPER_ZOOMS);
    if (!this.fitted) {
      var asked = /^#view=(-?\d+(?:\.\d+)?)\/(-?\d+)\/(-?\d+)$/.exec(window.location.hash);
      if (asked) this.map.setView(this.toLatLng(+asked[2], +asked[3]), this.geometry.maxZoom + (+asked[1]),
                                  { animate: false });
      else this.map.fitBounds(bounds, { animate: false });
      this.fitted = true;
    }
    this.map.setMinZoom(Math.min(0, this.map.getBoundsZoom(bounds) - 1));
    if (d && !this.layer) this.addMapLayer(d);
    this.describeView();
  };

  MapView.prototype.addMapLayer = function (d) {
    var view = this, scale = Math.pow(2, d.max_zoom);
    var pyramid = L.latLngBounds(L.latLng(-d.height_blocks / scale, 0), L.latLng(0, d.width_blocks / scale));
    var Layer = L.TileLayer.extend({ getTileUrl: function (coords) { return view.tileUrl(coords); } });
    this.layer = new Layer("", { tileSize: TILE_PX, noWrap: true, bounds: pyramid,
                                 minNativeZoom: 0, maxNativeZoom: d.max_zoom, minZoom: -8,
                                 maxZoom: d.max_zoom + DEEPER_ZOOMS, className: "map-tiles" });
    this.layer.on("tileloadstart", function (e) {
      var key = e.coords.z + "/" + e.coords.x + "/" + e.coords.y;
      view.mapTiles[key] = { el: e.tile, coords: e.coords, version: view.versionOf(e.coords), retries: [] };
    });
    this.layer.on("tileunload", function (e) {
      delete view.mapTiles[e.coords.z + "/" + e.coords.x + "/" + e.coords.y];
    });
    this.layer.on("load", function () { view.container.setAttribute("data-map-tiles", "loaded"); });
    this.layer.addTo(this.map);
    this.container.setAttribute("data-map", "pyramid");
  };

  // A map tile's version: how many committed job tiles it shows, so a tile is fetched again
  // exactly when something new was drawn on it.
  MapView.prototype.versionOf = function (coords) {
    var d = this.description, span = TILE_PX * Math.pow(2, d.max_zoom - coords.z);
    var x0 = d.origin_block_x + coords.x * span, y0 = d.origin_block_z + coords.y * span;
    var count = 0;
    this.committed.forEach(function (box) { if (overlaps(box, x0, y0, x0 + span, y0 + span)) count += 1; });
    return count;
  };

  MapView.prototype.tileUrl = function (coords, retry) {
    return "jobs/" + encodeURIComponent(this.jobId) + "/map/" + coords.z + "/" + coords.x + "/" +
      coords.y + ".png?v=" + this.versionOf(coords) + (retry ? "&r=" + retry : "");
  };

  MapView.prototype.refreshMapTiles = function () {
    if (!this.layer) return;
    var now = Date.now(), view = this;
    Object.keys(this.mapTiles).forEach(function (key) {
      var entry = view.mapTiles[key], version = view.versionOf(entry.coords);
      if (version !== entry.version) {
        entry.version = version;
        entry.retries = RETRY_AFTER_MS.map(function (ms) { return now + ms; });
        entry.el.src = view.tileUrl(entry.coords);
      } else if (entry.retries.length && entry.retries[0] <= now) {
        entry.retries.shift();
        entry.el.src = view.tileUrl(entry.coords, RETRY_AFTER_MS.length - entry.retries.length);
      }
    });
  };

  MapView.prototype.paintTiles = function (tiles, doc) {
    var view = this, holders = {};
    (doc.workers_detail || []).forEach(function (w) {
      (Array.isArray(w.leases) ? w.leases : []).forEach(function (t) { holders[t] = w.worker_id; });
    });
    var committed = [], committedIds = [];
    tiles.forEach(function (tile) {
      var state = stateOf(tile.state), pair = view.rects[tile.tile];
      if (state === "done" && view.boxes[tile.tile]) {
        committed.push(view.boxes[tile.tile]); committedIds.push(tile.tile);
      }
      if (!pair) return;
      var worker = tile.worker_id || holders[tile.tile] || null;
      pair.forEach(function (rect) {
        if (rect.getAttribute("data-state") !== state) rect.setAttribute("data-state", state);
      });
      var rect = pair[1];
      if (worker) {
        rect.setAttribute("data-worker", worker);
        rect.style.setProperty("--worker", workerColour(worker));
      } else if (rect.hasAttribute("data-worker")) {
        rect.removeAttribute("data-worker");
        rect.style.removeProperty("--worker");
      }
      var title = tile.tile + ": " + state + (worker ? " on " + worker : "") +
        (tile.attempt ? " (attempt " + tile.attempt + ")" : "") + (tile.error ? " — " + tile.error : "");
      if (rect.firstChild.textContent !== title) rect.firstChild.textContent = title;   // big jobs: few writes
    });
    var key = committedIds.join(",");
    if (key !== this.committedKey) { this.committedKey = key; this.committed = committed; }
  };

  return { MapView: MapView, stateOf: stateOf, workerColour: workerColour };
})();
