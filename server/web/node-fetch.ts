// Serves /api/trpc from node:http: reads the body (within MAX_BODY_BYTES)
// straight from the socket and writes the answer back, with no extra stream
// conversions on the hot path.
import type http from "node:http";
import { collectLimited, createRawTrpcHandler, tooLarge } from "../api/handler";
import type { ApiDeps } from "../api/deps";
import { callDirect } from "../api/direct";

export async function writeResponse(res: http.ServerResponse, response: Response) {
  const body = Buffer.from(await response.arrayBuffer());
  const out: Record<string, string> = {};
  response.headers.forEach((v, k) => (out[k] = v));
  out["content-length"] = String(body.length);
  res.writeHead(response.status, out);
  res.end(body);
}

function internalError(res: http.ServerResponse) {
  if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message: "Internal server error", code: -32603, data: { code: "INTERNAL_SERVER_ERROR", httpStatus: 500 } } }));
}

export function nodeTrpcListener(deps: ApiDeps) {
  const handle = createRawTrpcHandler(deps);
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      let body: Buffer | null = null;
      if (req.method !== "GET" && req.method !== "HEAD") {
        body = await collectLimited(req, deps.maxBodyBytes, req.headers["content-length"]);
        if (body === null) {
          // Answer at once and drop the connection rather than reading the rest.
          res.shouldKeepAlive = false;
          await writeResponse(res, tooLarge(deps.maxBodyBytes));
          req.destroy();
          return;
        }
      }
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(", ") : (v ?? null);
      };
      const url = req.url ?? "/";
      // One procedure by POST, no query string: the direct road (see server/api/direct.ts).
      if (body && url.startsWith("/api/trpc/") && !url.includes("?") && !url.includes(",")) {
        const direct = await callDirect(deps, decodeURIComponent(url.slice("/api/trpc/".length)), body, header);
        if (direct) {
          res.writeHead(direct.status, { "content-type": "application/json", "content-length": Buffer.byteLength(direct.body), vary: "trpc-accept" });
          res.end(direct.body);
          return;
        }
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (Array.isArray(v)) for (const x of v) headers.append(k, x);
        else if (v !== undefined) headers.set(k, v);
      }
      await writeResponse(res, await handle({ method: req.method ?? "GET", url: `http://${req.headers.host ?? "localhost"}${req.url}`, headers, body }));
    } catch {
      internalError(res);
    }
  };
}

/** Any fetch-style handler (e.g. health) on node:http. */
export function fetchListener(handler: () => Promise<Response>) {
  return async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      await writeResponse(res, await handler());
    } catch {
      internalError(res);
    }
  };
}
