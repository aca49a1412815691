/*! tinct browser beacon (real-user monitoring), served at GET /api/tinct/rum.js.
 *
 *   <script src="http://tinct:3000/api/tinct/rum.js" data-app="shop" data-user="42"></script>
 *
 * Reports to POST <same place>/api/tinct/rum (data-endpoint overrides): the
 * navigation timings once the page has loaded (PerformanceNavigationTiming,
 * W3C Navigation Timing Level 2), uncaught errors, resources that failed to
 * load and unhandled promise rejections. data-user (or
 * window.tinctRum.setUser(id)) names the user; it is kept with the errors
 * only. Paths and URLs are sent without query or fragment.
 *
 * Bodies are text/plain JSON, so no CORS preflight is needed, sent with
 * navigator.sendBeacon and else fetch(keepalive). What one page sends is
 * capped: 100 events, 5 of one error, 50 per report and 60000 bytes per body
 * (below the 64 KiB the API and the browsers' keepalive quota allow).
 * No dependencies; errors inside the beacon are swallowed.
 */
(function () {
  "use strict";
  if (window.tinctRum) return;
  var script = document.currentScript;
  if (!script || !script.src) return;

  var MAX_EVENTS_PER_PAGE = 100;
  var MAX_SAME_ERROR = 5;
  var MAX_BATCH = 50;
  var MAX_BODY_BYTES = 60000;
  var FLUSH_DELAY_MS = 1000;
  var MAX_TEXT = { message: 1000, source: 1000, stack: 4000 };

  var endpoint = script.getAttribute("data-endpoint") ||
    script.src.replace(/[?#].*$/, "").replace(/\/rum\.js$/, "/rum");
  var app = script.getAttribute("data-app") || location.hostname || "unknown";
  var user = script.getAttribute("data-user") || "";
  var queue = [];
  var sent = 0;
  var seen = {};
  var timer = null;

  function path(url) {
    return String(url || "").replace(/[?#].*$/, "");
  }

  function text(value, limit) {
    var s = value == null ? "" : String(value);
    return s.length > limit ? s.slice(0, limit) : s;
  }

  function bytes(s) {
    return window.TextEncoder ? new TextEncoder().encode(s).length : s.length * 3;
  }

  function enqueue(event) {
    if (sent + queue.length >= MAX_EVENTS_PER_PAGE) return false;
    event.page = path(location.pathname) || "/";
    queue.push(event);
    return true;
  }

  function error(kind, message, source, line, col, stack) {
    var key = [kind, message, source, line, col].join("\u0000");
    seen[key] = (seen[key] || 0) + 1;
    if (seen[key] > MAX_SAME_ERROR) return;
    var event = {
      type: "error",
      kind: kind,
      message: text(message, MAX_TEXT.message),
      source: text(path(source), MAX_TEXT.source),
      stack: text(stack, MAX_TEXT.stack)
    };
    if (line > 0) event.line = Math.floor(line);
    if (col > 0) event.col = Math.floor(col);
    if (enqueue(event)) schedule();
  }

  function schedule() {
    if (timer === null) timer = setTimeout(flush, FLUSH_DELAY_MS);
  }

  function post(body) {
    try {
      var blob = new Blob([body], { type: "text/plain;charset=UTF-8" });
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, blob)) return;
    } catch (e) { /* fall back to fetch */ }
    if (window.fetch) {
      window.fetch(endpoint, {
        method: "POST", body: body, keepalive: true, mode: "cors", credentials: "omit",
        headers: { "Content-Type": "text/plain;charset=UTF-8" }
      }).catch(function () {});
    }
  }

  // One report per page: events in order, at most MAX_BATCH and MAX_BODY_BYTES each.
  function flush() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    while (queue.length) {
      var page = queue[0].page;
      var head = { app: app, page: page, events: [] };
      if (user) head.user = user;
      var size = bytes(JSON.stringify(head));
      var batch = [];
      while (queue.length && batch.length < MAX_BATCH && queue[0].page === page) {
        var event = queue[0];
        var copy = {};
        for (var k in event) if (k !== "page") copy[k] = event[k];
        var n = bytes(JSON.stringify(copy)) + 1;
        if (batch.length && size + n > MAX_BODY_BYTES) break;
        queue.shift();
        batch.push(copy);
        size += n;
      }
      sent += batch.length;
      head.events = batch;
      post(JSON.stringify(head));
    }
  }

  function ms(value) {
    return value > 0 && value < 3600000 ? Math.round(value * 1000) / 1000 : undefined;
  }

  function navigation() {
    var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    if (!nav) return;
    var event = {
      type: "navigation",
      dns: ms(nav.domainLookupEnd - nav.domainLookupStart),
      connect: ms(nav.connectEnd - nav.connectStart),
      tls: nav.secureConnectionStart > 0 ? ms(nav.connectEnd - nav.secureConnectionStart) : undefined,
      ttfb: ms(nav.responseStart - nav.startTime),
      dom_content_loaded: ms(nav.domContentLoadedEventEnd - nav.startTime),
      load: ms(nav.loadEventEnd - nav.startTime),
      transfer_size: nav.transferSize > 0 ? Math.floor(nav.transferSize) : undefined
    };
    for (var k in event) if (event[k] === undefined) delete event[k];
    if (enqueue(event)) flush();
  }

  // Capture phase: resource errors do not bubble, only script errors reach window.
  window.addEventListener("error", function (e) {
    try {
      var el = e.target;
      if (el && el !== window && el.tagName) {
        var tag = el.tagName.toLowerCase();
        error("resource", tag + " failed to load", el.currentSrc || el.src || el.href, 0, 0, "");
      } else {
        var err = e.error;
        error("js", e.message || (err && err.message) || "error", e.filename,
          e.lineno, e.colno, err && err.stack);
      }
    } catch (ignored) { /* never break the page */ }
  }, true);

  window.addEventListener("unhandledrejection", function (e) {
    try {
      var r = e.reason;
      var message = r && r.message ? r.message : String(r);
      error("promise", message, "", 0, 0, r && r.stack);
    } catch (ignored) { /* never break the page */ }
  });

  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });

  if (document.readyState === "complete") {
    setTimeout(navigation, 0);
  } else {
    window.addEventListener("load", function () { setTimeout(navigation, 0); });
  }

  window.tinctRum = {
    setUser: function (id) { user = id == null ? "" : String(id); },
    flush: flush
  };
})();
