// The console's one script. Every page works without it; it adds:
// - the overview's live refresh (every 5 s, paused while the tab is hidden);
// - a reviewer's keyboard shortcuts: j/k and Enter in the queue, a/e/r/n on a case.
"use strict";

(function () {
  const live = document.querySelector("[data-refresh]");
  if (live) {
    const url = live.getAttribute("data-refresh");
    setInterval(async function () {
      if (document.hidden) return;
      try {
        const r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (r.status === 401) { window.location.reload(); return; }
        if (r.ok) live.innerHTML = await r.text();
      } catch (e) {
        // A failed refresh keeps the last figures; the next tick tries again.
      }
    }, 5000);
  }

  // The exam's countdown: the server's deadline, counted down here; at zero the answers
  // given so far are submitted.
  const countdown = document.getElementById("countdown");
  if (countdown) {
    const skew = Number(countdown.dataset.nowMs) - Date.now();
    const deadline = Number(countdown.dataset.deadlineMs);
    const form = document.getElementById("exam-form");
    const tick = function () {
      const left = Math.max(0, deadline - (Date.now() + skew));
      const s = Math.floor(left / 1000);
      countdown.textContent = String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
      if (left === 0 && form && !form.dataset.sent) { form.dataset.sent = "1"; form.requestSubmit(); }
    };
    setInterval(tick, 1000);
  }

  function typing(target) {
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  const queue = document.querySelector("table[data-keys=list] tbody");
  let selected = -1;
  function select(i) {
    const rows = queue ? queue.querySelectorAll("tr") : [];
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("selected", n === selected); });
    const link = rows[selected].querySelector("a");
    if (link) link.focus();
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (queue) {
      if (e.key === "j") { select(selected + 1); e.preventDefault(); return; }
      if (e.key === "k") { select(selected - 1); e.preventDefault(); return; }
    }
    const bound = document.querySelector("[data-key=\"" + e.key + "\"]");
    if (!bound) return;
    e.preventDefault();
    if (bound.tagName === "FORM") bound.requestSubmit();
    else if (bound.tagName === "A") window.location.href = bound.href;
    else bound.focus();
  });
})();
