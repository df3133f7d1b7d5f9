// A message (templates/messages.html) stays until its button dismisses it. A file, not inline
// script: the Content-Security-Policy allows none.
document.addEventListener("click", (event) => {
  const button = event.target.closest("#messages .dismiss");
  if (button) {
    button.closest("li").remove();
  }
});

// A message added here looks like the server's own (templates/messages.html).
function showMessage(text, level) {
  const list = document.getElementById("messages");
  // A poll that keeps failing says so once, not every two seconds.
  if (!list || [...list.querySelectorAll("li span")].some((span) => span.textContent === text)) {
    return;
  }
  const item = document.createElement("li");
  item.className = `message ${level}`;
  const span = document.createElement("span");
  span.textContent = text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "dismiss";
  dismiss.setAttribute("aria-label", "Dismiss this message");
  dismiss.textContent = "×";
  item.append(span, " ", dismiss);
  list.append(item);
}

// What an error page (403.html, 404.html, 500.html …) says: its heading and its first words.
function errorPageReason(html, status) {
  const page = new DOMParser().parseFromString(html, "text/html");
  const heading = page.querySelector("main h1");
  const reason = page.querySelector("main .error") || page.querySelector("main h1 + p");
  const parts = [heading, reason].map((node) => node && node.textContent.trim()).filter(Boolean);
  return parts.length ? parts.join(": ") : `The server answered ${status}.`;
}

// htmx swaps no 4xx or 5xx answer by default, so a refused click would show nothing. A refused
// form's own part (a fragment, 400) is swapped like any answer; an error page (a whole
// document) becomes a message saying why.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status < 400) {
    return;
  }
  const body = xhr.responseText || "";
  if (xhr.status < 500 && body && !/^\s*<!doctype/i.test(body)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    return;
  }
  event.detail.shouldSwap = false;
  event.detail.isError = false;
  showMessage(errorPageReason(body, xhr.status), "error");
});

document.addEventListener("htmx:sendError", () => {
  showMessage("No answer from Level 2: check the connection, then try again.", "error");
});
