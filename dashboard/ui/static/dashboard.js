// Shared by every page (no inline script: the Content-Security-Policy allows only files from this site).
// factoryfl.api(url, options): fetch() for the JSON API with the session cookie; state-changing calls carry
// the page's CSRF token (X-CSRFToken), which the API requires of cookie-authenticated requests.
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = meta ? meta.content : "";
  const SAFE = ["GET", "HEAD", "OPTIONS"];

  function api(url, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = Object.assign({Accept: "application/json"}, options.headers || {});
    if (!SAFE.includes(method)) headers["X-CSRFToken"] = csrfToken;
    return fetch(url, Object.assign({}, options, {method, headers, credentials: "same-origin"}));
  }

  window.factoryfl = Object.assign(window.factoryfl || {}, {api, csrfToken});
})();
