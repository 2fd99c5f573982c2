'use strict';
// Preload (node --require ./loopback.cjs ...) that makes every net.Server
// (and so http/https/http2 servers) listen on 127.0.0.1 when listen() is
// called without a host. An explicit host, a Unix socket path or a handle is
// left alone. Override the address with LOOPBACK_HOST (e.g. ::1).
const net = require('node:net');

const HOST = process.env.LOOPBACK_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;

const isPort = (v) =>
  v === undefined || v === null || typeof v === 'number' ||
  (typeof v === 'string' && /^\s*\d+\s*$/.test(v));

net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (args.length === 0 || typeof a0 === 'function') {
    args.unshift(0, HOST); // listen() / listen(cb): random port
  } else if (a0 !== null && typeof a0 === 'object') {
    const isHandle = 'handle' in a0 || '_handle' in a0 || 'fd' in a0 || 'path' in a0;
    if (!isHandle && a0.host == null) args[0] = { ...a0, host: HOST };
  } else if (isPort(a0)) {
    if (args.length > 1 && args[1] == null) args[1] = HOST; // listen(port, undefined, ...)
    else if (typeof args[1] !== 'string') args.splice(1, 0, HOST); // listen(port[, backlog][, cb])
  }
  return listen.apply(this, args);
};
