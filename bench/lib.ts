// Shared pieces of the benchmarks: a real PostgreSQL (embedded, fsync on) and
// the real Next.js production server, both on loopback.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import pg from "pg";
import os from "node:os";
import path from "node:path";
import { startEmbedded, type EmbeddedPostgres } from "../server/db/embedded";
import { migrate } from "../server/db/migrate";
import { buildIfNeeded } from "../scripts/build-if-needed";
import type { Db } from "../server/db/client";
import { createToken } from "../server/auth/tokens";
import { resolveSecretKey } from "../server/db/settings";
import { newIdempotencyKey } from "../packages/client/src/index";

export const root = path.resolve(import.meta.dirname, "..");

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

export async function startDatabase(): Promise<EmbeddedPostgres & { cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-bench-"));
  // BENCH_PG_STATEMENTS=1: pg_stat_statements, for printing where PostgreSQL's time went (printStatements).
  const stats = process.env.BENCH_PG_STATEMENTS === "1";
  const pg = await startEmbedded({
    dir,
    port: await freePort(),
    settings: {
      max_connections: "300",
      ...(stats ? { shared_preload_libraries: "pg_stat_statements" } : {}),
      // BENCH_PG_SETTINGS="shared_buffers=4GB effective_cache_size=12GB": server settings of a production-like host.
      ...Object.fromEntries(
        (process.env.BENCH_PG_SETTINGS ?? "")
          .split(/\s+/)
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      ),
    },
  });
  await migrate(pg.url, path.join(root, "prisma/migrations"));
  return { ...pg, cleanup: async () => (await pg.stop(), await rm(dir, { recursive: true, force: true })) };
}

export async function startWeb(
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess; stop: () => void }> {
  buildIfNeeded(root, (m) => console.error(m));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      "--import",
      "tsx",
      path.join(root, "server/web/main.ts"),
    ],
    {
      cwd: root,
      env: { ...process.env, NODE_ENV: "production", LOG_LEVEL: "warn", PORT: String(port), ...env },
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (
      await fetch(`${url}/api/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    stop: () => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {}
    },
  };
}

/**
 * An idempotency key maker from a --keys option: "v7" as the SDK makes them (time-ordered), "v4" random, as a
 * client making its own might.
 */
export function keyMaker(kind: string): () => string {
  if (kind === "v7") return () => newIdempotencyKey();
  if (kind === "v4") return () => randomUUID();
  throw new Error("--keys: v4 or v7");
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const fmt = (n: number, d = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

// CPU time (user + system, in clock ticks of 10 ms) that processes used, read from /proc: a figure
// per command that a shared machine's load disturbs far less than commands/s.
export function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

/** The processes of the PostgreSQL server on `dataDir`: its postmaster and the postmaster's children (backends). */
export function clusterPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(f.slice(f.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
      } catch {
        return false;
      }
    });
  return [postmaster, ...children];
}

/** Starts counting the CPU of these processes (and of the server's new backends); `take()` gives the ticks since. */
export function cpuMeter(pids: () => number[]) {
  const before = new Map(pids().map((p) => [p, cpuTicks(p)]));
  return { take: () => pids().reduce((n, p) => n + cpuTicks(p) - (before.get(p) ?? 0), 0) };
}

/** With BENCH_PG_STATEMENTS=1: the statements that took most of the server's time in `url`'s database since the last call (then reset). */
export async function printStatements(url: string, title: string, top = 12): Promise<void> {
  if (process.env.BENCH_PG_STATEMENTS !== "1") return;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    const { rows } = await c.query<{ ms: number; calls: number; rows: number; query: string }>(
      `SELECT total_exec_time AS ms, calls, rows, regexp_replace(query, '\\s+', ' ', 'g') AS query
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       ORDER BY total_exec_time DESC LIMIT $1`,
      [top],
    );
    console.log(`\n-- PostgreSQL time by statement: ${title}`);
    for (const r of rows)
      console.log(
        `${fmt(r.ms).padStart(8)} ms ${fmt(r.calls).padStart(8)} calls ${fmt(r.rows).padStart(9)} rows  ${r.query.slice(0, 220)}`,
      );
    await c.query("SELECT pg_stat_statements_reset()");
  } finally {
    await c.end();
  }
}

/** With BENCH_PG_STATEMENTS=1: forgets what pg_stat_statements has gathered so far. */
export async function resetStatements(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    await c.query("SELECT pg_stat_statements_reset()");
  } finally {
    await c.end();
  }
}

/** The API client (or admin) a benchmark submits or reads as: its id and its token. */
export const benchToken = (db: Db, scope: "client" | "admin" = "client") =>
  resolveSecretKey(db, undefined).then((key) => createToken(db, key, { name: "bench", scope, createdBy: "bench" }));
