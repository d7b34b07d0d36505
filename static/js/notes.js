/* Internal notes and mentions in the console. A `ticket.note` frame (sent only to staff groups, never
 * with the note's text) makes the ticket page fetch its notes again, and raises the mentions badge of
 * the people it mentions; `mentions.seen` (the user read them in another tab) clears it. */
(function () {
  "use strict";
  if (!window.RefundChat || !window.RefundChat.socket) return;
  var socket = window.RefundChat.socket;
  var section = document.querySelector("[data-notes]");

  function badges() { return document.querySelectorAll("[data-mentions-badge]"); }

  function setBadge(count) {
    badges().forEach(function (badge) {
      badge.textContent = count > 99 ? "99+" : String(count);
      badge.hidden = count <= 0;
    });
  }

  function badgeCount() {
    var badge = badges()[0];
    return badge ? Number(badge.textContent) || 0 : 0;
  }

  var timer = null;
  function refreshNotes() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      window.fetch(window.location.pathname, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          var list = fresh.querySelector("[data-notes-list]");
          var current = section.querySelector("[data-notes-list]");
          if (list && current) current.replaceChildren.apply(current, Array.from(list.childNodes));
          // Opening the page marked this ticket's mentions seen: the server's badge is the truth.
          var badge = fresh.querySelector("[data-mentions-badge]");
          if (badge) setBadge(badge.hidden ? 0 : Number(badge.textContent) || 0);
        })
        .catch(function () { /* the next note or a reload shows it */ });
    }, 100);
  }

  // A staff page may get one note twice (the queue group and its user's own group): count it once.
  var counted = {};
  socket.on("ticket.note", function (frame) {
    if (counted[frame.note_id]) return;
    counted[frame.note_id] = true;
    var here = section && section.dataset.ticketId === String(frame.ticket_id);
    if (here) { refreshNotes(); return; }
    if ((frame.mentioned_ids || []).indexOf(socket.userId) >= 0) setBadge(badgeCount() + 1);
  });

  socket.on("mentions.seen", function (frame) { setBadge(Number(frame.unseen) || 0); });

  if (section) socket.onOpen(function () { if (socket.opens > 1) refreshNotes(); });
})();
