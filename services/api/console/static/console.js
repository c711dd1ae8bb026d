// The console works without this script; with it, the system figures refresh in place.
"use strict";
(function () {
  const figures = document.getElementById("figures");
  if (!figures) return;
  const url = figures.dataset.refreshUrl;
  const seconds = Number(figures.dataset.refreshSeconds) || 5;
  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.redirected || response.status === 401 || response.status === 403) {
        window.location.reload(); // the session ended: the page shows the sign-in form
        return;
      }
      if (response.ok) figures.innerHTML = await response.text();
    } catch (error) {
      // The API is away for a moment: keep the last figures and try again.
    }
    window.setTimeout(refresh, seconds * 1000);
  }
  window.setTimeout(refresh, seconds * 1000);
})();
