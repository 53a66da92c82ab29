// The admin console's script. The console works without it; it only adds:
// - copy buttons: a button[data-copy="ID"] copies the value (or text) of the element ID.
// Served by Tessera itself (the Content-Security-Policy allows no other script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const target = document.getElementById(button.dataset.copy);
    if (!target) {
      continue;
    }
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const text = "value" in target ? target.value : target.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        // No clipboard access (an http page, a denied permission): select it for Ctrl+C.
        if (typeof target.select === "function") {
          target.select();
        }
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => {
        button.textContent = label;
      }, 2000);
    });
  }
});
