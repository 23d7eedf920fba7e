// cabinet-db admin panel: the little the pages do in the browser (served as a file: the
// Content-Security-Policy allows no inline script). Everything works without it.
"use strict";

// A live character count under a text area: <output data-count-for="ID">.
function updateCounts(root) {
  for (const out of root.querySelectorAll("output[data-count-for]")) {
    const area = document.getElementById(out.dataset.countFor);
    if (!area) continue;
    const show = () => { out.textContent = Array.from(area.value).length.toLocaleString() + " characters"; };
    if (!area.dataset.counted) {
      area.addEventListener("input", show);
      area.dataset.counted = "1";
    }
    show();
  }
}

// A button stays disabled until its form's confirmation field holds the expected text:
// <input data-confirm-text="acme"> (the server checks it again).
function wireConfirmations(root) {
  for (const input of root.querySelectorAll("input[data-confirm-text]")) {
    const button = input.form && input.form.querySelector("button[type=submit]");
    if (!button) continue;
    const check = () => { button.disabled = input.value !== input.dataset.confirmText; };
    input.addEventListener("input", check);
    check();
  }
}

function wire(root) {
  updateCounts(root);
  wireConfirmations(root);
}

document.addEventListener("DOMContentLoaded", () => wire(document));
document.addEventListener("htmx:afterSettle", (event) => wire(event.target));
