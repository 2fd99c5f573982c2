'use strict';
// Preload (node --require ./loopback-sync.cjs ...) that makes every
// net.Server (and so http servers) listen on 127.0.0.1 when listen() is
// called without a host, binding at once so that server.address() works
// right after listen() returns, as it does for an all-interfaces bind.
// test/peers/loopback.cjs passes the host to listen(), which Node resolves
// asynchronously: the conformance suite's client scenarios read
// address().port straight after listen(0) and fail under it.
// An explicit host, a Unix socket path or a handle is left alone.
const net = require('node:net');

const HOST = '127.0.0.1';
const listen = net.Server.prototype.listen;
let TCP, constants;
try {
  ({ TCP, constants } = process.binding('tcp_wrap'));
} catch {
  // No synchronous bind on this Node: fall back to passing the host.
}

const isPort = (v) =>
  v === undefined || v === null || typeof v === 'number' ||
  (typeof v === 'string' && /^\s*\d+\s*$/.test(v));

function boundHandle(port) {
  if (!TCP) return null;
  const h = new TCP(constants.SERVER);
  if (h.bind(HOST, port) !== 0) {
    h.close();
    return null; // let the ordinary path report the error
  }
  return h;
}

net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  const cb = args.find((a) => typeof a === 'function');
  let port;
  if (args.length === 0 || typeof a0 === 'function') {
    port = 0;
  } else if (a0 !== null && typeof a0 === 'object') {
    const isHandle = 'handle' in a0 || '_handle' in a0 || 'fd' in a0 || 'path' in a0;
    if (isHandle || a0.host != null) return listen.apply(this, args);
    port = Number(a0.port) || 0;
  } else if (isPort(a0)) {
    if (typeof args[1] === 'string') return listen.apply(this, args); // a host was given
    port = Number(a0) || 0;
  } else {
    return listen.apply(this, args); // a pipe path
  }
  const h = boundHandle(port);
  if (h) return cb ? listen.call(this, h, cb) : listen.call(this, h);
  return cb ? listen.call(this, port, HOST, cb) : listen.call(this, port, HOST);
};
