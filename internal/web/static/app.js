// Talon dashboard: the little script the pages use. The pages work
// without it (forms post, links link); it adds local times, keyboard
// moves in the grid, confirmations, live updates from the event stream
// and the log's live tail. It never puts text from the server into HTML:
// it copies server-rendered nodes, or sets textContent.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="talon-csrf"]');

  // Times: the server writes UTC; show them in the reader's zone.
  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) continue;
      el.title = el.getAttribute("datetime");
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
  }

  // Forms that ask before they post.
  document.addEventListener("submit", function (ev) {
    const f = ev.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) {
      ev.preventDefault();
    }
  });

  // The grid: cells are links (or spans, for no run); one is in the tab order; arrow keys, Home/End and
  // PageUp/PageDown move; Enter opens the run (the cell is a link).
  function gridCells(table) {
    const rows = [];
    for (const tr of table.querySelectorAll("tbody tr")) {
      const cells = tr.querySelectorAll(":scope > td > a, :scope > td > span");
      if (cells.length) rows.push(Array.from(cells));
    }
    return rows;
  }
  function setupGrid(focusAt) {
    const table = document.getElementById("grid");
    if (!table) return;
    const rows = gridCells(table);
    if (!rows.length) return;
    // The newest periods are on the right: a narrow screen starts there.
    const scroller = table.closest(".scroll");
    if (scroller && !focusAt) scroller.scrollLeft = scroller.scrollWidth;
    for (const r of rows) for (const c of r) c.tabIndex = -1;
    let [ri, ci] = focusAt || [0, rows[0].length - 1];
    ri = Math.min(ri, rows.length - 1);
    ci = Math.min(ci, rows[ri].length - 1);
    rows[ri][ci].tabIndex = 0;
    if (focusAt) rows[ri][ci].focus({ preventScroll: true });
    table.onkeydown = function (ev) {
      const cell = ev.target;
      if (!cell || cell.parentElement.tagName !== "TD") return;
      let r = -1, c = -1;
      for (let i = 0; i < rows.length && r < 0; i++) {
        const j = rows[i].indexOf(cell);
        if (j >= 0) { r = i; c = j; }
      }
      if (r < 0) return;
      let nr = r, nc = c;
      switch (ev.key) {
        case "ArrowLeft": nc--; break;
        case "ArrowRight": nc++; break;
        case "ArrowUp": nr--; break;
        case "ArrowDown": nr++; break;
        case "Home": nc = 0; break;
        case "End": nc = rows[r].length - 1; break;
        case "PageUp": nr -= 10; break;
        case "PageDown": nr += 10; break;
        default: return;
      }
      ev.preventDefault();
      nr = Math.max(0, Math.min(rows.length - 1, nr));
      nc = Math.max(0, Math.min(rows[nr].length - 1, nc));
      cell.tabIndex = -1;
      const next = rows[nr][nc];
      next.tabIndex = 0;
      next.focus();
    };
  }
  function gridFocus() {
    const table = document.getElementById("grid");
    const el = document.activeElement;
    if (!table || !el || !table.contains(el)) return null;
    const rows = gridCells(table);
    for (let i = 0; i < rows.length; i++) {
      const j = rows[i].indexOf(el);
      if (j >= 0) return [i, j];
    }
    return null;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    const f = document.getElementById("filter-job");
    if (f) { ev.preventDefault(); f.focus(); f.select(); }
  });

  // Live updates: the page listens to the event stream and, after a burst
  // of events, fetches itself again and swaps its #live part. It waits
  // while the reader is typing in a form or has one open there.
  const live = document.getElementById("live");
  const status = document.getElementById("live-status");
  let timer = null, busy = false, again = false;
  function editing() {
    const el = document.activeElement;
    if (el && live.contains(el) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) return true;
    return live.querySelector("details[open]") !== null;
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(refresh, 300);
  }
  async function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    if (editing()) { timer = setTimeout(refresh, 1000); return; }
    busy = true;
    try {
      const resp = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.getElementById("live");
      if (!fresh || editing()) return;
      const focus = gridFocus();
      live.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.adoptNode(n)));
      localTimes(live);
      setupGrid(focus);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (e) {
      // The next event tries again.
    } finally {
      busy = false;
      if (again) { again = false; schedule(); }
    }
  }
  // Streams this page holds open: closed when the page is left, so that a
  // page kept in the back/forward cache holds no connection (browsers
  // allow six to a server).
  let es = null;
  const logAbort = new AbortController();
  window.addEventListener("pagehide", function () {
    if (es) es.close();
    logAbort.abort();
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) location.reload(); // back from the cache: its streams are closed
  });
  function listen() {
    const q = document.body.dataset.events;
    if (q === undefined || !live || !window.EventSource) return;
    es = new EventSource("/api/v1/events?" + q);
    for (const t of ["transition", "decision", "progress", "artifact"]) es.addEventListener(t, schedule);
    es.onopen = function () {
      if (status) { status.hidden = false; status.textContent = "live"; status.classList.remove("off"); }
      document.body.dataset.live = "on";
    };
    es.onerror = function () {
      if (status) { status.hidden = false; status.textContent = "reconnecting…"; status.classList.add("off"); }
      document.body.dataset.live = "off";
    };
  }

  // The log: fetched from the API, followed while the run runs. Text is
  // appended as text, never parsed.
  const maxLog = 1 << 20;
  async function tailLog() {
    const pre = document.getElementById("log");
    if (!pre) return;
    const follow = pre.dataset.follow === "true";
    const url = "/api/v1/runs/" + encodeURIComponent(pre.dataset.run) + "/logs" + (follow ? "?follow=true" : "");
    let resp;
    try {
      resp = await fetch(url, { credentials: "same-origin", signal: logAbort.signal });
    } catch (e) {
      return;
    }
    if (!resp.ok) {
      if (resp.status !== 404) pre.textContent = "(log unavailable: " + resp.status + ")";
      return;
    }
    let first = true;
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        return; // aborted: the page was left
      }
      const { value, done } = chunk;
      if (done) break;
      if (first) { pre.textContent = ""; first = false; }
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(dec.decode(value, { stream: true })));
      if (pre.textContent.length > maxLog) {
        pre.textContent = "…" + pre.textContent.slice(-maxLog / 2);
      }
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    if (first) pre.textContent = "(empty)";
    pre.dataset.done = "true";
  }

  localTimes(document);
  setupGrid(null);
  listen();
  tailLog();
  if (csrf) document.body.dataset.ready = "true";
})();
