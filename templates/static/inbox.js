// Confide's web inbox works without this script; with it, the open folder and thread
// refresh when something changes, drafts save themselves, and the To list can be
// filtered by name. Nothing here comes from another host or runs inline.
(function () {
  "use strict";
  var body = document.body;
  var slug = body.getAttribute("data-slug");
  var folder = body.getAttribute("data-folder");
  if (!slug) return;
  var base = "/p/" + slug + "/";
  var live = document.getElementById("live");

  function announce(text) {
    if (live) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 50); }
  }

  // Live updates: the server's stream of one's own new states (/events, never content);
  // when a state comes, the folder list and the open list or thread are fetched again and
  // swapped in, never while a form on the page holds something typed (that waits for the
  // next quiet moment). Without a stream, a small digest every two seconds instead.
  var list = document.querySelector("ul.threads");
  var messages = document.querySelector("ol.messages");
  var last = null;
  // Something typed or ticked on the page that a refresh would throw away.
  function busy() {
    var fields = document.querySelectorAll("main textarea, main input[type=text], main input[type=search], main input:not([type])");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value !== fields[i].defaultValue) return true; }
    var checked = document.querySelector("ul.threads input[type=checkbox]:checked");
    return !!checked;
  }
  function refresh() {
    fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "x-confide-refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var parts = ["nav.folders ul", "ul.threads", "ol.messages", "nav.pages"];
        var grew = false;
        parts.forEach(function (sel) {
          var now = document.querySelector(sel), fresh = doc.querySelector(sel);
          // Never under the keyboard's focus: that part waits for the next change.
          if (now && now.contains(document.activeElement)) return;
          if (now && fresh && now.innerHTML !== fresh.innerHTML) {
            if (sel !== "nav.folders ul") grew = true;
            now.innerHTML = fresh.innerHTML;
          }
        });
        if (grew) announce("New messages.");
      });
  }
  function poll() {
    if (document.hidden) return;
    fetch(base + "updates?folder=" + encodeURIComponent(folder || "inbox"), { credentials: "same-origin", redirect: "manual" })
      .then(function (r) {
        if (r.type === "opaqueredirect") { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (v) {
        if (v === null || v === undefined) return;
        if (last !== null && v !== last && !busy()) refresh();
        if (last === null || !busy()) last = v;
      })
      .catch(function () {});
  }
  var waiting = false;
  function changed() {
    if (busy()) { waiting = true; return; }
    waiting = false;
    refresh();
  }
  function stream() {
    var source = new EventSource(base + "events");
    source.addEventListener("state", function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data && data.kinds && data.kinds.length) changed();
    });
    source.onerror = function () {
      // Closed for good (signed out, the server refused): the digest takes over, and it
      // sends to sign-in when the session has ended.
      if (source.readyState === EventSource.CLOSED) { poll(); setInterval(poll, 2000); }
    };
    // What waited for a form to be left alone.
    setInterval(function () { if (waiting && !busy()) changed(); }, 2000);
  }
  if (list || messages) {
    if (window.EventSource) stream(); else { poll(); setInterval(poll, 2000); }
  }

  // Compose: a filter for the To list, and drafts that save themselves.
  var form = document.querySelector("form.compose");
  if (!form) return;
  var to = form.querySelector("fieldset.to");
  if (to) {
    var label = document.createElement("label");
    label.setAttribute("for", "to-filter");
    label.textContent = "Find a recipient";
    var filter = document.createElement("input");
    filter.id = "to-filter";
    filter.type = "search";
    filter.autocomplete = "off";
    to.insertBefore(filter, to.querySelector("ul"));
    to.insertBefore(label, filter);
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      to.querySelectorAll("li").forEach(function (li) {
        li.hidden = q !== "" && li.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
  // The form has fields named "action", which shadow form.action.
  var target = form.getAttribute("action");
  var submitting = false;
  var pending = null;
  // A send or save waits for an autosave still on its way, so that it carries the draft's
  // id and leaves no second copy behind.
  form.addEventListener("submit", function (ev) {
    if (submitting) return;
    submitting = true;
    if (pending) {
      ev.preventDefault();
      var button = ev.submitter;
      pending.then(function () { form.requestSubmit(button); });
    }
  });
  function snapshot() {
    var data = new FormData(form);
    data.delete("file");
    data.set("action", "autosave");
    return data;
  }
  function text(data) {
    var parts = [];
    data.forEach(function (v, k) { if (k !== "csrf_token" && k !== "send_key") parts.push(k + "=" + v); });
    return parts.join("&");
  }
  var saved = text(snapshot());
  function worthSaving(data) {
    return !submitting && text(data) !== saved && (data.get("subject") || data.get("body"));
  }
  function save() {
    var data = snapshot();
    if (pending || !worthSaving(data)) return;
    var sent = text(data);
    pending = fetch(target, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (id) {
        if (!id) return;
        form.querySelector("input[name=draft_id]").value = id;
        saved = sent.replace(/draft_id=[^&]*/, "draft_id=" + id);
        if (!submitting) announce("Draft saved.");
      })
      .catch(function () {})
      .then(function () { pending = null; });
  }
  setInterval(save, 5000);
  window.addEventListener("pagehide", function () {
    var data = snapshot();
    if (worthSaving(data) && navigator.sendBeacon) navigator.sendBeacon(target, data);
  });
})();
