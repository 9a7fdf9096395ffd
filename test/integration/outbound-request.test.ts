// The http type's outbound client (server/outbound/url-guard.ts `request`, undici's request on the
// outbound fetch's dispatcher) against a real HTTP server on loopback: what it sends, what it reads,
// redirects not followed, the rebinding-proof lookup, connection errors and aborts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createOutboundFetch, defaultOutboundRequest, refusedBy } from "../../server/outbound/url-guard";
import { http as httpType } from "../../server/command-types/http";
import type { AttemptContext } from "../../server/command-types/types";
import { describeError } from "../../server/worker/attempt";

type Seen = { method: string; path: string; headers: http.IncomingHttpHeaders; body: string };
const seen: Seen[] = [];
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      if (req.url === "/moved") {
        res.writeHead(302, { location: "/target" });
        return res.end();
      }
      if (req.url === "/text") {
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end("plain words");
      }
      if (req.url === "/hang") return; // never answers
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "set-cookie": ["a=1", "b=2"] });
      res.end(JSON.stringify({ ok: true, echo: body ? JSON.parse(body) : null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const ctxWith = (fetch: AttemptContext["fetch"], signal = new AbortController().signal): AttemptContext => ({
  commandId: "0190c3f0-0000-7000-8000-000000000001",
  idempotencyKey: "0190c3f0-0000-7000-8000-000000000001",
  attempt: 1,
  signal,
  fetch,
});

describe("the outbound request", () => {
  it("sends method, headers and body, and reads the status, a header and the body", async () => {
    const request = createOutboundFetch("127.0.0.1").request;
    const res = await request(`${base}/do`, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-a": "1" },
      body: JSON.stringify({ n: 1 }),
    });
    expect(res.status).toBe(200);
    expect(res.header("Content-Type")).toBe("application/json; charset=utf-8");
    expect(res.header("set-cookie")).toBe("a=1, b=2");
    expect(res.header("x-missing")).toBeNull();
    expect(JSON.parse(await res.text())).toEqual({ ok: true, echo: { n: 1 } });
    const last = seen.at(-1)!;
    expect([last.method, last.path, last.headers["x-a"], last.body]).toEqual(["PUT", "/do", "1", '{"n":1}']);
  });

  it("does not follow a redirect: the http type sees the 302 (an exception), and the target is not requested", async () => {
    const before = seen.length;
    const ctx = ctxWith(createOutboundFetch("127.0.0.1"));
    await expect(httpType.execute({ url: `${base}/moved`, method: "POST", body: {} } as never, ctx)).rejects.toThrow(
      "HTTP 302",
    );
    expect(seen.slice(before).map((s) => s.path)).toEqual(["/moved"]);
  });

  it("the http type maps a JSON answer to its result and a text answer to a string", async () => {
    for (const fetch of [createOutboundFetch("127.0.0.1"), undefined]) {
      const ctx = ctxWith(fetch);
      await expect(
        httpType.execute({ url: `${base}/do`, method: "POST", body: { x: 2 } } as never, ctx),
      ).resolves.toEqual({ outcome: "success", result: { status: 200, body: { ok: true, echo: { x: 2 } } } });
      await expect(httpType.execute({ url: `${base}/text`, method: "GET" } as never, ctx)).resolves.toEqual({
        outcome: "success",
        result: { status: 200, body: "plain words" },
      });
    }
    const last = seen.at(-2)!;
    expect(last.headers["idempotency-key"]).toBe("0190c3f0-0000-7000-8000-000000000001");
    expect(last.headers["content-type"]).toBe("application/json");
    expect(last.headers["user-agent"]).toBe("Conveyor");
  });

  it("a plain fetch given instead (no request of its own) is used as is", async () => {
    const calls: string[] = [];
    const plainFetch = (url: string, init: RequestInit) => {
      calls.push(`${init.method} ${url} ${init.redirect}`);
      return fetch(url, init);
    };
    const r = await httpType.execute(
      { url: `${base}/do`, method: "POST", body: { y: 3 } } as never,
      ctxWith(plainFetch),
    );
    expect(r).toEqual({ outcome: "success", result: { status: 200, body: { ok: true, echo: { y: 3 } } } });
    expect(calls).toEqual([`POST ${base}/do manual`]);
  });

  it("the rebinding-proof lookup refuses a name that resolves to loopback, before anything is sent", async () => {
    const before = seen.length;
    const { port } = new URL(base);
    const request = createOutboundFetch(undefined, async () => [{ address: "127.0.0.1", family: 4 }]).request;
    const err = await request(`http://rebind.test:${port}/do`, { method: "POST", headers: {}, body: "{}" }).catch(
      (e: unknown) => e,
    );
    expect(refusedBy(err)?.message).toBe(
      "host rebind.test resolves to 127.0.0.1, a loopback, private or link-local address; list it in HTTP_ALLOWED_HOSTS to allow it",
    );
    // through the http type: a final failure naming the refusal
    const r = await httpType.execute(
      { url: `http://rebind.test:${port}/do`, method: "POST", body: {} } as never,
      ctxWith(createOutboundFetch(undefined, async () => [{ address: "127.0.0.1", family: 4 }])),
    );
    expect(r).toEqual({ outcome: "failure", failure: { error: expect.stringMatching(/^host rebind.test resolves/) } });
    expect(seen.length).toBe(before);
  });

  it("connects to the address its own lookup allowed, with the name in the Host header", async () => {
    const { port } = new URL(base);
    const request = createOutboundFetch(
      undefined,
      async () => [{ address: "127.0.0.1", family: 4 }],
      () => true,
    ).request;
    const res = await request(`http://pinned.test:${port}/do`, { method: "GET", headers: {} });
    expect(res.status).toBe(200);
    await res.text();
    expect(seen.at(-1)!.headers.host).toBe(`pinned.test:${port}`);
  });

  it("a refused connection is a network error naming its code", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await defaultOutboundRequest(`http://127.0.0.1:${port}/`, { method: "GET", headers: {} }).catch(
      (e: unknown) => e,
    );
    expect(describeError(err)).toBe("network error: ECONNREFUSED");
  });

  it("an abort ends a request that gets no answer", async () => {
    const ctrl = new AbortController();
    const arrived = new Promise((r) => server.once("request", r));
    const pending = defaultOutboundRequest(`${base}/hang`, { method: "GET", headers: {}, signal: ctrl.signal });
    await arrived;
    ctrl.abort(new Error("lease lost"));
    await expect(pending).rejects.toThrow();
  });
});
