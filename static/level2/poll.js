// Polling without eval: under the Content-Security-Policy, htmx may not evaluate trigger
// filters such as `every 5s [document.visibilityState === 'visible']`. A polled element says
// instead when its poll is skipped: data-poll="visible" (only while the tab is visible) and
// data-poll="visible unfocused" (and not while the keyboard focus is inside it).
document.addEventListener("htmx:confirm", (event) => {
  const element = event.detail.elt;
  const rules = (element.dataset.poll || "").split(" ");
  if (event.detail.triggeringEvent || !element.dataset.poll) {
    return; // a click, a submit, a change: never held back
  }
  const hidden = rules.includes("visible") && document.visibilityState !== "visible";
  const focused = rules.includes("unfocused") && element.contains(document.activeElement);
  if (hidden || focused) {
    event.preventDefault();
  }
});
