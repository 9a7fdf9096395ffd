// The loopback backend of `bench:engine --type http`: answers every POST with
// 200 and a small JSON body, keep-alive, in a process of its own (its CPU is
// not the workers'). Prints READY <port>.
import http from "node:http";
import type { AddressInfo } from "node:net";

const answer = JSON.stringify({ ok: true });
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) });
    res.end(answer);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
