/* The handoff board's behaviour on top of htmx (static/vendor/htmx-2.0.11).
 *
 * No inline scripts or event-handler attributes anywhere (a Content-Security-Policy will forbid
 * them), so everything the board does in the browser lives here:
 *  - htmx configuration: swap 400 (dialog errors) and 409 (conflict) answers; no eval, no inline
 *    styles, no scripts from responses;
 *  - dialogs: loaded into the card's <dialog> with hx-get, opened as modal here, closed with Esc or
 *    Cancel, focus returned to the button that opened them;
 *  - the 15 s auto-refresh: skipped while a dialog is open, while a request is in flight, or when
 *    the tab is hidden; it keeps what "Show more" loaded and keeps keyboard focus;
 *  - messages for what happened (live region) and focus on the moved card or the conflict.
 */
(function () {
  "use strict";

  if (!window.htmx) {
    return; // without htmx the forms post normally and the server redirects back
  }

  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "400", swap: true, error: false }, // a dialog with its errors
    { code: "409", swap: true, error: false }, // the card's real state and what happened
    { code: "[45]..", swap: false, error: true },
  ];
  htmx.config.allowEval = false;
  htmx.config.allowScriptTags = false;
  htmx.config.includeIndicatorStyles = false;

  const STAGES = ["mql", "sal", "sql", "recycled", "disqualified"];
  let pendingFocus = null;

  function status(message, kind) {
    const region = document.getElementById("board-status");
    if (!region) return;
    region.textContent = message;
    region.dataset.kind = kind || "info";
  }

  function focusWhenPresent(selector) {
    // The moved card arrives in the same swap that fired the event; wait for it briefly.
    pendingFocus = selector;
    const deadline = Date.now() + 1500;
    (function tryFocus() {
      if (pendingFocus !== selector) return;
      const el = document.querySelector(selector);
      if (el) {
        pendingFocus = null;
        el.focus({ preventScroll: false });
        if (el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
      } else if (Date.now() < deadline) {
        window.setTimeout(tryFocus, 30);
      }
    })();
  }

  function openDialog() {
    return document.querySelector("dialog[open]");
  }

  function busy(columns) {
    return columns.querySelector(".htmx-request") || document.querySelector(".board-filters.htmx-request");
  }

  // --- dialogs -------------------------------------------------------------------------------------

  document.addEventListener("htmx:afterSwap", function (evt) {
    const target = evt.detail.target;
    if (!(target instanceof HTMLDialogElement) || !target.classList.contains("action-dialog")) return;
    if (!target.open) {
      const opener = evt.detail.requestConfig && evt.detail.requestConfig.elt;
      const button = opener && opener.querySelector ? opener.querySelector("button") : null;
      target.dataset.opener = button && button.id ? button.id : "";
      target.showModal(); // focuses the field marked autofocus
    } else {
      // 400: the form came back with errors; focus the first field that needs fixing.
      const invalid = target.querySelector("[aria-invalid=true]");
      if (invalid) invalid.focus();
    }
  });

  document.addEventListener("click", function (evt) {
    const close = evt.target.closest("[data-close-dialog]");
    if (close) {
      const dialog = close.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  document.addEventListener(
    "close",
    function (evt) {
      const dialog = evt.target;
      if (!(dialog instanceof HTMLDialogElement)) return;
      const opener = dialog.dataset.opener && document.getElementById(dialog.dataset.opener);
      if (opener) opener.focus();
    },
    true // "close" does not bubble
  );

  // --- auto-refresh ----------------------------------------------------------------------------------

  document.addEventListener("htmx:beforeRequest", function (evt) {
    const elt = evt.detail.elt;
    if (elt.id !== "board-columns") return;
    if (openDialog() || document.hidden || busy(elt)) {
      evt.preventDefault(); // try again at the next tick
    }
  });

  document.addEventListener("htmx:configRequest", function (evt) {
    if (evt.detail.elt.id !== "board-columns") return;
    // Keep the cards "Show more" loaded: ask for as many as each column shows now (the server never
    // answers fewer than its page size, so a short column asks for nothing special).
    for (const stage of STAGES) {
      const cards = document.querySelectorAll("#cards-" + stage + " > article");
      if (cards.length) evt.detail.parameters["limit_" + stage] = String(cards.length);
    }
  });

  let focusedId = null;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    // A request that ended on the login page: the session expired; go there for real.
    const url = evt.detail.xhr && evt.detail.xhr.responseURL;
    if (url && new URL(url).pathname.startsWith("/login/")) {
      evt.detail.shouldSwap = false;
      window.location.assign(url);
      return;
    }
    if (evt.detail.target && evt.detail.target.id === "board-columns") {
      const active = document.activeElement;
      focusedId = active && active.id && evt.detail.target.contains(active) ? active.id : null;
    }
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    if (!focusedId) return;
    const el = document.getElementById(focusedId);
    focusedId = null;
    if (el && document.activeElement !== el) el.focus({ preventScroll: true });
  });

  // --- what happened -------------------------------------------------------------------------------

  document.addEventListener("handoff-moved", function (evt) {
    const detail = evt.detail || {};
    status(detail.message || "Done.", "ok");
    if (detail.id) focusWhenPresent("#handoff-" + detail.id);
  });

  document.addEventListener("handoff-conflict", function (evt) {
    const detail = evt.detail || {};
    status(detail.message || "Someone else changed this lead.", "conflict");
    if (detail.id) focusWhenPresent("#handoff-" + detail.id + " .conflict");
  });

  document.addEventListener("htmx:responseError", function (evt) {
    const code = evt.detail.xhr.status;
    const elt = evt.detail.elt;
    if (elt && elt.id === "board-columns") {
      status("The board could not refresh (" + code + "). It will try again.", "error");
      return;
    }
    const card = elt && elt.closest ? elt.closest("article[data-handoff-id]") : null;
    const dialog = elt && elt.closest ? elt.closest("dialog") : null;
    if (dialog && dialog.open) dialog.close();
    if (code === 404 && card) {
      status("That lead is no longer on your board (it was reassigned or removed).", "error");
      card.remove();
    } else if (code === 403) {
      status("You may not do that.", "error");
    } else {
      status("Something went wrong (" + code + "). Nothing was changed; please try again.", "error");
    }
  });

  document.addEventListener("htmx:sendError", function () {
    status("The server could not be reached. Check your connection; nothing was changed.", "error");
  });
})();
