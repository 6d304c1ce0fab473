// Task pages: each change of a task arrives as a server-sent event and updates its row.
"use strict";
(function () {
  const feed = document.getElementById("task-feed");
  if (!feed || !window.EventSource) return;
  const source = new EventSource(feed.dataset.source);
  source.addEventListener("open", function () { feed.dataset.live = "1"; });
  source.addEventListener("task", function (e) {
    const t = JSON.parse(e.data);
    const row = feed.querySelector('tr[data-task="' + t.task_id + '"]');
    if (!row) return;
    row.dataset.status = t.status;
    row.classList.toggle("overdue", t.overdue);
    row.classList.toggle("escalated", t.escalated);
    const cell = row.querySelector(".task-status");
    if (cell) cell.textContent = t.status_name + (t.escalated ? " 已上报中队长和指挥中心" : "");
  });
})();
