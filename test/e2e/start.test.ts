// `npm start` run for real (scripts/start.ts as a child process in its own
// process group, against a fresh test database, with a slow backend on
// loopback): what it prints on a first start and on a restart, the
// environment of the processes it starts, and Ctrl-C with commands in flight
// (the worker finishes or hands back within its grace period; a second
// Ctrl-C stops at once).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import { attemptsOf, getRow, waitForStatus, waitUntil } from "../helpers/engine";
import { freePort, runTs, type Proc } from "../helpers/proc";
import { authenticateToken, signingSecretOf } from "../../server/auth/tokens";
import { resolveSecretKey } from "../../server/db/settings";

// Longer than the 15 s after which npm start used to kill the worker, so that this test fails there.
const GRACE_MS = 17_000;

let t: TestDb;
let backend: Backend;
const running: Proc[] = [];
let token = "";

function start(port: number): Proc {
  const p = runTs(
    "scripts/start.ts",
    [],
    {
      DATABASE_URL: t.url,
      PORT: String(port),
      HTTP_ALLOWED_HOSTS: "*",
      WORKER_GRACE_MS: String(GRACE_MS),
      LOG_LEVEL: "info",
      // as on a fresh machine
      ADMIN_EMAIL: undefined,
      ADMIN_PASSWORD: undefined,
      BOOTSTRAP_API_TOKEN: undefined,
      SECRET_KEY: undefined,
      NEXT_TELEMETRY_DISABLED: undefined,
      NO_COLOR: "1",
    },
    { detached: true },
  );
  running.push(p);
  return p;
}

/** Ctrl-C at a terminal: SIGINT to the whole foreground process group (npm start and its children). */
const ctrlC = (p: Proc) => process.kill(-p.child.pid!, "SIGINT");

/** The web process and the worker npm start runs (not the esbuild service tsx starts beside them). */
const childrenOf = (pid: number) =>
  execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" })
    .split("\n")
    .filter((l) => /server\/web\/main\.ts|scripts\/worker\.mjs/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
const environOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function submit(port: number, key: string) {
  const res = await fetch(`http://127.0.0.1:${port}/api/trpc/intake.submit`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      type: "http",
      idempotencyKey: key,
      payload: { url: `${backend.url}/do/${key}`, timeoutMs: 120_000 },
    }),
  });
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result.data.id as string;
}
const received = (key: string) =>
  waitUntil(() => backend.requests.some((r) => r.path === `/do/${key}`), `the backend to receive ${key}`);

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
  backend = await startBackend();
  backend.plan("slow-1", [{ kind: "slow", ms: 3_000 }]); // finishes within the grace period
  backend.plan("hang-1", [{ kind: "hang" }]); // does not: handed back (answers the next time)
  backend.plan("hang-2", [{ kind: "hang" }]);
}, 300_000);

afterAll(async () => {
  for (const p of running) {
    try {
      process.kill(-p.child.pid!, "SIGKILL");
    } catch {}
  }
  await backend?.close();
  await t?.drop();
});

