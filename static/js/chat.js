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
    if (elements[clientId] && !elements[clientId].dataset.seq) elements[clientId].remove();
    delete elements[clientId];
  }

  // An entry with files waits until each of them has arrived, was refused or was given up (uploads.js).
  function entryReady(entry) {
    return !entry.uploads || entry.uploads.every(function (u) { return u.state === "complete" || u.state === "cancelled" || u.state === "refused"; });
  }

  function sendEntry(entry) {
    if (!entryReady(entry)) return false;
    var frame = { type: "message.send", conversation: conversationId, client_id: entry.client_id, body: entry.body };
    if (entry.uploads) {
      frame.attachments = entry.uploads.filter(function (u) { return u.state === "complete"; }).map(function (u) { return u.upload_id; });
      if (!frame.attachments.length && !entry.body) {
        // Nothing left to send: a refused file stays on show (with its reason) until dismissed.
        if (!entry.uploads.some(function (u) { return u.state === "refused"; })) removeEntry(entry.client_id);
        return false;
      }
    }
    if (entry.card) frame.card = entry.card;
    return socket.send(frame);
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
      sender.textContent = m.sender_name || (m.kind === "assistant" ? labels.assistant : "");
      var time = document.createElement("time");
      time.dateTime = m.created_at || "";
      time.textContent = m.created_at ? timeText(m.created_at) : "";
      meta.append(sender, " ", time);
      li.append(meta);
    }
    if (m.kind === "order_card") li.append(buildOrderCard(m.data || {}));
    else if (m.kind === "product_card") li.append(buildProductCard(m.data || {}));
    else if (m.body || !(m.attachments && m.attachments.length) && !m.uploads) {
      var body = document.createElement("div");
      body.className = "body";
      body.textContent = m.body;
      li.append(body);
    }
    if (m.kind === "assistant") li.append(buildAssistantExtras(m.data || {}));
    if (m.attachments && m.attachments.length) {
      var box = document.createElement("div");
      box.className = "attachments";
      box.setAttribute("data-attachments", "");
      m.attachments.forEach(function (a) { box.append(buildAttachment(a)); });
      li.append(box);
    }
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

  // --- attachments and cards (the same markup as messaging/_attachment.html and the card templates) ----
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function buildAttachment(a) {
    var up = labels.upload || {};
    var urls = a.urls || {};
    var figure = el("figure", { "class": "attachment kind-" + a.kind, "data-attachment-id": a.id, "data-kind": a.kind, "data-status": a.status, "data-testid": "attachment" });
    if (a.status === "processing") {
      var state = el("div", { "class": "attachment-state", "data-testid": "attachment-processing" });
      state.append(el("span", { "class": "spinner", "aria-hidden": "true" }), " " + up.processing);
      figure.append(state);
    } else if (a.status === "failed") {
      var failed = el("div", { "class": "attachment-state failed", "data-testid": "attachment-failed" }, a.failure_reason + " ");
      failed.append(el("button", { type: "button", "class": "link", "data-attachment-retry": "", "data-testid": "attachment-retry" }, up.retry));
      figure.append(failed);
    } else if (a.kind === "image") {
      var link = el("a", { href: urls.thumbnail_large || urls.original, "data-lightbox": "", "data-testid": "attachment-image" });
      link.append(el("img", { src: urls.thumbnail_small || urls.original, alt: a.filename || "", loading: "lazy", width: a.width, height: a.height }));
      figure.append(link);
    } else if (a.kind === "video") {
      figure.append(el("video", { controls: "", preload: "metadata", playsinline: "", poster: urls.poster, src: urls.playable || urls.original, "data-testid": "attachment-video" }));
    } else if (a.kind === "audio") {
      figure.append(el("audio", { controls: "", preload: "metadata", src: urls.playable || urls.original, "data-testid": "attachment-audio" }));
    } else {
      figure.append(el("a", { "class": "attachment-file", href: urls.original, target: "_blank", rel: "noopener", "data-testid": "attachment-pdf" }, "PDF · " + (a.filename || up.document)));
    }
    return figure;
  }

  function buildOrderCard(card) {
    var box = el("div", { "class": "card-message order", "data-testid": "order-card-message" });
    var head = el("div", { "class": "card-message-head" }, labels.order + " ");
    head.append(el("strong", {}, card.order_no));
    var items = el("ul", { "class": "card-message-items" });
    (card.items || []).forEach(function (item) {
      var li = el("li");
      if (item.image_url) li.append(el("img", { src: item.image_url, alt: "", width: 40, height: 40 }));
      li.append(el("span", { "class": "grow" }, item.title + " × " + item.quantity), el("span", {}, item.unit_price));
      items.append(li);
    });
    var foot = el("div", { "class": "card-message-foot" }, labels.paid_total + " ");
    foot.append(el("strong", {}, card.paid_total));
    box.append(head, items, foot);
    return box;
  }

  // The triage assistant's order card(s), quick replies and upload button (messaging/_assistant_message.html).
  function buildAssistantExtras(data) {
    var box = el("div", { "class": "assistant-extras", "data-testid": "assistant-extras" });
    if (data.order) box.append(buildOrderCard(data.order));
    if (data.orders && data.orders.length) {
      var orders = el("div", { "class": "assistant-orders" });
      data.orders.forEach(function (card) {
        var safe = /^\/[^\/]/.test(card.url || "") ? card.url : "#";
        var link = el("a", { "class": "card-message" + (card.current ? " current" : ""), href: safe, "data-testid": "assistant-order" });
        var head = el("span", { "class": "card-message-head" }, labels.order + " ");
        head.append(el("strong", {}, card.order_no));
        var items = (card.items || []).map(function (item) { return item.title + " × " + item.quantity; }).join("，");
        link.append(head, el("span", { "class": "card-message-items" }, items), el("span", { "class": "card-message-foot" }, card.paid_total));
        orders.append(link);
      });
      box.append(orders);
    }
    if (userId !== buyerId) return box;
    if (data.quick_replies && data.quick_replies.length) {
      var replies = el("div", { "class": "quick-replies" });
      data.quick_replies.forEach(function (reply) {
        replies.append(el("button", { type: "button", "class": "quick-reply", "data-quick-reply": reply.label, "data-reply-id": reply.id, "data-testid": "quick-reply" }, reply.label));
      });
      box.append(replies);
    }
    if (data.upload) box.append(el("button", { type: "button", "class": "assistant-upload", "data-assistant-upload": "", "data-testid": "assistant-upload" }, labels.assistant_upload));
    return box;
  }

  function buildProductCard(card) {
    var safe = /^https?:\/\//i.test(card.url || "") ? card.url : "#";
    var link = el("a", { "class": "card-message product", href: safe, target: "_blank", rel: "noopener noreferrer", "data-testid": "product-card-message" });
    if (/^https?:\/\//i.test(card.image_url || "")) link.append(el("img", { src: card.image_url, alt: "", width: 64, height: 64, referrerpolicy: "no-referrer" }));
    var text = el("span", { "class": "grow" });
    text.append(el("span", { "class": "card-message-title" }, card.title));
    if (card.price) text.append(el("strong", { "class": "card-message-price" }, card.price));
    link.append(text);
    return link;
  }

  // An attachment's processing moved on: every place that shows it follows.
  socket.on("attachment.updated", function (frame) {
    var a = frame.attachment;
    list.querySelectorAll('[data-attachment-id="' + a.id + '"]').forEach(function (old) {
      if (old.dataset.status === a.status && a.status !== "processing") return;
      a.filename = a.filename || (old.querySelector("img") || {}).alt || "";
      old.replaceWith(buildAttachment(a));
    });
  });

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
    var kind = entry.card ? (entry.card.kind === "order" ? "order_card" : "product_card") : "text";
    var el = buildMessage({ kind: kind, sender_id: userId, sender_name: "", body: entry.body, client_id: entry.client_id, created_at: entry.created_at, uploads: entry.uploads, data: entry.card_preview });
    el.dataset.local = "1";
    setStatus(el, entry.state === "failed" ? "failed" : "sending", entry.reason);
    elements[entry.client_id] = el;
    list.append(el);
    if (entry.uploads && window.RefundChat.uploads) window.RefundChat.uploads.show(el, entry);
  }

  // For uploads.js and the card buttons: a new outbox entry, shown and sent as soon as it is ready.
  function addEntry(fields) {
    var entry = Object.assign({ client_id: newClientId(), body: "", created_at: new Date().toISOString(), state: "sending" }, fields);
    saveOutbox(loadOutbox().concat([entry]));
    showOutboxEntry(entry);
    scrollToEnd();
    sendEntry(entry);
    return entry;
  }

  function entryOf(clientId) {
    return loadOutbox().filter(function (e) { return e.client_id === clientId; })[0] || null;
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
    var shown = list.querySelector('[data-seq="' + m.seq + '"]');
    // Acked before this broadcast: a local bubble with upload tiles or a card preview gets the real rendering.
    if (shown && shown.dataset.local && (m.attachments && m.attachments.length || m.kind !== "text")) shown.remove();
    else if (shown) { reportPositions(); return; }
    var el = m.client_id ? elements[m.client_id] : null;
    if (el && !(m.attachments && m.attachments.length) && m.kind === "text") {
      el.dataset.seq = m.seq;
      delete el.dataset.local;
      removeEntry(m.client_id);
      el.remove();
    } else {
      if (el) { removeEntry(m.client_id); el.remove(); }
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
    if (frame.ref && frame.ref.indexOf("call:") === 0) return;  // a call's error: calls.js shows it
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

  // The assistant's quick replies are sent as ordinary messages (their label); its upload button opens the file picker.
  list.addEventListener("click", function (event) {
    var reply = event.target.closest("[data-quick-reply]");
    if (reply && form) { addEntry({ body: reply.dataset.quickReply }); return; }
    var upload = event.target.closest("[data-assistant-upload]");
    var picker = root.querySelector("[data-file-input]");
    if (upload && picker) picker.click();
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
      // A card or resident ID number: ask first (edit, or send it masked); the server masks it anyway.
      if (piiWarning && window.RefundChatPII && window.RefundChatPII.find(body).length) { warnSensitive(body); return; }
      sendText(body);
    });
    function sendText(body) {
      var entry = { client_id: newClientId(), body: body, created_at: new Date().toISOString(), state: "sending" };
      saveOutbox(loadOutbox().concat([entry]));
      showOutboxEntry(entry);
      scrollToEnd();
      sendEntry(entry);
      input.value = "";
      input.focus();
    }
    var piiWarning = root.querySelector("[data-pii-warning]");
    function warnSensitive(body) {
      var masked = window.RefundChatPII.mask(body);
      piiWarning.querySelector("[data-pii-preview]").textContent = masked;
      piiWarning.hidden = false;
      piiWarning.querySelector("[data-pii-send-masked]").onclick = function () {
        piiWarning.hidden = true;
        sendText(masked);
      };
      piiWarning.querySelector("[data-pii-edit]").onclick = function () {
        piiWarning.hidden = true;
        var first = window.RefundChatPII.find(input.value)[0];
        input.focus();
        if (first) input.setSelectionRange(first.start, first.end);
      };
    }
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

  // The buyer shows which order they mean; staff send a product link.
  var shareOrder = root.querySelector("[data-share-order]");
  if (shareOrder) shareOrder.addEventListener("click", function () { addEntry({ card: { kind: "order" } }); });
  var productForm = root.querySelector("[data-product-card]");
  if (productForm) {
    productForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var f = productForm.elements;
      var price = f.price.value.trim() ? Math.round(parseFloat(f.price.value.replace(",", ".")) * 100) : null;
      var card = { kind: "product", title: f.title.value.trim(), url: f.url.value.trim(), image_url: f.image_url.value.trim(), price_cents: isNaN(price) ? -1 : price };
      addEntry({ card: card, card_preview: { title: card.title, url: card.url, image_url: card.image_url, price: price !== null && !isNaN(price) ? "¥" + (price / 100).toFixed(2) : "" } });
      productForm.reset();
      productForm.closest("details").open = false;
    });
  }

  window.RefundChat.chat = {
    root: root, list: list, labels: labels, conversationId: conversationId, userId: userId,
    ticketId: Number(root.dataset.ticketId), addEntry: addEntry, entryOf: entryOf, updateEntry: updateEntry,
    removeEntry: removeEntry, sendEntry: sendEntry, outbox: loadOutbox, showError: showError, scrollToEnd: scrollToEnd,
    element: function (clientId) { return elements[clientId] || null; }, buildAttachment: buildAttachment,
  };

  loadOutbox().forEach(showOutboxEntry);
  scrollToEnd();
})();
