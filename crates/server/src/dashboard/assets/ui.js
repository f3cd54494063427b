// hookrelay dashboard: the live tail of the events page and copy buttons.
// Everything else works without this file. No inline handlers: the page's
// Content-Security-Policy allows only this script.
"use strict";

(function () {
  // Rows kept on the page while tailing; older ones drop off the bottom.
  var MAX_ROWS = 500;

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent).then(function () {
          button.textContent = "Copied";
        }, function () {
          button.textContent = "Copy failed: select the text";
        });
      });
    });
  }

  function tail() {
    var panel = document.getElementById("tail");
    var rows = document.getElementById("event-rows");
    if (!panel || !rows || !window.EventSource) return;
    var state = document.getElementById("live-state");
    var toggle = document.getElementById("pause");
    var src = panel.getAttribute("data-src");
    var last = panel.getAttribute("data-after");
    var source = null;

    function show(name, text) {
      state.setAttribute("data-state", name);
      state.textContent = text;
    }

    function add(html, id) {
      var template = document.createElement("template");
      template.innerHTML = html.trim();
      var row = template.content.firstElementChild;
      if (!row) return;
      var empty = document.getElementById("no-events");
      if (empty) empty.remove();
      row.classList.add("fresh");
      rows.insertBefore(row, rows.firstChild);
      while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
      last = id;
    }

    function open() {
      var url = src + (src.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(last || "");
      show("connecting", "Connecting…");
      source = new EventSource(url);
      source.addEventListener("open", function () { show("open", "Live"); });
      source.addEventListener("error", function () {
        // CONNECTING: the browser retries by itself, with Last-Event-ID.
        if (source.readyState === EventSource.CLOSED) show("closed", "Disconnected: reload the page");
        else show("connecting", "Reconnecting…");
      });
      source.addEventListener("row", function (e) { add(e.data, e.lastEventId); });
    }

    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      if (source) {
        source.close();
        source = null;
        show("paused", "Paused");
        toggle.textContent = "Resume";
        toggle.setAttribute("aria-pressed", "true");
      } else {
        open();
        toggle.textContent = "Pause";
        toggle.setAttribute("aria-pressed", "false");
      }
    });
    open();
  }

  copyButtons();
  tail();
})();
