// A real webhook receiver on loopback: records every request (headers and the
// raw body, as a signature is computed over it) and answers planned statuses
// in turn, then 200. Tests await requests instead of sleeping.
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";

export type Received = { path: string; headers: http.IncomingHttpHeaders; raw: string; body: any; status: number };

export type WebhookSink = {
  url: string;
  /** The same server by host name (localhost), for allow-list and address checks. */
  localhostUrl: string;
  port: number;
  received: Received[];
  /** Statuses answered to the next requests, in turn (then 200). */
  plan: (statuses: number[]) => void;
  /** Resolves once `n` requests have arrived (all of them so far, in order). */
  waitFor: (n: number, timeoutMs?: number) => Promise<Received[]>;
  close: () => Promise<void>;
};

/** Whether `header` is sha256=<HMAC-SHA256 of raw under secret>, compared in constant time (as a receiver should). */
export function verifies(raw: string, header: string | undefined, secret: string): boolean {
  if (!header) return false;
  const want = Buffer.from(`sha256=${createHmac("sha256", secret).update(raw).digest("hex")}`);
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function startWebhookSink(): Promise<WebhookSink> {
  const received: Received[] = [];
  const planned: number[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const status = planned.shift() ?? 200;
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
      received.push({ path: req.url ?? "/", headers: req.headers, raw, body, status });
      res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : "no");
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    localhostUrl: `http://localhost:${port}`,
    port,
    received,
    plan: (s) => void planned.push(...s),
    waitFor: (n, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(received.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${n} webhook requests (got ${received.length})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
