// The floor of a provider start for `npm run bench -- provider`: a bare Node process that opens a TLS HTTP/2
// listener on 127.0.0.1 and prints one line, as a provider prints its handshake. No gRPC, no protobuf, no
// application code: what any Node provider pays at least. CommonJS, like the packaged provider (an ES module entry
// would add the ESM loader's start-up to the floor). The key and certificate come from the bench, in PEM.
/* global process */
'use strict';
const http2 = require('node:http2');

const server = http2.createSecureServer({ key: process.env.BENCH_FLOOR_KEY, cert: process.env.BENCH_FLOOR_CERT });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`1|6|tcp|127.0.0.1:${server.address().port}|grpc|floor\n`);
});
