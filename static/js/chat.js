/* A live chat bound to [data-chat] (protocol v1, docs/protocol.md).
 *
 * History is rendered by the server; this script subscribes from the newest seq
 * shown and appends new messages exactly once (by seq). What the user sends goes
 * into an outbox kept in localStorage: it is shown as "sending", survives a
 * reload or a lost network, and is resent with its original client_id until the
 * server acks it. The sender's ticks follow the other side's delivered/read
 * positions; typing and presence of the other side are shown above the composer. */
(function () {
  "use strict";
  var root = document.querySelector("[data-chat]");
  if (!root) return;
  var socket = window.RefundChat.socket;
  var labels = JSON.parse(document.getElementById("chat-labels").textContent);
  var conversationId = Number(root.dataset.conversationId);
  var userId = Number(root.dataset.userId);
  var buyerId = Number(root.dataset.buyerId);
  var agentId = Number(root.dataset.agentId) || null;
  var isParticipant = root.dataset.participant === "1";
  var list = root.querySelector("[data-messages]");
  var form = root.querySelector("[data-composer]");
  var errorBox = root.querySelector("[data-composer-error]");
  var typingBox = root.querySelector("[data-typing]");
  var presenceBox = root.querySelector("[data-peer-presence]");
  var elements = {};  // client_id -> the <li> of a message in the outbox
  var receipts = {};  // user_id -> {delivered: seq, read: seq}
  var typingTimers = {};  // user_id -> timeout id
  var reported = { delivered: 0, read: 0 };
  var reportTimer = null;

  // --- the outbox ---------------------------------------------------------------
  var outboxKey = "refundchat:outbox:" + userId + ":" + conversationId;

  function loadOutbox() {
    try { return JSON.parse(window.localStorage.getItem(outboxKey)) || []; } catch (e) { return []; }
  }

  function saveOutbox(entries) {
    try {
      if (entries.length) window.localStorage.setItem(outboxKey, JSON.stringify(entries));
      else window.localStorage.removeItem(outboxKey);
    } catch (e) { /* storage full or disabled: the outbox lives as long as the page */ }
  }

  function updateEntry(clientId, changes) {
    saveOutbox(loadOutbox().map(function (entry) {
      return entry.client_id === clientId ? Object.assign(entry, changes) : entry;
    }));
  }

  function removeEntry(clientId) {
    saveOutbox(loadOutbox().filter(function (entry) { return entry.client_id !== clientId; }));
    delete elements[clientId];
  }

  function sendEntry(entry) {
    socket.send({ type: "message.send", conversation: conversationId, client_id: entry.client_id, body: entry.body });
  }

  function resendOutbox() {
    loadOutbox().forEach(function (entry) {
      if (entry.state !== "failed") sendEntry(entry);
    });
  }

  // --- rendering ----------------------------------------------------------------
  // The highest seq received from the server as history or a message frame. The server
  // sends each socket a conversation's messages in order without gaps, so everything up to
  // here is shown. An ack's seq does not count: messages before it may still be on their way.
  var receivedSeq = 0;
  list.querySelectorAll("[data-seq]").forEach(function (el) { receivedSeq = Math.max(receivedSeq, Number(el.dataset.seq) || 0); });

  function lastSeq() { return receivedSeq; }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function timeText(iso) {
    // The shop's time zone, as the server renders history, whatever the device's zone.
    return new Date(iso).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: root.dataset.timeZone });
  }

  function scrollToEnd() { list.scrollTop = list.scrollHeight; }

  function setStatus(el, status, reason) {
    el.dataset.status = status;
    var label = el.querySelector("[data-status-label]");
    if (label) label.textContent = labels[status] + (reason ? ": " + reason : "");
    var retry = el.querySelector("[data-retry]");
    if (status === "failed" && !retry) {
      retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link";
      retry.setAttribute("data-retry", "");
      retry.setAttribute("data-testid", "message-retry");
      retry.textContent = labels.retry;
      el.querySelector(".status").append(" ", retry);
    } else if (status !== "failed" && retry) {
      retry.remove();
    }
  }

  function buildMessage(m) {
    var li = document.createElement("li");
    li.className = "message kind-" + m.kind + (m.sender_id === userId ? " mine" : "");
    li.setAttribute("data-testid", "message");
    if (m.seq) li.dataset.seq = m.seq;
    if (m.sender_id) li.dataset.senderId = m.sender_id;
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
      status.setAttribute("data-testid", "message-status");
      var label = document.createElement("span");
      label.setAttribute("data-status-label", "");
      status.append(label);
      li.append(status);
    }
    return li;
  }

  function insertBySeq(el) {
    // Stored messages sit in seq order; unsent ones stay at the end.
    var seq = Number(el.dataset.seq);
    var items = list.querySelectorAll("[data-testid=message]");
    for (var i = 0; i < items.length; i++) {
      var other = Number(items[i].dataset.seq);
      if (!items[i].dataset.seq || other > seq) { list.insertBefore(el, items[i]); return; }
    }
    list.append(el);
  }

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function showOutboxEntry(entry) {
    if (list.querySelector('[data-client-id="' + entry.client_id + '"][data-seq]')) {
      removeEntry(entry.client_id);  // stored before the page was rendered
      return;
    }
    var el = buildMessage({ kind: "text", sender_id: userId, sender_name: "", body: entry.body, client_id: entry.client_id, created_at: entry.created_at });
    setStatus(el, entry.state === "failed" ? "failed" : "sending", entry.reason);
    elements[entry.client_id] = el;
    list.append(el);
  }

  // --- receipts: the ticks on my messages, and my own positions -----------------
  function peerPositions() {
    var delivered = 0, read = 0;
    Object.keys(receipts).forEach(function (id) {
      if (Number(id) === userId) return;
      delivered = Math.max(delivered, receipts[id].delivered);
      read = Math.max(read, receipts[id].read);
    });
    return { delivered: delivered, read: read };
  }

  function refreshTicks() {
    var peer = peerPositions();
    list.querySelectorAll(".message.mine[data-seq]").forEach(function (el) {
      var seq = Number(el.dataset.seq);
      setStatus(el, seq <= peer.read ? "read" : seq <= peer.delivered ? "delivered" : "sent");
    });
  }

  function reportPositions() {
    if (!isParticipant) return;
    window.clearTimeout(reportTimer);
    reportTimer = window.setTimeout(function () {
      var seq = lastSeq();
      var read = document.visibilityState === "visible" ? seq : reported.read;
      if (seq <= reported.delivered && read <= reported.read) return;
      if (socket.send({ type: "receipt", conversation: conversationId, delivered_seq: seq, read_seq: read })) {
        reported = { delivered: seq, read: read };
      }
    }, 250);
  }

  // --- typing and presence of the other side ------------------------------------
  function showTyping(frame) {
    if (!typingBox || frame.user_id === userId) return;
    typingBox.textContent = labels.typing.replace("%(name)s", frame.name);
    typingBox.hidden = false;
    window.clearTimeout(typingTimers[frame.user_id]);
    typingTimers[frame.user_id] = window.setTimeout(function () { hideTyping(frame.user_id); }, frame.expires_in * 1000);
  }

  function hideTyping(senderId) {
    window.clearTimeout(typingTimers[senderId]);
    delete typingTimers[senderId];
    if (typingBox && !Object.keys(typingTimers).length) typingBox.hidden = true;
  }

  function peerId() { return userId === buyerId ? agentId : buyerId; }

  function showPresence(frame) {
    if (!presenceBox || frame.user_id !== peerId()) return;
    var role = frame.user_id === buyerId ? labels.buyer : labels.agent;
    var text = role + " · " + labels[frame.status];
    if (frame.status === "offline" && frame.last_seen_at) {
      text += " · " + labels.last_seen.replace("%(time)s", timeText(frame.last_seen_at));
    }
    presenceBox.querySelector("[data-presence-text]").textContent = text;
    presenceBox.dataset.status = frame.status;
    presenceBox.hidden = false;
  }

  // --- the socket ---------------------------------------------------------------
  socket.onOpen(function () {
    reported = { delivered: 0, read: 0 };
    socket.send({ type: "subscribe", conversation: conversationId, last_seq: lastSeq() });
  });

  socket.on("subscribed", function (frame) {
    if (frame.conversation !== conversationId) return;
    resendOutbox();
    reportPositions();
  });

  socket.on("message", function (frame) {
    var m = frame.message;
    if (m.conversation !== conversationId) return;
    receivedSeq = Math.max(receivedSeq, m.seq);
    if (list.querySelector('[data-seq="' + m.seq + '"]')) { reportPositions(); return; }
    var el = m.client_id ? elements[m.client_id] : null;
    if (el) {
      el.dataset.seq = m.seq;
      removeEntry(m.client_id);
      el.remove();
    } else {
      el = buildMessage(m);
    }
    insertBySeq(el);
    if (m.sender_id) {
      hideTyping(m.sender_id);
      // Whoever writes has read what came before: their receipt may still be on its way.
      var r = receipts[m.sender_id] || { delivered: 0, read: 0 };
      receipts[m.sender_id] = { delivered: Math.max(r.delivered, m.seq - 1), read: Math.max(r.read, m.seq - 1) };
    }
    refreshTicks();
    scrollToEnd();
    reportPositions();
  });

  socket.on("message.ack", function (frame) {
    if (frame.conversation !== conversationId || !elements[frame.client_id]) return;
    // The ack came before the broadcast: the broadcast finds this seq and is skipped.
    var el = elements[frame.client_id];
    removeEntry(frame.client_id);
    if (list.querySelector('[data-seq="' + frame.seq + '"]')) { el.remove(); return; }
    el.dataset.seq = frame.seq;
    el.remove();
    insertBySeq(el);
    refreshTicks();
  });

  socket.on("receipt", function (frame) {
    if (frame.conversation !== conversationId) return;
    var known = receipts[frame.user_id] || { delivered: 0, read: 0 };
    receipts[frame.user_id] = { delivered: Math.max(known.delivered, frame.delivered_seq), read: Math.max(known.read, frame.read_seq) };
    if (frame.user_id === userId) {
      // Another tab or device of mine read further.
      reported = { delivered: Math.max(reported.delivered, frame.delivered_seq), read: Math.max(reported.read, frame.read_seq) };
    }
    refreshTicks();
  });

  socket.on("typing", function (frame) {
    if (frame.conversation === conversationId) showTyping(frame);
  });

  socket.on("presence", showPresence);

  socket.on("error", function (frame) {
    var el = frame.ref ? elements[frame.ref] : null;
    if (el && frame.code === "rate_limited") {
      // Still sending: try again when the server says a token is free.
      window.setTimeout(function () {
        var entry = loadOutbox().filter(function (e) { return e.client_id === frame.ref; })[0];
        if (entry) sendEntry(entry);
      }, Math.max(500, (frame.retry_after || 1) * 1000));
      return;
    }
    if (el) {
      updateEntry(frame.ref, { state: "failed", reason: frame.message });
      setStatus(el, "failed", frame.message);
    }
    showError(frame.message);
  });

  list.addEventListener("click", function (event) {
    var button = event.target.closest("[data-retry]");
    if (!button) return;
    var el = button.closest("[data-client-id]");
    var clientId = el.dataset.clientId;
    updateEntry(clientId, { state: "sending", reason: "" });
    setStatus(el, "sending");
    showError("");
    var entry = loadOutbox().filter(function (e) { return e.client_id === clientId; })[0];
    if (entry) sendEntry(entry);
  });

  document.addEventListener("visibilitychange", reportPositions);

  if (form) {
    var input = form.querySelector("[data-testid=chat-input]");
    var typingSentAt = 0;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = input.value.trim();
      if (!body) { showError(labels.empty); return; }
      if (body.length > 5000) { showError(labels.too_long); return; }
      showError("");
      var entry = { client_id: newClientId(), body: body, created_at: new Date().toISOString(), state: "sending" };
      saveOutbox(loadOutbox().concat([entry]));
      showOutboxEntry(entry);
      scrollToEnd();
      sendEntry(entry);
      input.value = "";
      input.focus();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", function () {
      var now = Date.now();
      if (input.value.trim() && now - typingSentAt > 2500) {
        if (socket.send({ type: "typing", conversation: conversationId })) typingSentAt = now;
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

  loadOutbox().forEach(showOutboxEntry);
  scrollToEnd();
})();
