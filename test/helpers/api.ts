// The real /api/trpc handler (and the REST facade, /api/v1 and
// /api/openapi.json) served over real HTTP on loopback, with a small client
// that speaks tRPC's plain-JSON wire format as an outside client would.
import http from "node:http";
import { nodeRestListener, nodeTrpcListener } from "../../server/web/node-fetch";
import { isRestPath } from "../../server/api/rest";
import type { AddressInfo } from "node:net";
import type { ApiDeps } from "../../server/api/deps";
import { registry as defaultRegistry } from "../../server/command-types";
import { resolveSecretKey } from "../../server/db/settings";
import { createToken } from "../../server/auth/tokens";
import { createLogger } from "../../server/log";
import { createGroupInserter } from "../../server/commands/group-insert";
import type { Db } from "../../server/db/client";

export type ApiServer = { url: string; deps: ApiDeps; close: () => Promise<void> };

export async function startApi(db: Db, opts: Partial<ApiDeps> = {}): Promise<ApiServer> {
  const deps: ApiDeps = {
    db,
    registry: defaultRegistry,
    intake: { registry: defaultRegistry, insert: createGroupInserter(db) },
    secretKey: () => resolveSecretKey(db, undefined),
    maxBodyBytes: 1024 * 1024,
    publicUrl: "http://conveyor.test",
    emailConfigured: false,
    retentionDays: 30,
    log: createLogger({ name: "test", level: "silent" }),
    ...opts,
  };
  // The same listeners the web process serves /api/trpc and the REST paths with, dispatched as server/web/main.ts does.
  const trpc = nodeTrpcListener(deps);
  const rest = nodeRestListener(deps);
  const server = http.createServer((req, res) =>
    isRestPath((req.url ?? "/").split("?")[0]!) ? rest(req, res) : trpc(req, res),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, deps, close: () => new Promise((r) => server.close(() => r())) };
}

export type TrpcAnswer<T = any> = {
  status: number;
  data?: T;
  error?: {
    message: string;
    code: number;
    data: { code: string; httpStatus: number; issues?: { path: (string | number)[]; message: string }[] };
  };
};

export function client(baseUrl: string, token?: string) {
  const headers = (extra: Record<string, string> = {}) => ({
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...extra,
  });
  const parse = async (res: Response): Promise<TrpcAnswer> => {
    const json = (await res.json()) as { result?: { data: unknown }; error?: TrpcAnswer["error"] };
    return { status: res.status, data: json.result?.data, error: json.error };
  };
  return {
    mutation: async (path: string, input: unknown) =>
      parse(
        await fetch(`${baseUrl}/api/trpc/${path}`, {
          method: "POST",
          headers: headers({ "content-type": "application/json" }),
          body: JSON.stringify(input),
        }),
      ),
    query: async (path: string, input?: unknown) =>
      parse(
        await fetch(
          `${baseUrl}/api/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
          { headers: headers() },
        ),
      ),
    /** A query sent by POST (tRPC method override), for inputs too long for a URL. */
    queryPost: async (path: string, input: unknown) =>
      parse(
        await fetch(`${baseUrl}/api/trpc/${path}`, {
          method: "POST",
          headers: headers({ "content-type": "application/json", "x-trpc-method-override": "1" }),
          body: JSON.stringify(input),
        }),
      ),
    raw: (path: string, init: RequestInit) =>
      fetch(`${baseUrl}/api/trpc/${path}`, {
        ...init,
        headers: { ...headers(), ...(init.headers as Record<string, string>) },
      }),
  };
}

export async function newToken(
  db: Db,
  scope: "client" | "admin",
  name = `${scope}-${Math.random().toString(36).slice(2, 8)}`,
) {
  return createToken(db, await resolveSecretKey(db, undefined), { name, scope, createdBy: "test" });
}
