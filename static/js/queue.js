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

  socket.on("ticket.updated", function (frame) {
    var existing = body.querySelector("[data-testid=queue-item][data-ticket-id='" + frame.ticket_id + "']");
    if (existing) existing.remove();
    if (frame.queue_row) {
      var row = rowFromHtml(frame.queue_row);
      row.classList.add("flash-new");
      insertSorted(row);
    }
    refreshCounts();
  });
})();
