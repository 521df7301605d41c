// Asks before a destructive action. A form (or the submit button pressed,
// for forms with several actions) with `data-confirm` submits only when the
// person confirms. Loaded on every admin page; an inline handler would break
// the page's Content-Security-Policy (script-src 'self').
document.addEventListener("submit", (event) => {
  const question = event.submitter?.dataset.confirm ?? event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
