/* RefundChat realtime client: one WebSocket per tab at /ws/ (protocol v1, docs/protocol.md).
 * Reconnects with exponential backoff and jitter; on every (re)connect the
 * page's handlers re-subscribe with the last seq they hold, and the server sends
 * what they missed. */
(function () {
  "use strict";

  function RealtimeSocket() {
    this.handlers = {};
    this.openHandlers = [];
    this.attempt = 0;
    this.ws = null;
    this.userId = null;
    this.opens = 0;  // how many times the server said hello: more than 1 means a reconnect
    this.reconnectTimer = null;
    this.stateEl = document.querySelector("[data-testid=connection-state]");
  }

  RealtimeSocket.prototype.on = function (type, handler) {
    (this.handlers[type] = this.handlers[type] || []).push(handler);
  };

  // Called after every successful (re)connect, once the server said hello.
  RealtimeSocket.prototype.onOpen = function (handler) {
    this.openHandlers.push(handler);
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.helloed) handler();
  };

  RealtimeSocket.prototype.connect = function () {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/ws/");
    this.ws = ws;
    this.helloed = false;
    ws.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "hello") {
        self.attempt = 0;
        self.helloed = true;
        self.userId = frame.user_id;
        self.opens += 1;
        self.setConnected(true);
        self.openHandlers.forEach(function (h) { h(); });
      }
      (self.handlers[frame.type] || []).forEach(function (h) { h(frame); });
    });
    ws.addEventListener("close", function (event) {
      if (self.ws !== ws) return;  // an old socket, already replaced
      self.setConnected(false);
      if (event.code === 4401) { window.location.reload(); return; }  // session ended: log in again
      // 1012 "service restart": this server process is stopping (refundchat/serve.py) and the others are up;
      // reconnect at once through the load balancer, without the backoff meant for an outage.
      if (event.code === 1012) { self.reconnectNow(); return; }
      self.scheduleReconnect();
    });
  };

  RealtimeSocket.prototype.scheduleReconnect = function () {
    var self = this;
    var base = Math.min(30000, 500 * Math.pow(2, this.attempt));
    var delay = base / 2 + Math.random() * base / 2;  // "equal jitter"
    this.attempt += 1;
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = window.setTimeout(function () { self.connect(); }, delay);
  };

  // The network came back: reconnect now instead of waiting out the backoff.
  RealtimeSocket.prototype.reconnectNow = function () {
    if (this.isOpen() || (this.ws && this.ws.readyState === WebSocket.CONNECTING)) return;
    window.clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    this.connect();
  };

  // The network is gone: a socket may hang without noticing, so close it and show it.
  RealtimeSocket.prototype.dropNow = function () {
    var ws = this.ws;
    if (!ws || ws.readyState > WebSocket.OPEN) return;
    // Without a network the closing handshake may take long: treat the socket as gone now.
    this.ws = null;
    this.helloed = false;
    this.setConnected(false);
    this.scheduleReconnect();
    ws.close();
  };

  // Keeps proxies from closing an idle socket, and tells the server this socket lives.
  RealtimeSocket.prototype.heartbeat = function () {
    this.send({ type: "ping" });
  };

  RealtimeSocket.prototype.setConnected = function (connected) {
    if (!this.stateEl) return;
    // Only show the banner after a moment, so a quick reconnect goes unnoticed.
    window.clearTimeout(this.bannerTimer);
    var el = this.stateEl;
    if (connected) { el.hidden = true; return; }
    this.bannerTimer = window.setTimeout(function () { el.hidden = false; }, 1500);
  };

  RealtimeSocket.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.helloed) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  RealtimeSocket.prototype.isOpen = function () {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN && this.helloed);
  };

  window.RefundChat = window.RefundChat || {};
  window.RefundChat.socket = new RealtimeSocket();
  document.addEventListener("DOMContentLoaded", function () {
    var socket = window.RefundChat.socket;
    socket.connect();
    window.setInterval(function () { socket.heartbeat(); }, 30000);
    window.addEventListener("online", function () { socket.reconnectNow(); });
    window.addEventListener("offline", function () { socket.dropNow(); });
  });
})();

/* An agent's own status (online / away) in the console header: sent as presence.set,
 * and kept in step with the status announced to all of the agent's tabs. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var select = document.querySelector("[data-my-presence]");
  if (!select) return;
  var socket = window.RefundChat.socket;
  select.addEventListener("change", function () { socket.send({ type: "presence.set", status: select.value }); });
  socket.on("presence", function (frame) {
    if (frame.user_id === socket.userId && frame.status !== "offline") select.value = frame.status;
  });
});
