/* The buyer's rating widget: sends the rating without leaving the chat, then shows the thanks.
 * Delegated from the document, since the ticket's live section is re-rendered on changes. */
(function () {
  "use strict";
  if (window.RefundChatCsat) return;
  window.RefundChatCsat = true;
  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("[data-csat-form]");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var error = form.querySelector("[data-csat-error]");
    button.disabled = true;
    window.fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
      .then(function (result) {
        if (!result.ok) {
          error.textContent = result.body.message || "";
          error.hidden = false;
          button.disabled = false;
          return;
        }
        var thanks = document.createElement("p");
        thanks.setAttribute("data-testid", "csat-done");
        thanks.textContent = result.body.message;
        form.replaceWith(thanks);
      })
      .catch(function () { form.submit(); });  // no JSON answer: fall back to the plain form post
  });
})();
