// A real HTTP backend on loopback that records every request and can be told
// how to behave: answer, fail, apply then drop the connection, hang, and
// report what became of a command (for reconciliation).
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour =
  | { kind: "ok"; status?: number; body?: unknown }
  | { kind: "status"; status: number; body?: unknown }
  /** Applies the request, then drops the connection without answering. */
  | { kind: "apply-then-drop" }
  /** Drops the connection without applying. */
  | { kind: "drop" }
  /** Never answers (until the client gives up). */
  | { kind: "hang" }
  /** Holds the request for ms, then applies and answers 200. */
  | { kind: "slow"; ms: number };

type Recorded = { method: string; path: string; headers: http.IncomingHttpHeaders; body: string; at: number };

export type Backend = {
  url: string;
  requests: Recorded[];
  /** Command ids applied, in order (a command applied twice appears twice). */
  applied: string[];
  /** The most requests for one command id in flight at the same moment. */
  maxInFlightPerCommand: () => number;
  /** Behaviour of the n-th request (0-based) to POST /do/<key>; default: the default behaviour. */
  plan: (key: string, steps: Behaviour[]) => void;
  setDefault: (b: Behaviour) => void;
  /** GET /status/:id answers: 200 when applied, 404 when not, or a forced status. */
  statusOverride: (commandId: string, status: number | null) => void;
  onRequest: (fn: (r: Recorded) => void) => void;
  /** Statuses answered by POST /callback, in turn (then 200). */
  callbackPlan: (statuses: number[]) => void;
  /** Chooses the behaviour of every request without a plan (overrides the default). */
  chooser: (fn: ((key: string, n: number) => Behaviour) | null) => void;
  /** GET /status/:id answers this status while a request for the command is still being processed (default: as if not received). */
  reportInProgress: (status: number | null) => void;
  /** Answers every request (status and refunds too) with this status until outage(null): a backend that is down. */
  outage: (status: number | null) => void;
  /** Stops listening (connections refused) until resume(), on the same port. */
  pause: () => Promise<void>;
  resume: () => Promise<void>;
  close: () => Promise<void>;
};

export async function startBackend(): Promise<Backend> {
  const requests: Recorded[] = [];
  const applied: string[] = [];
  const plans = new Map<string, Behaviour[]>();
  const counts = new Map<string, number>();
  const statusOverrides = new Map<string, number>();
  const inFlight = new Map<string, number>();
  const listeners: ((r: Recorded) => void)[] = [];
  let maxInFlight = 0;
  let defaultBehaviour: Behaviour = { kind: "ok" };
  let choose: ((key: string, n: number) => Behaviour) | null = null;
  let inProgressStatus: number | null = null;
  let outageStatus: number | null = null;

  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const url = new URL(req.url ?? "/", "http://x");
      const rec: Recorded = {
        method: req.method ?? "",
        path: url.pathname,
        headers: req.headers,
        body,
        at: Date.now(),
      };
      requests.push(rec);
      for (const l of listeners) l(rec);
      const id = String(req.headers["x-command-id"] ?? url.pathname.split("/").pop());
      if (outageStatus !== null) {
        res.writeHead(outageStatus, { "content-type": "application/json" });
        return res.end(JSON.stringify({ down: true }));
      }
      if (url.pathname.startsWith("/status/")) {
        const forced =
          statusOverrides.get(id) ??
          (inProgressStatus !== null && (inFlight.get(id) ?? 0) > 0 ? inProgressStatus : undefined);
        const status = forced ?? (applied.includes(id) ? 200 : 404);
        res.writeHead(status, { "content-type": "application/json" });
        return res.end(JSON.stringify(status === 200 ? { applied: true, id } : { applied: false }));
      }
      if (url.pathname === "/refund") {
        applied.push(`refund:${id}`);
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ refunded: id }));
      }
      if (url.pathname === "/callback") {
        const b = defaultCallback.shift() ?? 200;
        res.writeHead(b);
        return res.end();
      }
      const key = url.pathname.split("/")[2] ?? "";
      const n = counts.get(key) ?? 0;
      counts.set(key, n + 1);
      const b = plans.get(key)?.[n] ?? choose?.(key, n) ?? defaultBehaviour;
      const now = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, now);
      maxInFlight = Math.max(maxInFlight, now);
      const done = () => inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
      switch (b.kind) {
        case "ok":
          applied.push(id);
          done();
          res.writeHead(b.status ?? 200, { "content-type": "application/json" });
          return res.end(JSON.stringify(b.body ?? { ok: true, id }));
        case "status":
          done();
          res.writeHead(b.status, { "content-type": "application/json" });
          return res.end(JSON.stringify(b.body ?? { status: b.status }));
        case "apply-then-drop":
          applied.push(id);
          done();
          return req.socket.destroy();
        case "drop":
          done();
          return req.socket.destroy();
        case "hang":
          req.socket.on("close", done);
          return;
        case "slow":
          await new Promise((r) => setTimeout(r, b.ms));
          applied.push(id);
          done();
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(JSON.stringify({ ok: true, id }));
      }
    });
  });
  const defaultCallback: number[] = [];
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    requests,
    applied,
    maxInFlightPerCommand: () => maxInFlight,
    plan: (id, steps) => void plans.set(id, steps),
    setDefault: (b) => void (defaultBehaviour = b),
    statusOverride: (id, status) =>
      void (status === null ? statusOverrides.delete(id) : statusOverrides.set(id, status)),
    onRequest: (fn) => void listeners.push(fn),
    callbackPlan: (statuses) => void defaultCallback.push(...statuses),
    chooser: (fn) => void (choose = fn),
    reportInProgress: (status) => void (inProgressStatus = status),
    outage: (status) => void (outageStatus = status),
    pause: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
    resume: () => new Promise((r) => void server.listen(port, "127.0.0.1", () => r())),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
