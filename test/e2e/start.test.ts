// `npm start` run for real (scripts/start.ts as a child process, against a
// fresh test database): what it prints on a first start.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort, runTs, type Proc } from "../helpers/proc";
import { authenticateToken, signingSecretOf } from "../../server/auth/tokens";
import { resolveSecretKey } from "../../server/db/settings";

let t: TestDb;
const running: Proc[] = [];

function start(port: number): Proc {
  const p = runTs("scripts/start.ts", [], {
    DATABASE_URL: t.url,
    PORT: String(port),
    LOG_LEVEL: "info",
    // as on a fresh machine
    ADMIN_EMAIL: undefined,
    ADMIN_PASSWORD: undefined,
    BOOTSTRAP_API_TOKEN: undefined,
    SECRET_KEY: undefined,
    NEXT_TELEMETRY_DISABLED: undefined,
    NO_COLOR: "1",
  });
  running.push(p);
  return p;
}

/** The web process and the worker npm start runs (not the esbuild service tsx starts beside them). */
const childrenOf = (pid: number) =>
  execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" })
    .split("\n")
    .filter((l) => /server\/web\/main\.ts|scripts\/worker\.mjs/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
const environOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");

beforeAll(async () => {
  buildIfNeeded(path.resolve("."));
  t = await createTestDb();
}, 300_000);

afterAll(async () => {
  // npm start stops its web process and worker on SIGINT
  for (const p of running) {
    p.child.kill("SIGINT");
    await p.exited;
  }
  await t?.drop();
}, 60_000);

describe("npm start", () => {
  it("first start: prints the admin password, the first token with its signing secret, readable log lines; its processes run without Next's telemetry", async () => {
    const port = await freePort();
    const p = start(port);
    await p.waitFor(/Press Ctrl-C to stop\./, 120_000);
    const out = p.output();

    const token = /First API token \(admin scope, shown once; keep it\): (cvy_\S+)/.exec(out)?.[1] ?? "";
    const secret = /Its signing secret \(verifies the X-Conveyor-Signature of callbacks; shown once; keep it\): (whsec_\S+)/.exec(out)?.[1];
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
  }, 180_000);
});
