/* Voice and video calls between a ticket's buyer and its agent (protocol v2, docs/protocol.md#calls).
 *
 * Media goes browser to browser (WebRTC); the page's one socket carries the signalling. The caller asks for
 * the camera and microphone before it rings (so media flows as soon as the other side answers), and makes the
 * offer once the call is accepted; both sides trickle ICE candidates. A camera that is blocked or missing falls
 * back to voice, a blocked or missing microphone to the chat. While connected, getStats() feeds the quality
 * indicator and the sender's encoding parameters: audio first, video resolution lowered before its frame rate.
 *
 * On the console queue page only the list of buyers waiting for an agent ([data-call-requests]) is kept live. */
(function () {
  "use strict";
  var socket = window.RefundChat && window.RefundChat.socket;
  if (!socket) return;

  // --- the console queue: call requests of tickets with no agent -------------------------------------------
  var requests = document.querySelector("[data-call-requests]");
  if (requests) {
    var list = requests.querySelector("[data-call-requests-list]");
    var showRequest = function (call) {
      if (list.querySelector("[data-call-request='" + call.id + "']")) return;
      var li = document.createElement("li");
      li.dataset.callRequest = call.id;
      li.setAttribute("data-testid", "call-request");
      var strong = document.createElement("strong");
      strong.textContent = call.ticket_number;
      var link = document.createElement("a");
      link.href = requests.dataset.ticketUrl.replace("/0/", "/" + call.ticket_id + "/");
      link.textContent = requests.dataset.labelAnswer;
      li.append(strong, " · " + call.caller_name + " · " + requests.dataset["label" + (call.media === "video" ? "Video" : "Voice")] + " ", link);
      list.append(li);
      requests.hidden = false;
    };
    var dropRequest = function (call) {
      var li = list.querySelector("[data-call-request='" + call.id + "']");
      if (li) li.remove();
      requests.hidden = !list.children.length;
    };
    socket.on("call.incoming", function (frame) { if (frame.call.callee_id === null) showRequest(frame.call); });
    socket.on("call.accepted", function (frame) { dropRequest(frame.call); });
    socket.on("call.ended", function (frame) { dropRequest(frame.call); });
  }

  var root = document.querySelector("[data-calls]");
  if (!root) return;
  var labels = JSON.parse(document.getElementById("call-labels").textContent);
  var conversationId = Number(root.dataset.conversationId);
  var userId = Number(root.dataset.userId);
  var buyerId = Number(root.dataset.buyerId);
  var agentId = Number(root.dataset.agentId) || null;
  var $ = function (selector) { return root.querySelector(selector); };
  var banner = $("[data-call-banner]");
  var notice = $("[data-call-notice]");
  var view = $("[data-call-view]");
  var remoteVideo = $("[data-call-remote]");
  var localVideo = $("[data-call-local]");
  var statusBox = $("[data-call-status]");
  var timerBox = $("[data-call-timer]");
  var qualityBox = $("[data-call-quality]");
  var muteButton = $("[data-call-mute]");
  var cameraButton = $("[data-call-camera]");
  var switchButton = $("[data-call-switch]");

  var STATS_EVERY_MS = 2000;
  // Starting bitrates; lowered under loss (adapt()).
  var AUDIO_MAX_BITRATE = 64000;
  var VIDEO_MAX_BITRATE = 1200000;

  var current = null;   // the call this tab takes part in
  var incoming = null;  // the call ringing on this tab
  var ringTimer = null;

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key] === undefined ? "" : values[key]; });
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function showNotice(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  function setButtonsDisabled(disabled) {
    root.querySelectorAll("[data-call-start]").forEach(function (b) { b.disabled = disabled; });
  }

  function send(frame) {
    // The ref of an error frame is the client_id it answers: "call:…" tells chat.js the error is ours.
    frame.client_id = "call:" + frame.type;
    return socket.send(frame);
  }

  // --- media -------------------------------------------------------------------------------------------------
  function mediaError(error, kind) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") return kind + "_denied";
    return kind + "_missing";  // NotFoundError, OverconstrainedError, NotReadableError (in use elsewhere)
  }

  // The camera and microphone for `media`: a blocked or missing camera falls back to voice (with a notice);
  // no microphone means no call. Resolves {stream, media}.
  function getMedia(media, facingMode) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.RTCPeerConnection) {
      return Promise.reject(new Error(labels.unsupported));
    }
    var audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (media !== "video") {
      return navigator.mediaDevices.getUserMedia({ audio: audio, video: false })
        .then(function (stream) { return { stream: stream, media: "voice" }; })
        .catch(function (error) { throw new Error(labels[mediaError(error, "microphone")]); });
    }
    var video = { facingMode: facingMode || "user", width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    return navigator.mediaDevices.getUserMedia({ audio: audio, video: video })
      .then(function (stream) { return { stream: stream, media: "video" }; })
      .catch(function (videoError) {
        return navigator.mediaDevices.getUserMedia({ audio: audio, video: false })
          .then(function (stream) {
            showNotice(labels[mediaError(videoError, "camera")]);
            return { stream: stream, media: "voice" };
          })
          .catch(function (error) { throw new Error(labels[mediaError(error, "microphone")]); });
      });
  }

  function stopStream(stream) {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
  }

  // --- the view ------------------------------------------------------------------------------------------------
  function peerName(call) {
    return call.caller_id !== userId ? call.caller_name : root.dataset.peerName;
  }

  function openView(call, status) {
    view.dataset.media = call.media;
    view.dataset.localMedia = current.media;
    view.hidden = false;
    document.body.classList.add("in-call");
    $("[data-call-peer]").textContent = peerName(call);
    $("[data-call-avatar]").textContent = (peerName(call) || "?").slice(0, 1).toUpperCase();
    localVideo.srcObject = current.stream;
    cameraButton.hidden = current.media !== "video";
    setStatus(status);
    setButtonsDisabled(true);
  }

  function setStatus(text) {
    statusBox.textContent = text || "";
    statusBox.hidden = !text;
  }

  function startTimer(answeredAt) {
    var since = answeredAt ? Date.parse(answeredAt) : Date.now();
    if (isNaN(since) || since > Date.now()) since = Date.now();
    current.answeredAt = since;
    timerBox.hidden = false;
    var tick = function () { timerBox.textContent = clock((Date.now() - since) / 1000); };
    tick();
    window.clearInterval(current.timer);
    current.timer = window.setInterval(tick, 1000);
  }

  function showBanner(call) {
    if (current) return;  // in a call here: the server answers "busy" to others
    incoming = call;
    var key = call.callee_id === null ? "queue_request_" + call.media : "incoming_" + call.media;
    $("[data-call-banner-text]").textContent = fill(labels[key], { name: call.caller_name, ticket: call.ticket_number });
    banner.dataset.media = call.media;
    $("[data-call-accept-voice]").hidden = call.media !== "video";
    banner.hidden = false;
    window.clearTimeout(ringTimer);
    ringTimer = window.setTimeout(hideBanner, Math.max(1, call.expires_in || 45) * 1000);
  }

  function hideBanner() {
    incoming = null;
    banner.hidden = true;
    window.clearTimeout(ringTimer);
  }

  function endedText(call) {
    if (call.outcome === "ended") return fill(labels.ended, { duration: clock(call.duration || 0) });
    if (call.reason === "connection_lost") return labels.lost;
    if (call.outcome === "declined") return labels.declined;
    if (call.outcome === "busy") return labels.busy;
    if (call.outcome === "missed" && call.reason === "cancelled") return labels.cancelled;
    return labels.missed;
  }

  // --- the peer connection -------------------------------------------------------------------------------------
  function createPeer(iceServers) {
    var pc = new RTCPeerConnection({ iceServers: iceServers || [], bundlePolicy: "max-bundle" });
    current.pc = pc;
    current.remoteSet = false;
    current.pendingCandidates = [];
    current.stream.getTracks().forEach(function (track) {
      var sender = pc.addTrack(track, current.stream);
      if (track.kind === "video") current.videoSender = sender;
      else current.audioSender = sender;
    });
    pc.ontrack = function (event) {
      remoteVideo.srcObject = event.streams[0] || new MediaStream([event.track]);
      remoteVideo.play().catch(function () { /* autoplay refused: the controls' next tap plays it */ });
    };
    pc.onicecandidate = function (event) {
      send({ type: "call.signal", call: current.id, kind: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    pc.onconnectionstatechange = function () {
      if (!current || current.pc !== pc) return;
      root.dataset.connection = pc.connectionState;
      if (pc.connectionState === "connected") {
        setStatus("");
        applyEncodings();
        startStats();
      } else if (pc.connectionState === "disconnected") {
        setStatus(labels.reconnecting);
      } else if (pc.connectionState === "failed" && current.role === "caller") {
        setStatus(labels.reconnecting);
        makeOffer(true);  // a new path (e.g. from Wi-Fi to mobile data)
      }
    };
    (current.buffered || []).splice(0).forEach(handleSignal);
    return pc;
  }

  function makeOffer(iceRestart) {
    var pc = current.pc;
    pc.createOffer(iceRestart ? { iceRestart: true } : {})
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { send({ type: "call.signal", call: current.id, kind: "offer", sdp: pc.localDescription.sdp }); })
      .catch(function () { fail(); });
  }

  function handleSignal(frame) {
    var pc = current.pc;
    if (!pc) { (current.buffered = current.buffered || []).push(frame); return; }
    if (frame.kind === "offer" || frame.kind === "answer") {
      pc.setRemoteDescription({ type: frame.kind, sdp: frame.sdp })
        .then(function () {
          current.remoteSet = true;
          current.pendingCandidates.splice(0).forEach(function (c) { pc.addIceCandidate(c).catch(function () {}); });
          if (frame.kind !== "offer") return null;
          return pc.createAnswer()
            .then(function (answer) { return pc.setLocalDescription(answer); })
            .then(function () { send({ type: "call.signal", call: current.id, kind: "answer", sdp: pc.localDescription.sdp }); });
        })
        .catch(function () { fail(); });
    } else if (frame.kind === "candidate") {
      var candidate = frame.candidate || null;
      if (!current.remoteSet) current.pendingCandidates.push(candidate);
      else pc.addIceCandidate(candidate).catch(function () {});
    }
  }

  // Audio matters most: it goes first on the wire, and video gives up resolution before frame rate.
  function applyEncodings() {
    setEncoding(current.audioSender, { maxBitrate: AUDIO_MAX_BITRATE, priority: "high", networkPriority: "high" });
    setEncoding(current.videoSender, { maxBitrate: VIDEO_MAX_BITRATE, scaleResolutionDownBy: 1, priority: "low", networkPriority: "low" }, "maintain-framerate");
    current.videoLevel = 0;
  }

  function setEncoding(sender, values, degradation) {
    if (!sender || !sender.getParameters) return;
    var params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    Object.keys(values).forEach(function (key) { params.encodings[0][key] = values[key]; });
    if (degradation) params.degradationPreference = degradation;
    sender.setParameters(params).catch(function () {
      // Older browsers refuse some fields: keep the bitrate at least.
      var fallback = sender.getParameters();
      if (!fallback.encodings || !fallback.encodings.length) return;
      fallback.encodings[0].maxBitrate = values.maxBitrate;
      sender.setParameters(fallback).catch(function () {});
    });
  }

  // Video steps down under loss or delay, and back up after a calm spell.
  var VIDEO_LEVELS = [
    { maxBitrate: VIDEO_MAX_BITRATE, scaleResolutionDownBy: 1 },
    { maxBitrate: 500000, scaleResolutionDownBy: 2 },
    { maxBitrate: 200000, scaleResolutionDownBy: 4 },
  ];

  function adapt(quality) {
    if (!current.videoSender) return;
    var level = current.videoLevel || 0;
    if (quality.level === "poor" && level < VIDEO_LEVELS.length - 1) level += 1;
    else if (quality.level === "good" && (current.calm = (current.calm || 0) + 1) >= 5 && level > 0) level -= 1;
    if (quality.level !== "good") current.calm = 0;
    if (level === current.videoLevel) return;
    current.videoLevel = level;
    current.calm = 0;
    setEncoding(current.videoSender, VIDEO_LEVELS[level]);
    root.dataset.videoLevel = level;
  }

  function startStats() {
    window.clearInterval(current.statsTimer);
    var last = null;
    current.statsTimer = window.setInterval(function () {
      if (!current || !current.pc) return;
      current.pc.getStats().then(function (report) {
        var now = { bytes: 0, received: 0, lost: 0, rtt: null, at: Date.now() };
        report.forEach(function (s) {
          if (s.type === "inbound-rtp") {
            now.bytes += s.bytesReceived || 0;
            now.received += s.packetsReceived || 0;
            now.lost += s.packetsLost || 0;
          } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
            now.rtt = s.currentRoundTripTime;
          } else if (s.type === "remote-inbound-rtp" && now.rtt === null && s.roundTripTime !== undefined) {
            now.rtt = s.roundTripTime;
          }
        });
        if (last) showQuality(measure(last, now));
        last = now;
      }).catch(function () {});
    }, STATS_EVERY_MS);
  }

  function measure(before, after) {
    var received = after.received - before.received, lost = Math.max(0, after.lost - before.lost);
    var loss = received + lost > 0 ? lost / (received + lost) : 0;
    var seconds = Math.max(0.001, (after.at - before.at) / 1000);
    var kbps = Math.max(0, (after.bytes - before.bytes) * 8 / 1000 / seconds);
    var rtt = after.rtt === null ? 0 : after.rtt;
    var level = rtt < 0.3 && loss < 0.02 ? "good" : (rtt < 0.6 && loss < 0.08 ? "fair" : "poor");
    return { rtt: rtt, loss: loss, kbps: kbps, level: level };
  }

  function showQuality(q) {
    qualityBox.hidden = false;
    qualityBox.dataset.level = q.level;
    var detail = fill(labels.stats, { rtt: Math.round(q.rtt * 1000), loss: (q.loss * 100).toFixed(1), kbps: Math.round(q.kbps) });
    qualityBox.title = labels["quality_" + q.level] + " · " + detail;
    $("[data-call-quality-text]").textContent = labels["quality_" + q.level];
    current.quality = q;
    adapt(q);
  }

  // --- life cycle --------------------------------------------------------------------------------------------
  function teardown(text) {
    if (current) {
      window.clearInterval(current.timer);
      window.clearInterval(current.statsTimer);
      if (current.pc) current.pc.close();
      stopStream(current.stream);
    }
    current = null;
    remoteVideo.srcObject = null;
    localVideo.srcObject = null;
    view.hidden = true;
    timerBox.hidden = true;
    qualityBox.hidden = true;
    document.body.classList.remove("in-call");
    muteButton.setAttribute("aria-pressed", "false");
    muteButton.querySelector("[data-label]").textContent = labels.mute;
    cameraButton.setAttribute("aria-pressed", "false");
    cameraButton.querySelector("[data-label]").textContent = labels.camera_off;
    delete root.dataset.connection;
    setButtonsDisabled(false);
    if (text !== undefined) showNotice(text);
  }

  function fail() {
    if (!current) return;
    if (current.id) send({ type: "call.hangup", call: current.id });
    teardown(labels.failed);
  }

  function startCall(media) {
    if (current) return;
    showNotice("");
    setButtonsDisabled(true);
    getMedia(media).then(function (got) {
      current = { id: null, role: "caller", media: got.media, stream: got.stream, state: "starting" };
      if (!send({ type: "call.start", conversation: conversationId, media: got.media })) {
        teardown(labels.failed);
      }
    }).catch(function (error) {
      setButtonsDisabled(false);
      showNotice(error.message);
    });
  }

  function acceptCall(voiceOnly) {
    var call = incoming;
    if (!call || current) return;
    hideBanner();
    getMedia(voiceOnly ? "voice" : call.media).then(function (got) {
      current = { id: call.id, role: "callee", media: got.media, stream: got.stream, state: "accepting", call: call };
      send({ type: "call.accept", call: call.id });
    }).catch(function (error) {
      send({ type: "call.decline", call: call.id });
      showNotice(error.message);
    });
  }

  // --- frames ------------------------------------------------------------------------------------------------
  socket.on("call.incoming", function (frame) {
    var call = frame.call;
    if (call.conversation !== conversationId || call.caller_id === userId) return;
    if (call.callee_id === null && root.dataset.canTakeQueued !== "1") return;  // staff who do not handle tickets
    showBanner(call);
  });

  socket.on("call.ringing", function (frame) {
    var call = frame.call;
    if (!current || current.state !== "starting" || call.conversation !== conversationId) return;
    current.id = call.id;
    current.state = "ringing";
    current.iceServers = frame.ice_servers;
    openView(call, call.callee_id === null ? labels.calling_queue : labels.calling);
  });

  socket.on("call.accepted", function (frame) {
    var call = frame.call;
    if (incoming && incoming.id === call.id && (!current || current.id !== call.id)) {
      hideBanner();
      showNotice(call.callee_id === userId ? labels.answered_elsewhere : "");
      return;
    }
    if (!current || call.conversation !== conversationId) return;
    if (current.state === "starting" && frame.ice_servers) {
      // Glare: the other side called at the same moment, and this start answered their call.
      current.id = call.id;
      current.role = call.caller_id === userId ? "caller" : "callee";
      current.state = "accepting";
    }
    if (current.id !== call.id || current.state === "active") return;
    if (current.role === "callee") {
      if (!frame.ice_servers) return;  // the copy for all tabs: this tab waits for its own answer
      current.state = "active";
      openView(call, labels.connecting);
      createPeer(frame.ice_servers);
    } else {
      current.state = "active";
      openView(call, labels.connecting);
      createPeer(frame.ice_servers || current.iceServers);
      makeOffer(false);
    }
    startTimer(call.answered_at);
  });

  socket.on("call.signal", function (frame) {
    if (!current || current.id !== frame.call) return;
    handleSignal(frame);
  });

  socket.on("call.ended", function (frame) {
    var call = frame.call;
    if (incoming && incoming.id === call.id) hideBanner();
    if (current && (current.id === call.id || (current.state === "starting" && call.caller_id === userId && call.conversation === conversationId))) {
      teardown(endedText(call));
    }
  });

  socket.on("error", function (frame) {
    if (!frame.ref || frame.ref.indexOf("call:") !== 0) return;
    if (frame.ref === "call:call.signal") return;  // a late candidate of a finished call
    if (current && (frame.ref === "call:call.start" || frame.ref === "call:call.accept")) teardown();
    showNotice(frame.code === "callee_offline" ? labels.agent_offline : frame.message);
  });

  // The socket came back: this tab carries the call again (media kept flowing meanwhile).
  socket.onOpen(function () {
    if (current && current.id && socket.opens > 1) send({ type: "call.resume", call: current.id });
  });

  // The agent's presence: the buyer cannot call an agent who is offline.
  socket.on("presence", function (frame) {
    if (userId !== buyerId || !agentId || frame.user_id !== agentId) return;
    root.dataset.agentStatus = frame.status;
    root.querySelectorAll("[data-call-start]").forEach(function (b) {
      b.disabled = Boolean(current) || frame.status === "offline";
      b.title = frame.status === "offline" ? labels.agent_offline : labels[b.dataset.callStart];
    });
  });

  socket.on("ticket.updated", function (frame) {
    if (frame.ticket_id === Number(root.dataset.ticketId)) agentId = frame.assigned_agent_id || null;
  });

  // --- controls ------------------------------------------------------------------------------------------------
  root.querySelectorAll("[data-call-start]").forEach(function (button) {
    button.addEventListener("click", function () { startCall(button.dataset.callStart); });
  });
  $("[data-call-accept]").addEventListener("click", function () { acceptCall(false); });
  $("[data-call-accept-voice]").addEventListener("click", function () { acceptCall(true); });
  $("[data-call-decline]").addEventListener("click", function () {
    if (incoming) send({ type: "call.decline", call: incoming.id });
    hideBanner();
  });
  $("[data-call-hangup]").addEventListener("click", function () {
    if (!current) return;
    if (current.id) send({ type: "call.hangup", call: current.id });
    var talked = current.answeredAt ? (Date.now() - current.answeredAt) / 1000 : null;
    teardown(talked === null ? labels.cancelled : fill(labels.ended, { duration: clock(talked) }));
  });
  muteButton.addEventListener("click", function () {
    if (!current) return;
    var muted = muteButton.getAttribute("aria-pressed") !== "true";
    current.stream.getAudioTracks().forEach(function (t) { t.enabled = !muted; });
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.querySelector("[data-label]").textContent = muted ? labels.unmute : labels.mute;
  });
  cameraButton.addEventListener("click", function () {
    if (!current) return;
    var off = cameraButton.getAttribute("aria-pressed") !== "true";
    current.stream.getVideoTracks().forEach(function (t) { t.enabled = !off; });
    cameraButton.setAttribute("aria-pressed", String(off));
    cameraButton.querySelector("[data-label]").textContent = off ? labels.camera_on : labels.camera_off;
    view.dataset.cameraOff = off ? "1" : "";
  });
  // Phones: front and back camera. The new track replaces the old one without renegotiation.
  switchButton.addEventListener("click", function () {
    if (!current || !current.videoSender) return;
    current.facing = current.facing === "environment" ? "user" : "environment";
    navigator.mediaDevices.getUserMedia({ video: { facingMode: { exact: current.facing } } }).then(function (stream) {
      var track = stream.getVideoTracks()[0];
      var old = current.stream.getVideoTracks()[0];
      return current.videoSender.replaceTrack(track).then(function () {
        if (old) { current.stream.removeTrack(old); old.stop(); }
        track.enabled = cameraButton.getAttribute("aria-pressed") !== "true";
        current.stream.addTrack(track);
        localVideo.srcObject = current.stream;
      });
    }).catch(function () { showNotice(labels.camera_missing); });
  });
  if (navigator.mediaDevices && navigator.mediaDevices.enumerateDevices) {
    navigator.mediaDevices.enumerateDevices().then(function (devices) {
      var cameras = devices.filter(function (d) { return d.kind === "videoinput"; }).length;
      switchButton.hidden = !(cameras > 1 && /Android|iPhone|iPad|Mobile/i.test(navigator.userAgent));
    }).catch(function () {});
  }

  // Closing the tab ends the call at once rather than after the grace period.
  window.addEventListener("pagehide", function () {
    if (current && current.id) send({ type: "call.hangup", call: current.id });
  });

  // A call already ringing when the page loaded.
  var ringing = document.getElementById("call-ringing");
  if (ringing) showBanner(JSON.parse(ringing.textContent));

  window.RefundChat.call = {
    state: function () { return current ? { id: current.id, role: current.role, media: current.media, state: current.state, quality: current.quality || null, videoLevel: current.videoLevel || 0 } : null; },
    peer: function () { return current && current.pc ? current.pc : null; },
    incoming: function () { return incoming; },
  };
})();
