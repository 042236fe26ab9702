// Gantry dashboard script: progressive enhancement only (every page works
// without it). It shows rollout slider values and keeps the page live:
// on each change from /ui/events it re-fetches this page's content as a
// fragment and swaps the sections marked data-live, except one being edited.
"use strict";
(function () {
  function wireSliders(root) {
    root.querySelectorAll("input[type=range][data-output]").forEach(function (r) {
      var out = document.getElementById(r.dataset.output);
      if (!out) return;
      var show = function () { out.textContent = r.value + " %"; };
      r.addEventListener("input", show);
      show();
    });
  }

  function signIn() {
    location.href = "/ui/sign-in?next=" + encodeURIComponent(location.pathname + location.search);
  }

  // A section is busy while focus is inside it or a form in it has unsaved input.
  function busy(el) {
    var a = document.activeElement;
    if (a && a !== document.body && el.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) return true;
    return !!el.querySelector("form[data-dirty]");
  }

  // Keyboard users keep their place when the section under focus is swapped:
  // find the same element (by id, or the button of the same form) in the new one.
  function focusKey(el) {
    var a = document.activeElement;
    if (!a || a === document.body || !el.contains(a)) return null;
    if (a.id) { var id = a.id; return function (root) { return root.querySelector("#" + CSS.escape(id)); }; }
    var form = a.closest("form");
    if (form && form.getAttribute("action")) {
      var action = form.getAttribute("action");
      return function (root) {
        var f = Array.prototype.find.call(root.querySelectorAll("form"), function (x) { return x.getAttribute("action") === action; });
        return f ? f.querySelector("button") : null;
      };
    }
    return null;
  }

  function markStale(el) {
    if (el.querySelector(".stale-note")) return;
    var p = document.createElement("p");
    p.className = "warning stale-note";
    p.setAttribute("role", "status");
    p.textContent = "This changed elsewhere while you were editing. Saving may be refused; reload to see the latest.";
    el.insertBefore(p, el.firstChild);
  }

  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { headers: { "Gantry-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { signIn(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString("<!doctype html><body>" + text + "</body>", "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (!fresh) return;
          if (busy(el)) { markStale(el); return; }
          if (el.tagName === "DETAILS") fresh.open = el.open;
          var refocus = focusKey(el);
          el.replaceWith(fresh);
          wireSliders(fresh);
          if (refocus) {
            var target = refocus(fresh);
            if (target) target.focus();
          }
        });
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function live() {
    var url = document.body.dataset.live;
    var status = document.getElementById("live-status");
    if (!url || !window.EventSource || !status) return;
    var timer = null;
    var es = new EventSource(url);
    es.addEventListener("hello", function () { status.textContent = "live"; status.classList.add("on"); });
    es.addEventListener("change", function (e) {
      try { document.body.dataset.revision = JSON.parse(e.data).revision; } catch (_) {}
      clearTimeout(timer);
      timer = setTimeout(refresh, 100);
    });
    es.addEventListener("signed-out", function () { es.close(); signIn(); });
    es.onerror = function () {
      status.textContent = "reconnecting…";
      status.classList.remove("on");
      // A refused stream (401: the session ended, e.g. on a server restart) is not retried by the browser.
      if (es.readyState === 2) {
        fetch(location.href, { headers: { "Gantry-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
          .then(function (r) { if (r.status === 401) signIn(); else setTimeout(live, 5000); })
          .catch(function () { setTimeout(live, 5000); });
      }
    };
  }

  document.addEventListener("input", function (e) {
    var f = e.target && e.target.closest && e.target.closest("form[method=post]");
    if (f) f.setAttribute("data-dirty", "1");
  });

  document.addEventListener("DOMContentLoaded", function () {
    wireSliders(document);
    live();
  });
})();
