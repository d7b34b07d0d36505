/* A live chat bound to [data-chat]: history is rendered by the server; this script
 * subscribes from the newest seq shown, appends new messages exactly once (by
 * seq), and sends with a client_id that it resends until the server acks it. */
(function () {
  "use strict";
  var root = document.querySelector("[data-chat]");
  if (!root) return;
  var socket = window.RefundChat.socket;
  var labels = JSON.parse(document.getElementById("chat-labels").textContent);
  var conversationId = Number(root.dataset.conversationId);
  var userId = Number(root.dataset.userId);
  var list = root.querySelector("[data-messages]");
  var form = root.querySelector("[data-composer]");
  var errorBox = root.querySelector("[data-composer-error]");
  var pending = {};  // client_id -> {body, element}

  function lastSeq() {
    var seq = 0;
    list.querySelectorAll("[data-seq]").forEach(function (el) {
      seq = Math.max(seq, Number(el.dataset.seq) || 0);
    });
    return seq;
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function timeText(iso) {
    var d = new Date(iso);
    // The shop's time zone, as the server renders history, whatever the device's zone.
    return d.toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: root.dataset.timeZone });
  }

  function scrollToEnd() { list.scrollTop = list.scrollHeight; }

  function setStatus(el, status) {
    el.dataset.status = status;
    var label = el.querySelector("[data-status-label]");
    if (label) label.textContent = labels[status] || "";
  }

  function buildMessage(m) {
    var li = document.createElement("li");
    li.className = "message kind-" + m.kind + (m.sender_id === userId ? " mine" : "");
    li.dataset.testid = "message";
    li.setAttribute("data-testid", "message");
    if (m.seq) li.dataset.seq = m.seq;
    if (m.client_id) li.dataset.clientId = m.client_id;
    if (m.kind !== "system") {
      var meta = document.createElement("div");
      meta.className = "meta";
      var sender = document.createElement("span");
      sender.className = "sender";
      sender.textContent = m.sender_name || "";
      var time = document.createElement("time");
      time.dateTime = m.created_at || "";
      time.textContent = m.created_at ? timeText(m.created_at) : "";
      meta.append(sender, " ", time);
      li.append(meta);
    }
    var body = document.createElement("div");
    body.className = "body";
    body.textContent = m.body;
    li.append(body);
    if (m.sender_id === userId) {
      var status = document.createElement("div");
      status.className = "status";
      status.setAttribute("data-status-label", "");
      li.append(status);
    }
    return li;
  }

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function sendPending(clientId) {
    var p = pending[clientId];
    socket.send({ type: "message.send", conversation: conversationId, client_id: clientId, body: p.body });
  }

  socket.onOpen(function () {
    socket.send({ type: "subscribe", conversation: conversationId, last_seq: lastSeq() });
  });

  socket.on("subscribed", function (frame) {
    if (frame.conversation !== conversationId) return;
    Object.keys(pending).forEach(sendPending);  // resend what was never acked
  });

  socket.on("message", function (frame) {
    var m = frame.message;
    if (m.conversation !== conversationId) return;
    if (list.querySelector('[data-seq="' + m.seq + '"]')) return;
    var el = m.client_id && pending[m.client_id] ? pending[m.client_id].element : null;
    if (el) {
      el.dataset.seq = m.seq;
      setStatus(el, "sent");
      delete pending[m.client_id];
    } else {
      el = buildMessage(m);
      if (m.sender_id === userId) setStatus(el, "sent");
      list.append(el);
    }
    scrollToEnd();
  });

  socket.on("message.ack", function (frame) {
    if (frame.conversation !== conversationId || !pending[frame.client_id]) return;
    // The ack came before the broadcast: the broadcast will find this seq and be skipped.
    var el = pending[frame.client_id].element;
    delete pending[frame.client_id];
    el.dataset.seq = frame.seq;
    setStatus(el, "sent");
  });

  socket.on("error", function (frame) {
    if (frame.ref && pending[frame.ref]) {
      setStatus(pending[frame.ref].element, "failed");
      delete pending[frame.ref];
    }
    showError(frame.message);
  });

  if (form) {
    var input = form.querySelector("[data-testid=chat-input]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = input.value.trim();
      if (!body) { showError(labels.empty); return; }
      if (body.length > 5000) { showError(labels.too_long); return; }
      showError("");
      var clientId = newClientId();
      var el = buildMessage({ kind: "text", sender_id: userId, sender_name: "", body: body, client_id: clientId, created_at: new Date().toISOString() });
      setStatus(el, "sending");
      list.append(el);
      scrollToEnd();
      pending[clientId] = { body: body, element: el };
      sendPending(clientId);
      input.value = "";
      input.focus();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  }

  // Buyer page: the status badge follows the ticket live.
  socket.on("ticket.updated", function (frame) {
    var head = document.querySelector(".ticket-head[data-ticket-id='" + frame.ticket_id + "']");
    if (!head) return;
    var badge = head.querySelector("[data-testid=ticket-status]");
    if (badge && frame.status_display) {
      badge.textContent = frame.status_display;
      badge.dataset.ticketStatus = frame.status;
      badge.className = "badge status-" + frame.status;
    }
  });

  scrollToEnd();
})();
