/* Canned replies in the console composer: "/" at the start of the message opens a picker with
 * fuzzy search over the replies the page embeds (#canned-replies, variables already filled by the
 * server); Enter or a click puts the reply's text in the composer, Esc closes. chat.js still sends. */
(function () {
  "use strict";
  var data = document.getElementById("canned-replies");
  var input = document.querySelector("[data-composer] textarea[data-testid=chat-input]");
  if (!data || !input) return;
  var replies = JSON.parse(data.textContent);
  var labelsEl = document.getElementById("canned-labels");
  var labels = labelsEl ? JSON.parse(labelsEl.textContent) : { empty: "", hint: "", team: "" };
  var form = input.closest("[data-composer]");

  var picker = document.createElement("div");
  picker.className = "canned-picker";
  picker.hidden = true;
  picker.setAttribute("data-testid", "canned-picker");
  var list = document.createElement("ul");
  list.setAttribute("role", "listbox");
  list.id = "canned-picker-list";
  var hint = document.createElement("div");
  hint.className = "canned-hint small muted";
  hint.textContent = labels.hint;
  picker.append(list, hint);
  form.style.position = "relative";
  form.prepend(picker);
  input.setAttribute("aria-controls", list.id);

  var shown = [];
  var active = 0;

  // Subsequence match: every query character in order; contiguous runs and early matches score higher.
  function score(query, text) {
    if (!query) return 1;
    var q = query.toLowerCase(), t = text.toLowerCase();
    var at = t.indexOf(q);
    if (at >= 0) return 1000 - at;
    var total = 0, pos = -1, run = 0;
    for (var i = 0; i < q.length; i++) {
      var next = t.indexOf(q[i], pos + 1);
      if (next < 0) return 0;
      run = next === pos + 1 ? run + 1 : 0;
      total += 1 + run * 2 - Math.min(next - pos, 10) / 10;
      pos = next;
    }
    return total;
  }

  function matches(query) {
    return replies
      .map(function (reply, index) {
        var best = Math.max(score(query, reply.title) * 2, score(query, reply.text));
        return { reply: reply, score: best, index: index };
      })
      .filter(function (m) { return m.score > 0; })
      .sort(function (a, b) { return b.score - a.score || a.index - b.index; })
      .slice(0, 8)
      .map(function (m) { return m.reply; });
  }

  function render() {
    list.textContent = "";
    if (!shown.length) {
      var none = document.createElement("li");
      none.className = "muted small";
      none.textContent = labels.empty;
      list.append(none);
      return;
    }
    shown.forEach(function (reply, i) {
      var item = document.createElement("li");
      item.setAttribute("role", "option");
      item.setAttribute("data-testid", "canned-option");
      item.setAttribute("aria-selected", i === active ? "true" : "false");
      item.className = i === active ? "active" : "";
      var title = document.createElement("strong");
      title.textContent = reply.title;
      var meta = document.createElement("span");
      meta.className = "muted small";
      meta.textContent = " " + (reply.language_label || reply.language) + (reply.team ? " · " + labels.team : "");
      var text = document.createElement("div");
      text.className = "small canned-preview";
      text.textContent = reply.text;
      item.append(title, meta, text);
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();  // keep the focus in the composer
        choose(reply);
      });
      list.append(item);
    });
  }

  function query() {
    var value = input.value;
    return value.charAt(0) === "/" && value.indexOf("\n") < 0 ? value.slice(1) : null;
  }

  function update() {
    var q = query();
    if (q === null) { close(); return; }
    shown = matches(q.trim());
    active = 0;
    picker.hidden = false;
    input.setAttribute("aria-expanded", "true");
    render();
  }

  function close() {
    picker.hidden = true;
    input.setAttribute("aria-expanded", "false");
  }

  function choose(reply) {
    input.value = reply.text;
    close();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    // Let the composer (chat.js) resize and announce typing as for typed text.
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  input.addEventListener("input", update);
  input.addEventListener("blur", function () { window.setTimeout(close, 150); });

  // Capture phase on the form: runs before the textarea's own handlers (chat.js sends on Enter).
  form.addEventListener("keydown", function (event) {
    if (event.target !== input || picker.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!shown.length) return;
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      if (shown.length) choose(shown[active]);
      else close();
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);
})();
