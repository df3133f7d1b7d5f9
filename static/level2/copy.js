// A "Copy" button copies the text of the element its data-copy names (e.g. the dkist snippet).
// A file, not inline script: the Content-Security-Policy allows none.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  const source = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(source.textContent);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";  // no clipboard (plain http, or refused)
  }
});
