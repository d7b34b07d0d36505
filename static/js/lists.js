/* Live lists (the console queue, the buyer's tickets) and ticket sections: unread badges follow
 * `ticket.activity` and the user's own `receipt` frames without asking the server;
 * after a reconnect the list is fetched again, since frames sent while the socket
 * was down are gone. Rows carry data-conversation-id, data-last-seq and an
 * element [data-unread-badge]. */
(function () {
  "use strict";
  var containers = document.querySelectorAll("[data-live-list]");
  if (!containers.length) return;
  var socket = window.RefundChat.socket;

  function rowsOf(conversationId) {
    return document.querySelectorAll("[data-live-list] [data-conversation-id='" + conversationId + "']");
  }

  function setUnread(row, count) {
    row.dataset.unread = String(count);
    var badge = row.querySelector("[data-unread-badge]");
    if (!badge) return;
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
  }

  socket.on("ticket.activity", function (frame) {
    rowsOf(frame.conversation).forEach(function (row) {
      var last = Number(row.dataset.lastSeq) || 0;
      if (frame.seq <= last) return;  // already counted
      row.dataset.lastSeq = String(frame.seq);
      setUnread(row, frame.sender_id === socket.userId ? 0 : (Number(row.dataset.unread) || 0) + 1);
      var time = row.querySelector("[data-last-message]");
      if (time) {
        time.dateTime = frame.last_message_at;
        time.textContent = new Date(frame.last_message_at).toLocaleString(document.documentElement.lang, {
          month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
          timeZone: document.documentElement.dataset.timeZone,
        });
      }
    });
  });

  socket.on("receipt", function (frame) {
    if (frame.user_id !== socket.userId) return;
    rowsOf(frame.conversation).forEach(function (row) {
      if (frame.read_seq >= (Number(row.dataset.lastSeq) || 0)) setUnread(row, 0);
    });
  });

  var queued = null, timer = null;  // the containers to refresh, or "all"

  // Several frames about one change (queue, conversation, own sockets) make one request.
  function refetch(only) {
    queued = only === null || queued === "all" ? "all" : (queued || []).concat(only);
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      var which = queued;
      queued = null;
      load(which === "all" ? null : which);
    }, 150);
  }

  // A refresh must not sweep away a form the user is working in. An action form they opened stays open; one they
  // have typed in, chosen files in or are focused in is kept as it is (the very element, with its values, focus
  // and caret) in place of its fresh copy, while the rest of the section (status, tracker) updates around it.
  function edited(form) {
    // Filled in by the server with what the user typed into a refused try (tickets/views.py): theirs, too.
    if ("keptInput" in form.dataset) return true;
    return Array.prototype.some.call(form.querySelectorAll("input, select, textarea"), function (field) {
      if (field.type === "file") return !!(field.files && field.files.length);
      if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
      if (field.tagName === "SELECT") {
        return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return field.type !== "hidden" && field.value !== field.defaultValue;
    });
  }

  function replaceKeepingForms(container, replacement) {
    var focused = document.activeElement;
    var caret = focused && "selectionStart" in focused ? [focused.selectionStart, focused.selectionEnd] : null;
    var kept = [], reopen = [];
    container.querySelectorAll("details[open][data-testid]").forEach(function (form) {
      if (edited(form) || form.contains(focused)) kept.push(form); else reopen.push(form.dataset.testid);
    });
    container.replaceChildren.apply(container, Array.from(replacement.childNodes));
    reopen.forEach(function (id) {
      var form = container.querySelector("details[data-testid='" + id + "']");
      if (form) form.open = true;
    });
    kept.forEach(function (form) {
      // An action that is no longer offered goes: taking it would only be refused now.
      var fresh = container.querySelector("details[data-testid='" + form.dataset.testid + "']");
      if (fresh) fresh.replaceWith(form);
    });
    if (focused && focused !== document.activeElement && container.contains(focused)) {
      focused.focus();
      if (caret) { try { focused.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text field */ } }
    }
  }

  function load(only) {
    window.fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        containers.forEach(function (container) {
          if (only && only.indexOf(container) < 0) return;
          var replacement = fresh.querySelector("[data-live-list='" + container.dataset.liveList + "']");
          if (replacement) replaceKeepingForms(container, replacement);
        });
      })
      .catch(function () { /* the next reconnect tries again */ });
  }

  // ticket.activity comes only to sockets that ask for it: a chat tab without such rows would get
  // a frame per message for nothing.
  var hasRows = !!document.querySelector("[data-live-list] [data-conversation-id]");

  socket.onOpen(function () {
    if (hasRows) socket.send({ type: "lists.subscribe" });
    if (socket.opens > 1) { refetch(null); return; }
    // First connection: a ticket may have changed between the page's rendering and the socket
    // joining its groups, and that frame is gone; one request closes the gap.
    var ticketSections = Array.prototype.filter.call(containers, function (c) { return c.dataset.refreshOnTicket; });
    if (ticketSections.length) refetch(ticketSections);
  });

  // Sections about one ticket (its state, tracker and actions) follow its changes; sections about
  // all tickets (the queue's view counts) follow any change, at most every 2 s.
  var countsTimer = null;
  socket.on("ticket.updated", function (frame) {
    var matching = Array.prototype.filter.call(containers, function (c) {
      return c.dataset.refreshOnTicket === String(frame.ticket_id);
    });
    if (matching.length) refetch(matching);
    var counts = Array.prototype.filter.call(containers, function (c) { return "refreshOnAnyTicket" in c.dataset; });
    if (counts.length && countsTimer === null) {
      countsTimer = window.setTimeout(function () { countsTimer = null; load(counts); }, 2000);
    }
  });
})();
