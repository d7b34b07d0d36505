/* Evidence in the chat (issue #4; docs/uploads.md, docs/protocol.md).
 *
 * Files chosen with the attach button, the camera, drag-and-drop or paste, and voice notes held down
 * on the microphone button, go to the server over tus (the vendored tus-js-client, resumable, in
 * 8 MiB chunks). Each selection becomes one message in chat.js's outbox: its bubble shows a tile per
 * file with its own progress, pause/resume and cancel (tus termination); when every file has arrived
 * the message is sent with their upload ids, and survives a reload or a lost network like a text
 * message. A reload loses the File objects, not the uploads: the tile asks for the same file again
 * and the upload goes on from the server's offset. Refusals are the server's own words, in the
 * user's language. Also here: the retry of a failed processing, the lightbox (with zoom) of the chat
 * and of the console's evidence gallery, and the gallery's live refresh. */
(function () {
  "use strict";
  var RC = window.RefundChat || {};
  var socket = RC.socket;
  var chat = RC.chat;

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function node(tag, attrs, text) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined) el.setAttribute(k, attrs[k]); });
    if (text) el.textContent = text;
    return el;
  }

  function formatSize(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  // --- Lightbox (chat and gallery): click to zoom, wheel to zoom, Esc to close ------------------------
  var box = document.querySelector("[data-lightbox-view]");
  var stage = box && box.querySelector("[data-lightbox-stage]");
  var zoom = 1;

  function openLightbox(link) {
    if (!box) return false;
    stage.replaceChildren();
    zoom = 1;
    var media;
    if (link.hasAttribute("data-lightbox-video")) {
      media = node("video", { src: link.getAttribute("href"), controls: "", autoplay: "", playsinline: "", poster: link.dataset.poster || null, "data-testid": "lightbox-video" });
    } else {
      media = node("img", { src: link.getAttribute("href"), alt: "", "data-testid": "lightbox-image" });
      media.addEventListener("click", function (event) {
        var rect = media.getBoundingClientRect();
        media.style.transformOrigin = ((event.clientX - rect.left) / rect.width * 100) + "% " + ((event.clientY - rect.top) / rect.height * 100) + "%";
        setZoom(zoom > 1 ? 1 : 2.5);
      });
    }
    stage.append(media);
    var download = box.querySelector("[data-lightbox-download]");
    download.hidden = !link.dataset.download;
    if (link.dataset.download) download.href = link.dataset.download;
    box.hidden = false;
    document.body.classList.add("lightbox-open");
    return true;
  }

  function setZoom(value) {
    zoom = Math.min(5, Math.max(1, value));
    var img = stage.querySelector("img");
    if (img) { img.style.transform = "scale(" + zoom + ")"; img.dataset.zoom = String(zoom); }
    stage.classList.toggle("zoomed", zoom > 1);
  }

  function closeLightbox() {
    if (!box || box.hidden) return;
    var video = stage.querySelector("video");
    if (video) video.pause();
    stage.replaceChildren();
    box.hidden = true;
    document.body.classList.remove("lightbox-open");
  }

  if (box) {
    box.querySelector("[data-lightbox-close]").addEventListener("click", closeLightbox);
    box.addEventListener("click", function (event) { if (event.target === box || event.target === stage) closeLightbox(); });
    stage.addEventListener("wheel", function (event) {
      if (!stage.querySelector("img")) return;
      event.preventDefault();
      setZoom(zoom * (event.deltaY < 0 ? 1.2 : 1 / 1.2));
    }, { passive: false });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape") closeLightbox(); });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-lightbox]");
    if (link && openLightbox(link)) { event.preventDefault(); return; }
    var retry = event.target.closest("[data-attachment-retry]");
    if (retry) retryProcessing(retry);
  });

  // --- A failed processing, run again ---------------------------------------------------------------
  function retryProcessing(button) {
    var figure = button.closest("[data-attachment-id]");
    button.disabled = true;
    window.fetch("/attachments/" + figure.dataset.attachmentId + "/retry", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      return response.ok ? response.json() : Promise.reject(response.status);
    }).then(function (payload) {
      if (figure.closest("[data-evidence]")) return;  // the gallery refreshes on the attachment.updated frame
      if (chat) {
        payload.filename = payload.filename || "";
        figure.replaceWith(chat.buildAttachment(payload));
      } else {
        figure.dataset.status = payload.status;
      }
    }).catch(function () { button.disabled = false; });
  }

  // --- The console's evidence gallery follows the ticket's attachments --------------------------------
  var gallery = document.querySelector("[data-evidence]");
  if (gallery && socket) {
    var galleryTimer = null;
    var refreshGallery = function () {
      window.clearTimeout(galleryTimer);
      galleryTimer = window.setTimeout(function () {
        window.fetch(window.location.href, { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
          .then(function (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-evidence]");
            // The server's escaped HTML, moved as parsed nodes: never re-parsed from a string here.
            if (fresh) gallery.replaceChildren.apply(gallery, Array.from(fresh.childNodes));
          })
          .catch(function () { /* the next frame or reconnect tries again */ });
      }, 400);
    };
    socket.on("attachment.updated", function (frame) {
      if (String(frame.attachment.ticket_id) === gallery.dataset.ticketId) refreshGallery();
    });
    socket.onOpen(function () { if (socket.opens > 1) refreshGallery(); });
  }

  // --- Attachments still processing when the socket (re)connects -------------------------------------
  // Their `attachment.updated` frame may have gone out while this page had no socket (before it subscribed,
  // or during a reconnect): the page as the server renders it now has their state.
  if (chat && socket) {
    socket.onOpen(function () {
      window.setTimeout(function () {
        var waiting = chat.list.querySelectorAll('[data-attachment-id][data-status="processing"]');
        if (!waiting.length) return;
        window.fetch(window.location.href, { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
          .then(function (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html");
            waiting.forEach(function (figure) {
              var now = fresh.querySelector('[data-messages] [data-attachment-id="' + figure.dataset.attachmentId + '"]');
              if (now && now.dataset.status !== "processing" && figure.isConnected) figure.replaceWith(document.importNode(now, true));
            });
          })
          .catch(function () { /* the next reconnect tries again */ });
      }, 1000);
    });
  }

  // --- The composer ---------------------------------------------------------------------------------
  if (!chat || !window.tus) return;
  var root = chat.root;
  var form = root.querySelector("[data-composer]");
  if (!form) return;
  var L = chat.labels.upload;
  var running = {};  // upload key -> {file, upload (tus.Upload), progress (0-100), offline}

  function newKey() { return Date.now().toString(36) + Math.random().toString(36).slice(2, 8); }

  function findUpload(entry, key) { return entry && (entry.uploads || []).filter(function (u) { return u.key === key; })[0]; }

  // Change one upload of an outbox entry, show it, and send the message once every file is settled.
  function change(clientId, key, changes) {
    var entry = chat.entryOf(clientId);
    var u = findUpload(entry, key);
    if (!u) return null;
    Object.assign(u, changes);
    chat.updateEntry(clientId, { uploads: entry.uploads });
    renderTile(clientId, u);
    if (changes.state === "complete" || changes.state === "cancelled" || changes.state === "refused") chat.sendEntry(entry);
    var el = chat.element(clientId);
    var settled = entry.uploads.every(function (x) { return x.state === "refused" || x.state === "cancelled"; });
    if (el && settled && !entry.body) {
      // Every file was refused: this bubble will not be sent.
      el.dataset.status = "failed";
      var label = el.querySelector("[data-status-label]");
      if (label) label.textContent = chat.labels.failed;
    }
    return u;
  }

  function show(el, entry) {
    var tiles = el.querySelector("[data-upload-tiles]");
    if (!tiles) {
      tiles = node("div", { "class": "upload-tiles", "data-upload-tiles": "" });
      el.insertBefore(tiles, el.querySelector(".status"));
    }
    entry.uploads.forEach(function (u) { renderTile(entry.client_id, u); });
  }

  function renderTile(clientId, u) {
    var el = chat.element(clientId);
    var tiles = el && el.querySelector("[data-upload-tiles]");
    if (!tiles) return;
    var tile = tiles.querySelector('[data-upload-key="' + u.key + '"]');
    if (u.state === "cancelled") { if (tile) tile.remove(); return; }
    var live = running[u.key];
    var state = u.state;
    if (!live && (state === "uploading" || state === "paused")) state = "interrupted";  // a reload took the file
    if (!tile) {
      tile = node("div", { "class": "upload-tile", "data-upload-key": u.key, "data-testid": "upload-tile" });
      var preview = node("div", { "class": "upload-preview" });
      if (live && /^image\/(jpeg|png|webp|gif)$/.test(u.type) && live.file.size < 30 * 1024 * 1024) {
        live.previewUrl = live.previewUrl || URL.createObjectURL(live.file);
        preview.append(node("img", { src: live.previewUrl, alt: "" }));
      } else {
        preview.textContent = (u.type.split("/")[0] || "file").slice(0, 5);
      }
      var info = node("div", { "class": "upload-info" });
      info.append(node("div", { "class": "upload-name" }, u.name), node("progress", { max: "100", value: "0", "data-testid": "upload-progress" }),
        node("div", { "class": "upload-label small", "data-upload-label": "", "data-testid": "upload-label" }));
      var actions = node("div", { "class": "upload-actions" });
      tile.append(preview, info, actions);
      tiles.append(tile);
    }
    tile.dataset.state = state;
    var percent = live ? live.progress : (u.size ? Math.floor((u.offset || 0) * 100 / u.size) : 0);
    var bar = tile.querySelector("progress");
    bar.value = state === "complete" ? 100 : percent;
    bar.hidden = state === "refused";
    var text = {
      uploading: L.uploading.replace("%(percent)s", percent + "%"),
      paused: L.paused + " · " + percent + "%" + (live && live.offline ? " · " + L.offline : ""),
      complete: L.processing,
      refused: u.error || L.failed,
      interrupted: L.interrupted,
    }[state] + (state === "uploading" || state === "paused" ? " · " + formatSize(u.size) : "");
    tile.querySelector("[data-upload-label]").textContent = text;
    var actions2 = tile.querySelector(".upload-actions");
    actions2.replaceChildren();
    function button(label, action, testid) {
      var b = node("button", { type: "button", "class": "link", "data-testid": testid }, label);
      b.addEventListener("click", function () { action(clientId, u.key); });
      actions2.append(b);
    }
    if (state === "uploading") button(L.pause, pause, "upload-pause");
    if (state === "paused") button(L.resume, resume, "upload-resume");
    if (state === "interrupted") button(L.choose_again, chooseAgain, "upload-choose-again");
    if (state !== "complete") button(L.cancel, cancel, "upload-cancel");
  }

  function start(clientId, key) {
    var entry = chat.entryOf(clientId);
    var u = findUpload(entry, key);
    var live = running[key];
    var upload = new window.tus.Upload(live.file, {
      endpoint: "/api/v1/uploads/",
      uploadUrl: u.url || null,
      // 8 MiB (the template's data-upload-chunk-size): behind Daphne a dropped connection loses the chunk in flight.
      chunkSize: Number(form.dataset.uploadChunkSize) || 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      headers: { "X-CSRFToken": csrfToken() },
      metadata: { ticket: String(chat.ticketId), filename: u.name || "file", filetype: u.type || "" },
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: function () {
        change(clientId, key, { url: upload.url, upload_id: upload.url.split("/").pop().split("?")[0] });
      },
      onProgress: function (sent, total) {
        live.progress = total ? Math.floor(sent * 100 / total) : 0;
        live.offline = false;
        var now = Date.now();
        // The offset is kept now and then, so a reloaded page shows roughly where the upload was.
        if (!live.savedAt || now - live.savedAt > 2000) { live.savedAt = now; change(clientId, key, { offset: sent }); }
        else renderTile(clientId, findUpload(chat.entryOf(clientId), key) || u);
      },
      onShouldRetry: function (error) {
        var status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        // A refusal is final; a conflict, a lock or a server hiccup is worth another go.
        return !(status >= 400 && status < 500 && status !== 409 && status !== 423 && status !== 429);
      },
      onError: function (error) {
        var response = error.originalResponse;
        var status = response ? response.getStatus() : 0;
        if (status >= 400 && status < 500) {
          var message = L.failed;
          try { message = JSON.parse(response.getBody()).message || message; } catch (e) { /* not ours */ }
          change(clientId, key, { state: "refused", error: message });
          chat.showError(u.name + ": " + message);
          return;
        }
        // The network or the server is gone for now: wait, and go on when it is back.
        live.offline = true;
        change(clientId, key, { state: "paused" });
      },
      onSuccess: function () {
        if (live.previewUrl) { URL.revokeObjectURL(live.previewUrl); live.previewUrl = null; }
        live.progress = 100;
        change(clientId, key, { state: "complete", offset: u.size });
      },
    });
    live.upload = upload;
    live.progress = live.progress || 0;
    if (u.url) { upload.start(); return; }
    // The same file chosen again (a reload, another tab): go on where the server is.
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    }, function () { upload.start(); });
  }

  function pause(clientId, key) {
    var live = running[key];
    if (live && live.upload) live.upload.abort(false);
    if (live) live.offline = false;
    change(clientId, key, { state: "paused" });
  }

  function resume(clientId, key) {
    var live = running[key];
    change(clientId, key, { state: "uploading" });
    if (live && live.upload) live.upload.start();
  }

  function cancel(clientId, key) {
    var live = running[key];
    if (live && live.upload) {
      live.upload.abort(true).catch(function () { /* the sweep removes what the server kept */ });
    } else {
      var u = findUpload(chat.entryOf(clientId), key);
      // After a reload there is no tus.Upload, but the server's upload can still be ended.
      if (u && u.url && window.tus.Upload.terminate) window.tus.Upload.terminate(u.url, { headers: { "X-CSRFToken": csrfToken() } }).catch(function () {});
    }
    if (live && live.previewUrl) URL.revokeObjectURL(live.previewUrl);
    delete running[key];
    change(clientId, key, { state: "cancelled" });
  }

  // --- Choosing files -------------------------------------------------------------------------------
  var picker = node("input", { type: "file", hidden: "" });
  picker.addEventListener("change", function () {
    var wanted = picker.wanted;
    picker.wanted = null;
    var file = picker.files[0];
    picker.value = "";
    if (wanted && file) resumeWith(wanted.clientId, wanted.key, file, true);
  });
  root.append(picker);

  function chooseAgain(clientId, key) {
    picker.wanted = { clientId: clientId, key: key };
    picker.click();
  }

  function resumeWith(clientId, key, file, insist) {
    var u = findUpload(chat.entryOf(clientId), key);
    if (!u) return false;
    if (file.name !== u.name || file.size !== u.size) {
      if (insist) chat.showError(L.not_same_file.replace("%(name)s", u.name));
      return false;
    }
    running[key] = { file: file, progress: u.size ? Math.floor((u.offset || 0) * 100 / u.size) : 0 };
    change(clientId, key, { state: "uploading" });
    start(clientId, key);
    return true;
  }

  // A file that an interrupted upload of the outbox was sending continues that upload.
  function resumeInterrupted(file) {
    var found = false;
    chat.outbox().forEach(function (entry) {
      (entry.uploads || []).forEach(function (u) {
        if (found || running[u.key] || (u.state !== "uploading" && u.state !== "paused")) return;
        if (u.name === file.name && u.size === file.size) found = resumeWith(entry.client_id, u.key, file, false);
      });
    });
    return found;
  }

  function handleFiles(fileList) {
    var files = Array.prototype.slice.call(fileList || []);
    if (!files.length) return;
    chat.showError("");
    files = files.filter(function (file) { return !resumeInterrupted(file); });
    if (!files.length) return;
    var uploads = files.map(function (file) {
      var key = newKey();
      running[key] = { file: file, progress: 0 };
      return { key: key, name: file.name || "file", size: file.size, type: file.type || "", state: "uploading", offset: 0, url: null, upload_id: null, error: "" };
    });
    var entry = chat.addEntry({ uploads: uploads });
    uploads.forEach(function (u) { start(entry.client_id, u.key); });
  }

  root.querySelectorAll("[data-file-input]").forEach(function (input) {
    input.addEventListener("change", function () {
      handleFiles(input.files);
      input.value = "";
    });
  });

  // Paste a screenshot or a copied file into the message box.
  form.querySelector("textarea").addEventListener("paste", function (event) {
    var files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) { event.preventDefault(); handleFiles(files); }
  });

  // Drag files onto the chat.
  var hint = root.querySelector("[data-drop-hint]");
  var depth = 0;
  function carriesFiles(event) { return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0; }
  root.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    root.classList.add("dragging");
    if (hint) hint.hidden = false;
  });
  root.addEventListener("dragover", function (event) { if (carriesFiles(event)) event.preventDefault(); });
  root.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) { root.classList.remove("dragging"); if (hint) hint.hidden = true; }
  });
  root.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    root.classList.remove("dragging");
    if (hint) hint.hidden = true;
    handleFiles(event.dataTransfer.files);
  });

  window.addEventListener("online", function () {
    Object.keys(running).forEach(function (key) {
      var live = running[key];
      if (live.offline && live.upload) { live.offline = false; live.upload.start(); }
    });
  });

  // --- Voice notes: hold to record, release to send, slide away (or Cancel) to throw away ----------
  var recordButton = root.querySelector("[data-record]");
  var bar = root.querySelector("[data-recording]");
  var timerText = bar && bar.querySelector("[data-recording-timer]");
  var MIN_MS = 700;
  var MAX_MS = 5 * 60 * 1000;
  var rec = null;

  function clock(ms) {
    var s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function startRecording() {
    if (rec) return;
    if (!navigator.mediaDevices || !window.MediaRecorder) { chat.showError(L.no_microphone); return; }
    chat.showError("");
    var mine = rec = { chunks: [], stop: null };
    recordButton.classList.add("recording-on");
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mine.stream = stream;
      if (mine.stop) { finish(mine); return; }  // released before the microphone was ready
      var type = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4"].filter(function (t) { return MediaRecorder.isTypeSupported(t); })[0];
      mine.recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      mine.recorder.addEventListener("dataavailable", function (event) { if (event.data.size) mine.chunks.push(event.data); });
      mine.recorder.addEventListener("stop", function () { finish(mine); });
      mine.recorder.start(250);
      mine.startedAt = Date.now();
      bar.hidden = false;
      timerText.textContent = clock(0);
      mine.ticker = window.setInterval(function () {
        var elapsed = Date.now() - mine.startedAt;
        timerText.textContent = clock(elapsed);
        if (elapsed >= MAX_MS) stopRecording(false);
      }, 200);
    }, function () {
      rec = null;
      recordButton.classList.remove("recording-on");
      chat.showError(L.no_microphone);
    });
  }

  function stopRecording(discard) {
    var mine = rec;
    if (!mine || mine.stop) return;
    mine.stop = discard ? "cancel" : "send";
    mine.duration = mine.startedAt ? Date.now() - mine.startedAt : 0;
    if (mine.recorder && mine.recorder.state !== "inactive") mine.recorder.stop();
    else if (mine.stream) finish(mine);
  }

  function finish(mine) {
    if (mine.finished) return;
    mine.finished = true;
    window.clearInterval(mine.ticker);
    if (mine.stream) mine.stream.getTracks().forEach(function (track) { track.stop(); });
    if (rec === mine) rec = null;
    bar.hidden = true;
    recordButton.classList.remove("recording-on");
    if (mine.stop !== "send") return;
    if (!mine.recorder || mine.duration < MIN_MS || !mine.chunks.length) { chat.showError(L.too_short); return; }
    var type = mine.recorder.mimeType || "audio/webm";
    var blob = new Blob(mine.chunks, { type: type });
    var stamp = new Date().toTimeString().slice(0, 8).replace(/:/g, "");
    var name = L.voice_note + " " + stamp + (/mp4/.test(type) ? ".m4a" : ".webm");
    handleFiles([new File([blob], name, { type: type.split(";")[0] })]);
  }

  if (recordButton && bar) {
    recordButton.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      event.preventDefault();
      // Touch captures the pointer to the button: release it, so sliding away is seen.
      if (recordButton.hasPointerCapture(event.pointerId)) recordButton.releasePointerCapture(event.pointerId);
      startRecording();
    });
    recordButton.addEventListener("pointerup", function () { stopRecording(false); });
    recordButton.addEventListener("pointerleave", function () { stopRecording(true); });
    recordButton.addEventListener("pointercancel", function () { stopRecording(true); });
    recordButton.addEventListener("contextmenu", function (event) { event.preventDefault(); });
    recordButton.addEventListener("keydown", function (event) {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) { event.preventDefault(); startRecording(); }
    });
    recordButton.addEventListener("keyup", function (event) {
      if (event.key === " " || event.key === "Enter") { event.preventDefault(); stopRecording(false); }
    });
    bar.querySelector("[data-recording-cancel]").addEventListener("click", function () { stopRecording(true); });
  }

  // --- Entries restored from the outbox after a reload ------------------------------------------------
  RC.uploads = { show: show, handleFiles: handleFiles };
  chat.outbox().forEach(function (entry) {
    var el = chat.element(entry.client_id);
    if (entry.uploads && el) show(el, entry);
  });
})();
