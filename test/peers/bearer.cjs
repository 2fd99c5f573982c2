'use strict';
// Preload (node --require ./bearer.cjs ...) that adds
// "Authorization: Bearer $BEARER_TOKEN" to every global fetch() and every
// undici.request() that does not already carry an Authorization header.
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
}
