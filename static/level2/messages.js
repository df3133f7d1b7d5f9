// A message (templates/messages.html) stays until its button dismisses it. A file, not inline
// script: the Content-Security-Policy allows none.
document.addEventListener("click", (event) => {
  const button = event.target.closest("#messages .dismiss");
  if (button) {
    button.closest("li").remove();
  }
});
