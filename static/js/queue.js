/* The console queue: rows are rendered by the server and pushed over the socket
 * as they change; each row is replaced in place or inserted in sort order. */
(function () {
  "use strict";
  var body = document.querySelector("[data-queue-body]");
  if (!body) return;
  var socket = window.RefundChat.socket;
  var empty = document.querySelector("[data-queue-empty]");
  var count = document.querySelector("[data-testid=queue-count]");

  function rowFromHtml(html) {
    // The HTML is rendered by the server's own template, escaped there.
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function insertSorted(row) {
    var key = row.dataset.sortKey;
    var rows = body.querySelectorAll("[data-testid=queue-item]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].dataset.sortKey > key) { body.insertBefore(row, rows[i]); return; }
    }
    body.append(row);
  }

  function refreshCounts() {
    var n = body.querySelectorAll("[data-testid=queue-item]").length;
    if (empty) empty.hidden = n > 0;
    if (count && count.dataset.live !== "off") count.textContent = String(n);
  }

  socket.onOpen(function () { socket.send({ type: "queue.subscribe" }); });

  var table = document.querySelector("[data-queue]");
  var view = table.dataset.view;
  var me = table.dataset.userId;
  var FINAL = ["refunded", "rejected", "cancelled", "closed"];
  var WAITING = ["awaiting_evidence", "return_required"];
  var SLA_WINDOW_SECONDS = 30 * 60;

  // The same rules as tickets.selectors.queue_view_condition, applied to a row the server rendered.
  function belongs(row) {
    var status = row.dataset.status, open = FINAL.indexOf(status) < 0;
    switch (view) {
      case "mine": return open && row.dataset.agentId === me;
      case "unassigned": return open && !row.dataset.agentId;
      case "waiting": return WAITING.indexOf(status) >= 0;
      case "sla": return open && ((row.dataset.answered === "0" && Number(row.dataset.due) <= Date.now() / 1000 + SLA_WINDOW_SECONDS) || row.dataset.replyOverdue === "1");
      case "escalated": return status === "escalated";
      case "closed": return !open;
      default: return open;
    }
  }

  // The same order as the server's (tickets.selectors.console_queue). On a page with neighbours, a row that sorts
  // before this page's first row or after its last belongs to another page.
  function pageBounds() {
    var all = body.querySelectorAll("[data-testid=queue-item]");
    return all.length ? { first: all[0].dataset.sortKey, last: all[all.length - 1].dataset.sortKey } : null;
  }
  function onThisPage(row, bounds) {
    var key = row.dataset.sortKey;
    if (!bounds) return true;
    if (table.hasAttribute("data-has-previous") && key < bounds.first) return false;
    if (table.hasAttribute("data-has-next") && key > bounds.last) return false;
    return true;
  }

  socket.on("ticket.updated", function (frame) {
    var existing = body.querySelector("[data-testid=queue-item][data-ticket-id='" + frame.ticket_id + "']");
    var bounds = pageBounds();  // before the row leaves: it may be the page's first or last
    if (existing) existing.remove();
    if (frame.queue_row) {
      var row = rowFromHtml(frame.queue_row);
      if (belongs(row) && onThisPage(row, bounds)) {
        row.classList.add("flash-new");
        insertSorted(row);
      }
    }
    refreshCounts();
  });

  // Keyboard: j/k move, Enter opens, / goes to the search box (the filters when there is none).
  var current = -1;
  function rows() { return body.querySelectorAll("[data-testid=queue-item]"); }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (r, i) { r.classList.toggle("selected", i === current); });
    all[current].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "Enter" && current >= 0) { rows()[current].querySelector("a").click(); }
    else if (event.key === "/") {
      var first = document.querySelector("[data-testid=console-search]") ||
        document.querySelector("[data-testid=queue-filters] select, [data-testid=queue-filters] input:not([type=hidden])");
      if (first) { first.focus(); event.preventDefault(); }
    }
  });
})();
