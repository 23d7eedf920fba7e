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

// Leaving a page with unsaved changes asks first: <form data-unsaved="warn"> counts as changed
// once its fields differ from what the page was drawn with; "pending" (a form that came back
// unsaved: a refusal, a merge, a deleted site) from the start. Sending the form is no loss.
let sending = false;
const watched = [];
function snapshot(form) {
  const pairs = [];
  for (const [name, value] of new FormData(form)) {
    if (typeof value === "string") pairs.push(name + "=" + value);
  }
  return pairs.join("&");
}
function wireUnsaved(root) {
  for (const form of root.querySelectorAll("form[data-unsaved]")) {
    if (form.dataset.watched) continue;
    form.dataset.watched = "1";
    watched.push({ form, drawn: form.dataset.unsaved === "pending" ? null : snapshot(form) });
    form.addEventListener("submit", () => { sending = true; });
  }
}
window.addEventListener("beforeunload", (event) => {
  if (sending) return;
  const changed = watched.some(({ form, drawn }) => form.isConnected && snapshot(form) !== drawn);
  if (changed) {
    event.preventDefault();
    event.returnValue = "";
  }
});
// Back to a page from the browser's cache: its forms are what they were, nothing is being sent.
window.addEventListener("pageshow", () => { sending = false; });

function wire(root) {
  updateCounts(root);
  wireConfirmations(root);
  wireUnsaved(root);
}

document.addEventListener("DOMContentLoaded", () => wire(document));
document.addEventListener("htmx:afterSettle", (event) => wire(event.target));
