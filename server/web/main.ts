// `npm run web`: the web process. Next.js serves the console; the client API
// (/api/trpc, its REST facade /api/v1 and /api/openapi.json) and /api/health
// are served by the same process without going
// through Next's request pipeline, which on small machines costs more CPU per
// request than the intake work itself (see bench/intake.ts). The handlers are
// the same ones app/api/trpc/[trpc]/route.ts and app/api/v1/[...path]/route.ts
// use under `next dev`.
// WEB_CONCURRENCY > 1 runs that many processes sharing the port (node:cluster).
import cluster from "node:cluster";
import http from "node:http";
import path from "node:path";
import next from "next";
import { envOrExit, oidcEnv } from "../env";
import { allowFormTarget } from "./csp";
import { appDeps } from "../app";
import { healthResponse, readyResponse } from "../health";
import { createMetrics, metricsResponse, routeLabel } from "../metrics";
import { appRouter } from "../api/root";
import { PEER_HEADER } from "../auth/http";
import { onWebStart } from "../web-start";
import {
  answerHeadersTooLarge,
  fetchListener,
  headersTooLarge,
  nodeRestListener,
  nodeTrpcListener,
  onClientError,
  PARSER_HEADER_LIMIT,
} from "./node-fetch";
import { isRestPath } from "../api/rest";
import { codeLimitedTypes } from "../commands/flow";
import { stopTracing } from "../lib/tracing";

const root = path.resolve(import.meta.dirname, "../..");

async function serve() {
  const env = envOrExit();
  await onWebStart();
  const app = next({ dev: false, dir: root, port: env.PORT });
  await app.prepare();
  const handleNext = app.getRequestHandler();
  const deps = appDeps();
  const api = nodeTrpcListener(deps);
  const rest = nodeRestListener(deps);
  const health = fetchListener(() => healthResponse(deps.db));
  const ready = fetchListener(() => readyResponse(deps.db, path.join(root, "prisma/migrations")));
  const metrics = createMetrics(deps.db, { codeLimitedTypes: codeLimitedTypes(deps.registry) });
  // Low-cardinality route names for the duration histogram.
  const procedures = new Set(Object.keys(appRouter._def.procedures));
  const serveMetrics = (req: http.IncomingMessage) =>
    fetchListener(() => metricsResponse(metrics, env.METRICS_TOKEN, req.headers.authorization ?? null));

  const ssoOrigin = (() => {
    const sso = oidcEnv(env);
    return sso ? new URL(sso.issuerUrl).origin : null;
  })();

  // The parser reads past Node's header limit so that a request over it still gets a JSON answer that says what to do.
  const server = http.createServer({ maxHeaderSize: PARSER_HEADER_LIMIT }, (req, res) => {
    const url = req.url ?? "/";
    const started = performance.now();
    const route = routeLabel(url, procedures);
    res.on("finish", () => metrics.observe(route, res.statusCode, (performance.now() - started) / 1000));
    if (headersTooLarge(req)) return void answerHeadersTooLarge(req, res);
    // The socket's peer, for the sign-in throttle; whatever a client sent under that name is replaced.
    req.headers[PEER_HEADER] = req.socket.remoteAddress ?? "";
    if (url.startsWith("/api/trpc/")) return void api(req, res);
    if (isRestPath(url.split("?")[0]!)) return void rest(req, res);
    if (url === "/api/health") return void health(req, res);
    if (url === "/api/ready") return void ready(req, res);
    if (url === "/api/metrics") return void serveMetrics(req)(req, res);
    if (ssoOrigin && (url === "/login" || url.startsWith("/login?"))) allowFormTarget(res, ssoOrigin);
    return void handleNext(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.on("clientError", onClientError);
  server.listen(env.PORT, () => deps.log.info({ port: env.PORT, pid: process.pid }, "web listening"));

  const stop = () => {
    // The spans still batched are sent before the process goes (nothing to do when tracing is off).
    server.close(() => void Promise.allSettled([stopTracing(), deps.db.close()]).finally(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function main() {
  const env = envOrExit();
  const n = env.WEB_CONCURRENCY;
  if (n > 1 && cluster.isPrimary) {
    for (let i = 0; i < n; i++) cluster.fork();
    let stopping = false;
    cluster.on("exit", (w, code, signal) => {
      if (!stopping) {
        console.error(`web process ${w.process.pid} exited (${signal ?? code}); starting another`);
        setTimeout(() => cluster.fork(), 1000);
      }
    });
    const stop = () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
      setTimeout(() => process.exit(0), 12_000).unref();
      cluster.on("exit", () => Object.keys(cluster.workers ?? {}).length === 0 && process.exit(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    return;
  }
  await serve();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
