/* Collision detection on the console ticket page (docs/protocol.md, messaging/viewers.py).
 *
 * Opening the ticket (chat.js subscribes to its conversation) makes this staff socket a viewer; the server
 * sends `ticket.viewers` to the ticket's staff-only group whenever the people viewing it change, and
 * `ticket.typing` when another staff member drafts a note (or a reply they cannot send yet). The assigned
 * agent's reply shows through the conversation's ordinary `typing` frame. The bar lists the others:
 * "also here: 李娜 (viewing), 王强 (typing…)". Drafting a note here tells the others in turn. */
(function () {
  "use strict";
  var bar = document.querySelector("[data-viewers]");
  if (!bar || !window.RefundChat || !window.RefundChat.socket) return;
  var socket = window.RefundChat.socket;
  var ticketId = Number(bar.dataset.ticketId);
  var conversationId = Number(bar.dataset.conversationId);
  var me = Number(bar.dataset.userId);
  var list = bar.querySelector("[data-viewers-list]");
  var others = [];  // [{user_id, name}] in the order they arrived
  var typing = {};  // user_id -> {draft, timer}

  function stateText(userId) {
    var t = typing[userId];
    if (!t) return bar.dataset.labelViewing;
    return t.draft === "note" ? bar.dataset.labelNote : bar.dataset.labelTyping;
  }

  function render() {
    list.textContent = "";
    others.forEach(function (viewer) {
      var chip = document.createElement("span");
      chip.className = "viewer";
      chip.setAttribute("data-testid", "viewer");
      chip.dataset.userId = viewer.user_id;
      chip.dataset.state = typing[viewer.user_id] ? "typing" : "viewing";
      var dot = document.createElement("span");
      dot.className = "dot";
      dot.setAttribute("aria-hidden", "true");
      var text = document.createElement("span");
      text.textContent = bar.dataset.labelFormat.replace("%(name)s", viewer.name).replace("%(state)s", stateText(viewer.user_id));
      chip.append(dot, text);
      list.append(chip);
    });
    bar.hidden = others.length === 0;
  }

  function isOther(userId) {
    return others.some(function (viewer) { return viewer.user_id === userId; });
  }

  function stopTyping(userId) {
    if (!typing[userId]) return;
    window.clearTimeout(typing[userId].timer);
    delete typing[userId];
    render();
  }

  function startTyping(userId, draft, expiresIn) {
    if (userId === me || !isOther(userId)) return;
    if (typing[userId]) window.clearTimeout(typing[userId].timer);
    typing[userId] = { draft: draft, timer: window.setTimeout(function () { stopTyping(userId); }, (expiresIn || 6) * 1000) };
    render();
  }

  socket.on("ticket.viewers", function (frame) {
    if (frame.ticket_id !== ticketId) return;
    others = frame.viewers.filter(function (viewer) { return viewer.user_id !== me; });
    Object.keys(typing).forEach(function (id) { if (!isOther(Number(id))) stopTyping(Number(id)); });
    render();
  });

  socket.on("ticket.typing", function (frame) {
    if (frame.ticket_id === ticketId) startTyping(frame.user_id, frame.draft, frame.expires_in);
  });

  // The assigned agent writing the buyer a reply (the buyer's own typing is not in the bar: not staff).
  socket.on("typing", function (frame) {
    if (frame.conversation === conversationId) startTyping(frame.user_id, "reply", frame.expires_in);
  });

  // What they were typing arrived.
  socket.on("message", function (frame) {
    if (frame.message.conversation === conversationId && frame.message.sender_id) stopTyping(frame.message.sender_id);
  });
  socket.on("ticket.note", function (frame) {
    if (frame.ticket_id === ticketId) stopTyping(frame.author_id);
  });

  // A new socket is viewed afresh: its subscription brings the current list.
  socket.onOpen(function () { if (socket.opens > 1) { others = []; render(); } });

  // Drafting a note here: the other staff viewers see it (never the buyer).
  var note = document.querySelector("[data-notes] textarea");
  if (note) {
    var sentAt = 0;
    note.addEventListener("input", function () {
      var now = Date.now();
      if (note.value.trim() && now - sentAt > 2500) {
        if (socket.send({ type: "typing", conversation: conversationId, draft: "note" })) sentAt = now;
      }
    });
  }
})();
