// Fault injection (`npm run test:faults`): real processes — the web process,
// two worker processes, PostgreSQL (its own cluster, fsync on), an SMTP
// server and a backend on loopback that sometimes applies a request and drops
// the answer, answers too late, refuses, or hangs — and faults injected one
// after another while clients keep submitting over HTTP:
//   kill -9 of a worker mid-attempts, kill -9 of the web process mid-submits,
//   a PostgreSQL crash (immediate stop, recovery from the WAL), a backend
//   outage longer than the retry window together with an SMTP outage.
// Afterwards: every accepted command exists once, is terminal or visible as
// needing an operator (exception), none was applied twice, the alert email
// was sent exactly once. Prints what was injected and what was found.
import { afterAll, beforeAll, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import type { ChildProcess } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { startEmbedded, type EmbeddedPostgres } from "../../server/db/embedded";
import { migrate } from "../../server/db/migrate";
import { createDb, type Db } from "../../server/db/client";
import { createRule } from "../../server/alerts/rules";
import { ruleSecrets } from "../helpers/fixtures";
import { retryCommands } from "../../server/commands/actions";
import { startBackend, type Backend, type Behaviour } from "../helpers/backend";
import { startSmtp, type Inbox } from "../helpers/smtp";
import { runWorker, freePort, type Proc } from "../helpers/proc";
import { spawnWeb, waitHealthy } from "../helpers/web";
import { newToken } from "../helpers/api";
import { waitUntil } from "../helpers/engine";

const SETTLED = ["succeeded", "failed", "compensated", "cancelled", "exception"];
const report: { fault: string; injected: string; found: string }[] = [];

let dir: string;
let pgPort: number;
let pg: EmbeddedPostgres;
let db: Db;
let backend: Backend;
let smtp: Inbox;
let smtpPort: number;
let webPort: number;
let web: ChildProcess | undefined;
let token: string;
const workers: Proc[] = [];

// A seeded generator: the same chaos on every run.
let seed = 20261129;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
/** What the backend does with a request: mostly answer, sometimes apply and lose the answer, answer too late, refuse, or hang. */
const pick = (): Behaviour => {
  const r = random();
  if (r < 0.55) return { kind: "ok" };
  if (r < 0.7) return { kind: "apply-then-drop" };
  if (r < 0.8) return { kind: "slow", ms: 1500 }; // past the 1 s timeout: applied after the worker gave up
  if (r < 0.9) return { kind: "status", status: 503 };
  if (r < 0.95) return { kind: "drop" };
  return { kind: "hang" };
};
const chaosCounts = new Map<string, number>();
const chaos = (): Behaviour => {
  const b = pick();
  const name =
    b.kind === "status"
      ? `${b.status}`
      : b.kind === "slow"
        ? "applied after the timeout"
        : b.kind === "apply-then-drop"
          ? "applied, answer dropped"
          : b.kind === "drop"
            ? "dropped unapplied"
            : b.kind;
  chaosCounts.set(name, (chaosCounts.get(name) ?? 0) + 1);
  return b;
};

const workerEnv = () => ({
  DATABASE_URL: pg.url,
  HTTP_ALLOWED_HOSTS: "127.0.0.1",
  WORKER_CONCURRENCY: "10",
  WORKER_LEASE_MS: "2000",
  WORKER_POLL_MS: "200",
  SMTP_URL: smtp.url,
  ALERT_EVAL_MS: "500",
  LOG_LEVEL: "info",
});
async function startWorker(): Promise<Proc> {
  const w = runWorker(workerEnv());
  await w.waitFor(/worker started/);
  workers.push(w);
  return w;
}
async function startWebProcess() {
  web = spawnWeb(webPort, { DATABASE_URL: pg.url, LOG_LEVEL: "warn" }, "pipe");
  web.stdout!.resume(); // never let a full pipe stall it
  web.stderr!.resume();
  await waitHealthy(`http://127.0.0.1:${webPort}`, web);
}

// ---- clients: submit over HTTP, retry with the same idempotency key until a receipt comes back ----
const receipts = new Map<string, string>(); // idempotency key → command id
let clientRetries = 0;
const retryPolicy = { maxAttempts: 10, backoffMs: 100, maxBackoffMs: 500 };
async function submitUntilAccepted(key: string, retry = retryPolicy) {
  const body = JSON.stringify({
    type: "http",
    idempotencyKey: key,
    payload: { url: `${backend.url}/do/${key}`, statusUrl: `${backend.url}/status/{commandId}`, timeoutMs: 1000 },
    retry,
  });
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${webPort}/api/trpc/intake.submit`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    }).catch(() => null);
    if (res?.status === 200) {
      const j = (await res.json()) as { result: { data: { id: string } } };
      receipts.set(key, j.result.data.id);
      return;
    }
    // A client error would be our bug (the input is valid): fail loudly. Anything else: the service is down, retry.
    if (res && res.status >= 400 && res.status < 500)
      throw new Error(`submit ${key} refused: ${res.status} ${await res.text()}`);
    clientRetries++;
    await new Promise((r) => setTimeout(r, 50)); // a client's retry pause, not a wait for an event
  }
}
/** Submits `n` commands, 16 at a time; `during(accepted)` is called after each receipt. */
async function load(prefix: string, n: number, during?: (accepted: number) => void, retry = retryPolicy) {
  let next = 0;
  let accepted = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        await submitUntilAccepted(`${prefix}-${i}`, retry);
        during?.(++accepted);
      }
    }),
  );
}

async function statusCounts(ids: string[]) {
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `SELECT status::text, count(*)::int AS n FROM commands WHERE id = ANY($1::uuid[]) GROUP BY 1`,
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n])) as Record<string, number>;
}
const settled =
  (ids: string[], states = SETTLED) =>
  async () => {
    const c = await statusCounts(ids);
    return states.reduce((s, k) => s + (c[k] ?? 0), 0) === ids.length;
  };
const idsOf = (prefix: string) => [...receipts].filter(([k]) => k.startsWith(prefix)).map(([, id]) => id);
const describeCounts = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-faults-"));
  pgPort = await freePort();
  pg = await startEmbedded({ dir, port: pgPort }); // fsync and synchronous_commit on: a crash is a crash
  await migrate(pg.url, path.resolve("prisma/migrations"));
  db = createDb(pg.url, { max: 4 });
  token = (await newToken(db, "client")).token;
  backend = await startBackend();
  backend.reportInProgress(503); // "still processing": the honest answer of a backend mid-request
  backend.chooser(() => chaos());
  smtp = await startSmtp();
  smtpPort = smtp.port;
  webPort = await freePort();
  await startWebProcess();
  await startWorker();
  await startWorker();
}, 180_000);

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.exited));
  if (web?.pid) {
    try {
      process.kill(-web.pid, "SIGTERM");
    } catch {}
  }
  await db?.close();
  await backend?.close();
  await smtp?.close();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  console.log(
    [
      "",
      "Fault injection — what was injected and what was found",
      "| fault | injected | found |",
      "|---|---|---|",
      ...report.map((r) => `| ${r.fault} | ${r.injected} | ${r.found} |`),
      "",
    ].join("\n"),
  );
});

it("survives kill -9 of workers and of the web process, a PostgreSQL crash, and backend and SMTP outages without losing or repeating a command", async () => {
  // 1. kill -9 a worker while attempts are in flight
  let killedWorker: Promise<unknown> | undefined;
  await load("w", 300, (n) => {
    if (n === 120 && !killedWorker) {
      const victim = workers[0]!;
      victim.child.kill("SIGKILL");
      killedWorker = victim.exited.then(() => startWorker());
    }
  });
  await killedWorker;
  await waitUntil(settled(idsOf("w-")), "the commands submitted around the worker crash to settle", 120_000);
  const { rows: lost } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM attempts WHERE error LIKE 'lease expired%'`,
  );
  report.push({
    fault: "kill -9 of a worker",
    injected: "SIGKILL to 1 of 2 workers after 120 of 300 receipts; a new worker started",
    found: `${describeCounts(await statusCounts(idsOf("w-")))}; ${lost[0]!.n} leases taken back by the rescuer`,
  });

  // 2. kill -9 the web process while clients are submitting
  const retriesBefore = clientRetries;
  let restartedWeb: Promise<void> | undefined;
  await load("h", 300, (n) => {
    if (n === 100 && !restartedWeb) {
      const dead = web!;
      process.kill(-dead.pid!, "SIGKILL");
      restartedWeb = new Promise<void>((r) => dead.once("exit", () => r())).then(() => startWebProcess());
    }
  });
  await restartedWeb;
  await waitUntil(settled(idsOf("h-")), "the commands submitted around the web crash to settle", 120_000);
  report.push({
    fault: "kill -9 of the web process",
    injected: "SIGKILL after 100 of 300 receipts; restarted",
    found: `${clientRetries - retriesBefore} client requests failed and were retried with the same key; ${describeCounts(await statusCounts(idsOf("h-")))}`,
  });

  // 3. PostgreSQL crash (immediate stop: no checkpoint, WAL recovery at the next start) mid-run
  const retriesBeforePg = clientRetries;
  let restartedPg: Promise<void> | undefined;
  await load("p", 200, (n) => {
    if (n === 60 && !restartedPg) {
      restartedPg = (async () => {
        await pg.stop("immediate");
        pg = await startEmbedded({ dir, port: pgPort });
      })();
    }
  });
  await restartedPg;
  await waitUntil(settled(idsOf("p-")), "the commands submitted around the PostgreSQL crash to settle", 120_000);
  report.push({
    fault: "PostgreSQL crash",
    injected: "immediate stop after 60 of 200 receipts, started again (recovery from the WAL)",
    found:
      `${clientRetries - retriesBeforePg} client requests retried; ${describeCounts(await statusCounts(idsOf("p-")))}` +
      `; web and workers reconnected by themselves`,
  });
  for (const w of workers.slice(-2))
    expect(
      w.child.exitCode,
      `a worker exited during the PostgreSQL crash; its output:\n${w.output().slice(-4000)}`,
    ).toBeNull();

  // 4. the backend goes away for longer than the retry window, and SMTP with it; an on-call rule watches for commands needing an operator
  await smtp.close();
  await createRule(
    db,
    {
      name: "Commands need an operator",
      kind: "count",
      states: ["exception"],
      windowSeconds: 3600,
      threshold: 1,
      recipients: ["oncall@example.com"],
      cooldownSeconds: 86400,
      notifyOnResolve: false,
    },
    "faults",
    await ruleSecrets(db),
  );
  // Without the circuit breaker (a threshold no outage reaches): the retry budget runs out and operators must act.
  // Step 6 runs the same kind of outage with the breaker as it is by default.
  await db.pool.query(
    `INSERT INTO flow_scopes (kind, name, circuit_threshold) VALUES ('host', '127.0.0.1', 1000000)
     ON CONFLICT (kind, name) DO UPDATE SET circuit_threshold = 1000000, circuit_state = 'closed', consecutive_exceptions = 0,
       cooldown_ms = NULL, next_probe_at = NULL, probe_lease = NULL`,
  );
  await db.pool.query(`SELECT pg_notify('conveyor_flow', '')`);
  await backend.pause();
  await load("o", 20, undefined, { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 200 });
  await waitUntil(
    settled(idsOf("o-"), ["exception"]),
    "the commands sent during the outage to need an operator",
    60_000,
  );
  // the alert fires while SMTP is down: its delivery is kept and retried
  await waitUntil(
    async () =>
      (
        await db.pool.query(
          `SELECT 1 FROM alert_deliveries WHERE sent_at IS NULL AND attempts > 0 AND last_error IS NOT NULL`,
        )
      ).rowCount! > 0,
    "a failed alert delivery attempt",
    60_000,
  );
  smtp = await startSmtp(smtpPort);
  await smtp.waitFor(1, 90_000);
  await waitUntil(
    async () => (await db.pool.query(`SELECT 1 FROM alert_deliveries WHERE sent_at IS NULL`)).rowCount === 0,
    "every alert delivery sent",
  );
  const { rows: deliveries } = await db.pool.query<{ attempts: number }>(`SELECT attempts FROM alert_deliveries`);
  report.push({
    fault: "backend outage longer than the retry window + SMTP outage",
    injected: "backend port closed and SMTP server stopped; 20 commands submitted (3 attempts each)",
    found:
      `${describeCounts(await statusCounts(idsOf("o-")))} (visible to operators);` +
      ` alert email delivered after ${deliveries[0]!.attempts} tries, ${smtp.mails.length} email`,
  });

  // 5. the backend is back: an operator retries what needs one; everything converges
  backend.chooser(null);
  await backend.resume();
  const all = [...receipts.values()];
  const needing = (
    await db.pool.query<{ id: string }>(`SELECT id FROM commands WHERE status IN ('exception', 'failed')`)
  ).rows.map((r) => r.id);
  const retried = await retryCommands(db, { ids: needing }, { name: "faults-operator" }, "backend is back");
  expect(retried.skipped).toEqual([]);
  await waitUntil(settled(all, ["succeeded"]), "every command to succeed after the operator's retry", 120_000);
  report.push({
    fault: "operator Retry after the outage",
    injected: `Retry of the ${needing.length} commands in exception/failed`,
    found: describeCounts(await statusCounts(all)),
  });

  // 6. a backend outage with the circuit breaker (its defaults: 5 consecutive exceptions, 10 s cooldown doubling):
  // 150 commands of 3 tries each, submitted into an outage of a backend answering 503. Nothing may go to exception,
  // everything succeeds once the backend is back, and the dead backend hears from us a bounded number of times.
  await db.pool.query(`UPDATE flow_scopes SET circuit_threshold = NULL WHERE kind = 'host' AND name = '127.0.0.1'`);
  await db.pool.query(`SELECT pg_notify('conveyor_flow', '')`);
  const outageStart = Date.now();
  backend.outage(503);
  await load("c", 150, undefined, { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 200 });
  const circuitRow = async () =>
    (
      await db.pool.query<{ circuit_state: string; cooldown_ms: number | null }>(
        `SELECT circuit_state, cooldown_ms FROM flow_scopes WHERE kind = 'host' AND name = '127.0.0.1'`,
      )
    ).rows[0];
  // the outage lasts until the breaker has opened and its first probe has failed (the cooldown doubled)
  await waitUntil(async () => (await circuitRow())?.cooldown_ms === 20_000, "a failed probe", 60_000);
  const outageEnd = Date.now();
  const toDead = backend.requests.filter((r) => r.at >= outageStart && r.at < outageEnd);
  const duringOutage = await statusCounts(idsOf("c-"));
  backend.outage(null);
  await waitUntil(settled(idsOf("c-"), ["succeeded"]), "every command of the outage to succeed", 120_000);
  expect(duringOutage.exception ?? 0).toBe(0);
  expect(await statusCounts(idsOf("c-"))).toEqual({ succeeded: 150 });
  // the exceptions that open it (5), the attempts in flight on two workers of concurrency 10 (at most 20), one probe
  expect(toDead.length).toBeLessThanOrEqual(5 + 20 + 1);
  report.push({
    fault: "backend outage with the circuit breaker",
    injected: `backend answering 503 for ${Math.round((outageEnd - outageStart) / 1000)} s; 150 commands submitted (3 tries each)`,
    found: `${toDead.length} requests reached the dead backend (without the breaker: up to 450); during the outage ${describeCounts(duringOutage)}; afterwards ${describeCounts(await statusCounts(idsOf("c-")))}`,
  });
  expect((await circuitRow())?.circuit_state).toBe("closed");

  // Nothing lost, nothing doubled.
  const everything = [...receipts.values()];
  const { rows: totals } = await db.pool.query<{ n: number; keys: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT idempotency_key)::int AS keys FROM commands`,
  );
  expect(totals[0]).toEqual({ n: receipts.size, keys: receipts.size });
  expect(await statusCounts(everything)).toEqual({ succeeded: everything.length });
  const applied = backend.applied.filter((a) => !a.startsWith("refund:"));
  const twice = applied.filter((a, i) => applied.indexOf(a) !== i);
  if (twice.length > 0 && process.env.FAULTS_DEBUG) {
    const keyOf = new Map([...receipts].map(([k, id]) => [id, k]));
    for (const id of twice.slice(0, 4)) {
      const { rows } = await db.pool.query(
        `SELECT number, kind, outcome, error, worker, started_at, finished_at FROM attempts WHERE command_id = $1 ORDER BY number`,
        [id],
      );
      console.log("DOUBLED", keyOf.get(id), JSON.stringify(rows, null, 1));
      console.log(
        "REQS",
        JSON.stringify(
          backend.requests
            .filter((r) => r.headers["x-command-id"] === id || r.path.endsWith(id))
            .map((r) => [r.method, r.path, r.at]),
        ),
      );
    }
  }
  expect(twice).toEqual([]);
  expect(new Set(applied)).toEqual(new Set(everything));
  expect(backend.maxInFlightPerCommand()).toBe(1);
  // The alert: one email for the one firing, however long SMTP was away.
  const { rows: alerts } = await db.pool.query<{ events: number; deliveries: number; sent: number }>(
    `SELECT (SELECT count(*)::int FROM alert_events WHERE kind = 'firing') AS events,
     count(*)::int AS deliveries, count(sent_at)::int AS sent FROM alert_deliveries`,
  );
  expect(alerts[0]).toEqual({ events: 1, deliveries: 1, sent: 1 });
  expect(smtp.mails).toHaveLength(1);
  const { rows: kinds } = await db.pool.query<{ k: string; n: number }>(
    `SELECT kind || ' ' || coalesce(outcome::text, '?') AS k, count(*)::int AS n
     FROM attempts WHERE kind IN ('execute', 'reconcile') GROUP BY 1 ORDER BY 2 DESC`,
  );
  report.push({
    fault: "backend chaos (all phases)",
    injected: [...chaosCounts].map(([k, v]) => `${v} ${k}`).join(", "),
    found: `attempts: ${kinds.map((r) => `${r.n} ${r.k}`).join(", ")}`,
  });
  report.push({
    fault: "totals",
    injected: `${receipts.size} commands accepted, ${clientRetries} client retries`,
    found:
      `${receipts.size} stored (one per key), all succeeded,` +
      ` ${applied.length} applications at the backend for ${new Set(applied).size} commands (none twice),` +
      ` at most 1 request per command at once, ${smtp.mails.length} alert email`,
  });
});
