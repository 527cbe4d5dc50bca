// Preloaded into supergateway by mcpgw-bench (NODE_OPTIONS=--require; the file is compiled into
// the bench binary and written to target/bench). supergateway has no option for its listen
// address and binds every interface (`app.listen(port)`); the bench keeps everything on
// loopback, so a listen given only a port (and maybe a callback) gets 127.0.0.1 as its host.
// Nothing else changes: the same server, the same request path.
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
