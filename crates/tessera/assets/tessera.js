// Tessera's pages work without this file; it only makes them nicer to use:
// - a "Show" button beside each password field marked data-reveal;
// - a form is sent once, however often its button is pressed.
// Served by Tessera itself (the Content-Security-Policy allows no other script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-reveal]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = "Show";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "Show password");
    button.addEventListener("click", () => {
      const shown = input.type === "text";
      input.type = shown ? "password" : "text";
      button.textContent = shown ? "Show" : "Hide";
      button.setAttribute("aria-pressed", String(!shown));
      button.setAttribute("aria-label", shown ? "Show password" : "Hide password");
      input.focus();
    });
    input.after(button);
  }

  for (const form of document.querySelectorAll("form[method='post']")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "true";
      // Not `disabled`: a disabled submitter would drop its name=value from the form.
      if (event.submitter) {
        event.submitter.setAttribute("aria-busy", "true");
      }
      for (const input of form.querySelectorAll("input[data-reveal]")) {
        input.type = "password";
      }
    });
  }
});

// Coming back with the Back button shows the page from the cache: let its forms be sent again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) {
    return;
  }
  for (const form of document.querySelectorAll("form[data-sent]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("[aria-busy]")) {
      button.removeAttribute("aria-busy");
    }
  }
});
