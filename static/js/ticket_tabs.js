/* The agent's ticket tabs at the top of the console pages ([data-ticket-tabs], console/_ticket_tabs.html).
 *
 * Every ticket the agent opens joins the strip; the strip is kept per agent in localStorage
 * ("refundchat:tabs:<user id>"), so it survives reloads and is shared by the agent's browser tabs.
 * At most MAX_TABS: opening one more drops the oldest unpinned tab (never the current one).
 * The composer's draft of each ticket is kept ("refundchat:draft:<user id>:<ticket id>"): saved on
 * input, restored on load, cleared once chat.js has sent it. A `ticket.activity` frame from a tab's
 * buyer, while that ticket is not the current one, puts an unread dot on its tab; opening it clears it.
 * Alt+1..9 opens the tab at that position. */
(function () {
  "use strict";
  var root = document.querySelector("[data-ticket-tabs]");
  if (!root) return;
  var MAX_TABS = 10;
  var list = root.querySelector("[data-ticket-tabs-list]");
  var data = root.dataset;
  var userId = data.userId;
  var storeKey = "refundchat:tabs:" + userId;
  var currentId = data.currentId ? Number(data.currentId) : null;

  function load() {
    try {
      var tabs = JSON.parse(window.localStorage.getItem(storeKey));
      return Array.isArray(tabs) ? tabs : [];
    } catch (e) { return []; }
  }

  function save(tabs) {
    try { window.localStorage.setItem(storeKey, JSON.stringify(tabs)); } catch (e) { /* storage full or disabled */ }
  }

  // Read, change and write in one go, so two pages of the same agent do not undo each other's changes.
  function update(change) {
    var tabs = load();
    var result = change(tabs);
    save(result || tabs);
    render();
  }

  function evict(tabs) {
    while (tabs.length > MAX_TABS) {
      var candidates = tabs.filter(function (t) { return t.id !== currentId; });
      var unpinned = candidates.filter(function (t) { return !t.pinned; });
      var pool = unpinned.length ? unpinned : candidates;
      var oldest = pool.reduce(function (a, b) { return (a.openedAt || 0) <= (b.openedAt || 0) ? a : b; });
      tabs.splice(tabs.indexOf(oldest), 1);
    }
    return tabs;
  }

  function find(tabs, id) {
    return tabs.filter(function (t) { return t.id === id; })[0] || null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function pinIcon() {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", "M9 3h6l-1 6 4 4v2H6v-2l4-4zM12 15v6");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.8");
    path.setAttribute("stroke-linejoin", "round");
    path.setAttribute("stroke-linecap", "round");
    svg.appendChild(path);
    return svg;
  }

  function render() {
    var tabs = load();
    list.textContent = "";
    root.hidden = tabs.length === 0;
    tabs.forEach(function (tab, index) {
      var current = tab.id === currentId;
      var item = el("li", "ticket-tab" + (current ? " current" : "") + (tab.pinned ? " pinned" : ""));
      item.dataset.ticketId = String(tab.id);
      item.setAttribute("data-testid", "ticket-tab");
      var link = el("a", "ticket-tab-link");
      link.href = tab.url;
      if (current) link.setAttribute("aria-current", "page");
      if (index < 9) link.title = "Alt+" + (index + 1);
      var dot = el("span", "ticket-tab-dot");
      dot.setAttribute("data-testid", "ticket-tab-unread");
      dot.setAttribute("role", "img");
      dot.setAttribute("aria-label", data.labelUnread);
      dot.title = data.labelUnread;
      dot.hidden = !tab.unread;
      link.appendChild(dot);
      link.appendChild(el("strong", "ticket-tab-number", tab.number));
      link.appendChild(el("span", "ticket-tab-buyer", tab.buyer));
      var status = el("span", "badge status-" + tab.status, tab.statusDisplay);
      status.setAttribute("data-testid", "ticket-tab-status");
      link.appendChild(status);
      item.appendChild(link);
      var pin = el("button", "ticket-tab-pin link");
      pin.appendChild(pinIcon());
      pin.type = "button";
      pin.setAttribute("aria-pressed", tab.pinned ? "true" : "false");
      pin.setAttribute("aria-label", tab.pinned ? data.labelUnpin : data.labelPin);
      pin.title = pin.getAttribute("aria-label");
      pin.setAttribute("data-testid", "ticket-tab-pin");
      pin.addEventListener("click", function () {
        update(function (all) { var t = find(all, tab.id); if (t) t.pinned = !t.pinned; });
      });
      item.appendChild(pin);
      var close = el("button", "ticket-tab-close link", "×");
      close.type = "button";
      close.setAttribute("aria-label", data.labelClose + " " + tab.number);
      close.title = data.labelClose;
      close.setAttribute("data-testid", "ticket-tab-close");
      close.addEventListener("click", function () { closeTab(tab.id); });
      item.appendChild(close);
      list.appendChild(item);
      if (current && list.scrollWidth > list.clientWidth) {  // on a narrow screen, show the current tab
        list.scrollLeft = item.offsetLeft - list.offsetLeft - 8;
      }
    });
  }

  function closeTab(id) {
    var next = null;
    update(function (tabs) {
      var index = tabs.map(function (t) { return t.id; }).indexOf(id);
      if (index < 0) return tabs;
      tabs.splice(index, 1);
      if (id === currentId) next = tabs[Math.min(index, tabs.length - 1)] || null;
      return tabs;
    });
    // Closing the ticket on screen opens its neighbour, or the queue when it was the last one.
    if (id === currentId) window.location.assign(next ? next.url : data.queueUrl);
  }

  // This page's ticket joins the strip (or is refreshed in it) and is read.
  if (currentId !== null) {
    update(function (tabs) {
      var tab = find(tabs, currentId);
      if (!tab) {
        tab = { id: currentId, pinned: false, openedAt: Date.now() };
        tabs.push(tab);
      }
      tab.number = data.currentNumber;
      tab.url = data.currentUrl;
      tab.buyer = data.currentBuyer;
      tab.buyerId = Number(data.currentBuyerId);
      tab.status = data.currentStatus;
      tab.statusDisplay = data.currentStatusDisplay;
      tab.unread = false;
      return evict(tabs);
    });
  } else {
    render();
  }

  // Another page of this agent changed the strip.
  window.addEventListener("storage", function (event) { if (event.key === storeKey) render(); });

  // Alt+1..9: the tab at that position (event.code: Alt changes event.key on some layouts).
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var match = /^(?:Digit|Numpad)([1-9])$/.exec(event.code || "");
    if (!match) return;
    var tab = load()[Number(match[1]) - 1];
    if (!tab) return;
    event.preventDefault();
    if (tab.id !== currentId) window.location.assign(tab.url);
  });

  // --- the composer's draft of this ticket ------------------------------------------
  var input = currentId !== null ? document.querySelector("[data-composer] textarea[data-testid=chat-input]") : null;
  if (input) {
    var draftKey = "refundchat:draft:" + userId + ":" + currentId;
    var saveDraft = function () {
      try {
        if (input.value) window.localStorage.setItem(draftKey, input.value);
        else window.localStorage.removeItem(draftKey);
      } catch (e) { /* storage full or disabled: the draft lives as long as the page */ }
    };
    var draft = null;
    try { draft = window.localStorage.getItem(draftKey); } catch (e) { /* no storage */ }
    if (draft && !input.value) input.value = draft;
    input.addEventListener("input", saveDraft);
    // chat.js empties the textarea in its own submit handler (registered before this one) once the
    // message is in its outbox; a refused (empty, too long) message stays, and so does its draft.
    input.form.addEventListener("submit", function () { window.setTimeout(saveDraft, 0); });
  }

  // --- live: unread dots and statuses -----------------------------------------------
  var socket = window.RefundChat && window.RefundChat.socket;
  if (!socket) return;
  // ticket.activity frames about every ticket come to the consoles' queue group; the queue page
  // (queue.js) subscribes already, other console pages subscribe here, and only while there is
  // another tab to mark (a queue socket costs the server a rendered row per ticket change).
  if (!document.querySelector("[data-queue]")) {
    socket.onOpen(function () {
      if (load().some(function (t) { return t.id !== currentId; })) socket.send({ type: "queue.subscribe" });
    });
  }

  socket.on("ticket.activity", function (frame) {
    if (frame.ticket_id === currentId) return;
    var tab = find(load(), frame.ticket_id);
    if (!tab || tab.unread || frame.sender_id === null || frame.sender_id !== tab.buyerId) return;
    update(function (tabs) { var t = find(tabs, frame.ticket_id); if (t) t.unread = true; });
  });

  socket.on("ticket.updated", function (frame) {
    var tab = find(load(), frame.ticket_id);
    if (!tab || !frame.status_display || (tab.status === frame.status && tab.statusDisplay === frame.status_display)) return;
    update(function (tabs) {
      var t = find(tabs, frame.ticket_id);
      if (t) { t.status = frame.status; t.statusDisplay = frame.status_display; }
    });
  });
})();
