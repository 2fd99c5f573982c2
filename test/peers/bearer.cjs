'use strict';
// Preload (node --require ./bearer.cjs ...) that adds
// "Authorization: Bearer $BEARER_TOKEN" to every global fetch(), every
// undici.request() and every node:http request() that does not already
// carry an Authorization header.
// The conformance CLI has no option for extra headers; this supplies one.
const token = process.env.BEARER_TOKEN;
if (token) {
  const auth = `Bearer ${token}`;

  const fetch = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has('authorization')) headers.set('authorization', auth);
    return fetch(input, { ...init, headers });
  };

  let undici;
  try { undici = require('undici'); } catch { /* not installed: nothing to patch */ }
  if (undici) {
    const request = undici.request;
    undici.request = (url, opts = {}) => {
      const headers = Array.isArray(opts.headers) ? Object.fromEntries(
        opts.headers.flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]]))) : { ...opts.headers };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) headers.authorization = auth;
      return request(url, { ...opts, headers });
    };
  }

  // node:http request(options[, cb]) or request(url[, options][, cb]), as
  // conformance 0.2.0-alpha.12's header-validation scenarios send theirs.
  const http = require('node:http');
  const httpRequest = http.request;
  http.request = function (...args) {
    const i = typeof args[0] === 'string' || args[0] instanceof URL ? 1 : 0;
    if (i === 1 && (typeof args[1] !== 'object' || args[1] === null)) args.splice(1, 0, {});
    const opts = { ...args[i] };
    if (!Array.isArray(opts.headers)) {
      const headers = { ...opts.headers };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) headers.authorization = auth;
      opts.headers = headers;
    }
    args[i] = opts;
    return httpRequest.apply(this, args);
  };
}
