// A real HTTP server on loopback between a client and Conveyor, told per
// request what to do: forward it, forward it and then drop the answer (the
// server has done the work, the client never hears), answer by itself (429,
// 503, a page that is not Conveyor's), or never answer.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type ProxiedRequest = {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** performance.now() and Date.now() when the request was read. */
  at: number;
  wallAt: number;
};

export type Decision =
  | { kind: "forward" }
  /** Forwards, waits for Conveyor's whole answer, then destroys the client's socket instead of answering. */
  | { kind: "drop-answer" }
  | { kind: "answer"; status: number; headers?: Record<string, string>; body?: string }
  | { kind: "hang" };

export type Proxy = {
  url: string;
  requests: ProxiedRequest[];
  /** The answers Conveyor gave that the client never received. */
  dropped: { request: ProxiedRequest; status: number; body: string }[];
  /** Resolves at the next request the proxy receives. */
  nextRequest: () => Promise<ProxiedRequest>;
  close: () => Promise<void>;
};

const FORWARDED = ["authorization", "content-type", "accept", "x-trpc-method-override", "traceparent", "tracestate"];

/** `decide` sees each request and how many requests came before it with the same method, URL and body. */
export async function startProxy(
  target: string | null,
  decide: (r: ProxiedRequest, seenBefore: number) => Decision = () => ({ kind: "forward" }),
): Promise<Proxy> {
  const requests: ProxiedRequest[] = [];
  const dropped: Proxy["dropped"] = [];
  const seen = new Map<string, number>();
  let waiters: ((r: ProxiedRequest) => void)[] = [];

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (d: Buffer) => parts.push(d));
    req.on("end", async () => {
      const r: ProxiedRequest = {
        method: req.method ?? "",
        url: req.url ?? "/",
        headers: req.headers,
        body: Buffer.concat(parts).toString("utf8"),
        at: performance.now(),
        wallAt: Date.now(),
      };
      requests.push(r);
      const key = `${r.method} ${r.url} ${r.body}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      const d = decide(r, n);
      for (const w of waiters) w(r);
      waiters = [];
      if (d.kind === "hang") return;
      if (d.kind === "answer") {
        res.writeHead(d.status, { "content-type": "application/json", ...d.headers });
        return void res.end(d.body ?? "");
      }
      if (!target) throw new Error("nothing to forward to");
      const headers = Object.fromEntries(
        FORWARDED.flatMap((h) => (typeof req.headers[h] === "string" ? [[h, req.headers[h] as string]] : [])),
      );
      const answer = await fetch(`${target}${r.url}`, {
        method: r.method,
        headers,
        body: r.method === "GET" ? undefined : r.body,
      });
      const text = await answer.text();
      if (d.kind === "drop-answer") {
        dropped.push({ request: r, status: answer.status, body: text });
        return void req.socket.destroy();
      }
      const out: Record<string, string> = { "content-type": answer.headers.get("content-type") ?? "application/json" };
      const retryAfter = answer.headers.get("retry-after");
      if (retryAfter) out["retry-after"] = retryAfter;
      res.writeHead(answer.status, out);
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    dropped,
    nextRequest: () => new Promise((r) => waiters.push(r)),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