describe("npm start", () => {
  const firstStart =
    "first start: prints the admin password, the first token with its signing secret, readable log lines;" +
    " its processes run without Next's telemetry";
  it(firstStart, { timeout: 180_000 }, async () => {
    const port = await freePort();
    const p = start(port);
    await p.waitFor(/Press Ctrl-C to stop\./, 120_000);
    // The worker reports over IPC that it started; its log line travels through another pipe, so wait for it too.
    await p.waitFor(/worker INFO  worker started/, 10_000);
    const out = p.output();

    token = /First API token \(admin scope, shown once; keep it\): (cvy_\S+)/.exec(out)?.[1] ?? "";
    const secret =
      /Its signing secret \(verifies the X-Conveyor-Signature of callbacks; shown once; keep it\): (whsec_\S+)/.exec(
        out,
      )?.[1];
    const principal = await authenticateToken(t.db, token);
    expect(principal).toMatchObject({ kind: "token", scope: "admin", name: "first token (npm start)" });
    // the secret its callbacks are signed with
    expect(secret).toBe(await signingSecretOf(t.db, await resolveSecretKey(t.db, undefined), principal!.clientId));
    expect(out.match(/whsec_/g)).toHaveLength(1);
    expect(out).toMatch(/Sign in as admin@localhost with password \S+ \(shown once; you will be asked to change it\)/);

    // The children's JSON log lines are shown as short lines; none is JSON.
    expect(out).toMatch(/^\d\d:\d\d:\d\d worker INFO  worker started  concurrency=10 types=\["http"\]/m);
    expect(out).toMatch(/^\d\d:\d\d:\d\d web    INFO  web listening  port=\d+$/m);
    for (const line of out.split("\n")) expect(line.trimStart().startsWith("{"), line).toBe(false);

    const kids = childrenOf(p.child.pid!);
    expect(kids).toHaveLength(2); // the web process and the worker
    for (const pid of kids) expect(environOf(pid)).toContain("NEXT_TELEMETRY_DISABLED=1");
  });

  it("Ctrl-C waits for the commands in flight through the worker's grace period, hands back what is left, and exits after the worker", async () => {
    const p = running[0]!;
    const port = Number(/API at http:\/\/localhost:(\d+)/.exec(p.output())![1]);
    const kids = childrenOf(p.child.pid!);
    const slow = await submit(port, "slow-1");
    const hang = await submit(port, "hang-1");
    await Promise.all([received("slow-1"), received("hang-1")]);

    const from = p.output().length;
    const t0 = Date.now();
    ctrlC(p);
    await p.waitFor(
      /waiting for 2 commands in flight to finish … \d+ s \(then they are handed back; Ctrl-C again to stop at once\)/,
    );
    await p.waitFor(/waiting for 1 command in flight to finish … \d+ s/);
    expect((await waitForStatus(t.db, slow, ["succeeded"])).status).toBe("succeeded"); // finished within the grace period
    const { code } = await p.exited;
    const took = Date.now() - t0;
    const tail = p.output().slice(from);

    expect(code).toBe(0);
    expect(took).toBeGreaterThanOrEqual(GRACE_MS);
    expect(tail).toMatch(/The worker stopped after \d+\.\d s \(exit 0\)\.\n(.*\n)*\[conveyor\] Stopped\./);
    for (const pid of kids) expect(alive(pid)).toBe(false);

    // handed back by the worker at the end of its grace, not left to expire
    const row = await getRow(t.db, hang);
    expect(row).toMatchObject({ status: "retrying", lease_id: null, needs_reconcile: true });
    expect(row.error).toMatch(/shut down during the attempt/);
    const attempts = await attemptsOf(t.db, hang);
    expect(attempts).toMatchObject([
      { number: 1, kind: "execute", outcome: "exception", error: expect.stringMatching(/shut down/) },
    ]);
    expect(JSON.stringify({ row, attempts })).not.toMatch(/lease expired/);
  }, 90_000);

  it("a restart says truly how to sign in, and a second Ctrl-C stops at once", async () => {
    const port = await freePort();
    const p = start(port);
    await p.waitFor(/Press Ctrl-C to stop\./, 120_000);
    const out = p.output();
    expect(out).toMatch(
      /\[conveyor\] Sign in as admin@localhost with the password the first npm start generated and printed \(not changed since\)\.\n/,
    );
    expect(out).not.toMatch(/ADMIN_EMAIL|First API token|whsec_/);

    // The command handed back at the last stop runs again (the backend answers it this time).
    const hang1 = (await t.db.pool.query(`SELECT id FROM commands WHERE idempotency_key = 'hang-1'`)).rows[0].id;
    await waitForStatus(t.db, hang1, ["succeeded"]);

    const hang = await submit(port, "hang-2");
    await received("hang-2");
    const kids = childrenOf(p.child.pid!);
    ctrlC(p);
    await p.waitFor(
      /waiting for 1 command in flight to finish … \d+ s \(then it is handed back; Ctrl-C again to stop at once\)/,
    );
    const t0 = Date.now();
    ctrlC(p);
    const { code } = await p.exited;
    expect(Date.now() - t0).toBeLessThan(GRACE_MS / 2);
    expect(code).toBe(0);
    expect(p.output()).toMatch(
      "Stopping now (second signal). The worker is killed with 1 command in flight: it stays leased until WORKER_LEASE_MS" +
        " (30 s) runs out, then the next worker takes it back and reconciles it.",
    );
    for (const pid of kids) expect(alive(pid)).toBe(false);
    // left leased, as a crash would: the next worker's rescuer takes it back
    const row = await getRow(t.db, hang);
    expect(row.status).toBe("running");
    expect(row.lease_id).not.toBeNull();
  }, 180_000);
});
