// The console's progressive part: keyboard shortcuts and the command center's live alerts.
// Every page works without it (plain links and forms).
"use strict";
(function () {
  function typing(e) {
    const t = e.target;
    return t && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName));
  }

  // the case page: C confirms, R goes to the reject reason, N opens the next case
  document.addEventListener("keydown", function (e) {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.toLowerCase();
    if (key === "c") {
      const form = document.getElementById("act-confirm");
      if (form) { e.preventDefault(); form.requestSubmit(); }
    } else if (key === "r") {
      const select = document.querySelector("#act-reject select[name=reason_code]");
      if (select) { e.preventDefault(); select.focus(); }
    } else if (key === "n") {
      const next = document.getElementById("next-case");
      if (next) { e.preventDefault(); window.location.href = next.href; }
    }
  });

  // the queue: J / K move through the cases, Enter opens one
  const links = Array.from(document.querySelectorAll("#queue a.case-link"));
  let at = -1;
  function mark(i) {
    if (!links.length) return;
    at = Math.max(0, Math.min(links.length - 1, i));
    links.forEach((a, j) => a.closest("tr").classList.toggle("current", j === at));
    links[at].focus();
  }
  document.addEventListener("keydown", function (e) {
    if (typing(e) || !links.length) return;
    if (e.key === "j") { e.preventDefault(); mark(at + 1); }
    else if (e.key === "k") { e.preventDefault(); mark(at - 1); }
  });

  // the command center: new cases as server-sent events, newest first
  const list = document.getElementById("alerts");
  if (list && window.EventSource) {
    const source = new EventSource(list.dataset.source);
    source.addEventListener("case", function (e) {
      const a = JSON.parse(e.data);
      const li = document.createElement("li");
      li.className = "new";
      li.dataset.caseId = a.case_id;
      li.textContent = [a.ts.replace("T", " ").slice(0, 19), a.site, a.plate || "（无牌）",
        a.violation || a.violation_code, a.outcome, a.fine_cny === null ? "" : a.fine_cny + " 元"].join(" ");
      list.prepend(li);
      while (list.children.length > 200) list.lastElementChild.remove();
    });
  }
})();
