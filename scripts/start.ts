// `npm start`: the whole product on one machine. Without DATABASE_URL it runs
// an embedded PostgreSQL (data in DATA_DIR, default .data/), applies the
// migrations, builds the web app if no build exists, then runs the web app
// and one worker, restarting either if it dies, until Ctrl-C. Their JSON logs
// are shown as short readable lines (scripts/start-output.ts).
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { envOrExit } from "../server/env";
import { startEmbedded, type EmbeddedPostgres } from "../server/db/embedded";
import { migrate } from "../server/db/migrate";
import { createDb } from "../server/db/client";
import { resolveSecretKey } from "../server/db/settings";
import { createFirstToken } from "../server/auth/tokens";
import { ensureFirstAdmin, generatedAdmin } from "../server/auth/users";
import type { StartReport, StopReport } from "../server/worker/main";
import { buildIfNeeded } from "./build-if-needed";
import { createTerminal, formatLogLine, lineSplitter, signInHint } from "./start-output";

const root = path.resolve(import.meta.dirname, "..");
const term = createTerminal(process.stdout, process.stderr);
const say = (msg: string) => term.line(`[conveyor] ${msg}`);
const color = !!process.stdout.isTTY && !process.env.NO_COLOR;

// Next.js prints a telemetry notice on its first build and sends usage data: not from here (the build and both processes inherit this).
process.env.NEXT_TELEMETRY_DISABLED ??= "1";

/** After a stop signal, the worker's own grace period (WORKER_GRACE_MS) plus this long to hand back and write what is left. */
const WORKER_STOP_MARGIN_MS = 5_000;
/** The web process exits by itself within 10 s of a stop signal. */
const WEB_STOP_MS = 15_000;

/** On a fresh install with no user, the first admin: ADMIN_EMAIL/ADMIN_PASSWORD, or a generated password shown once. */
async function firstAdminAndHint(url: string, email?: string, password?: string) {
  const db = createDb(url, { max: 1 });
  try {
    const made = await ensureFirstAdmin(db, { email, password });
    return { made, generated: made ? null : await generatedAdmin(db) };
  } finally {
    await db.close();
  }
}

/** On a fresh install with no token at all, make one admin token (and its signing secret) so the API can be tried at once. */
async function firstToken(
  url: string,
  secretKeyHex: string | undefined,
): Promise<{ token: string; signingSecret: string } | undefined> {
  const db = createDb(url, { max: 1 });
  try {
    return await createFirstToken(db, await resolveSecretKey(db, secretKeyHex));
  } finally {
    await db.close();
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

async function main() {
  const env = envOrExit();

  let embedded: EmbeddedPostgres | undefined;
  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    say(`Starting the embedded PostgreSQL (data in ${path.resolve(env.DATA_DIR)}, port ${env.EMBEDDED_PG_PORT})`);
    embedded = await startEmbedded({ dir: env.DATA_DIR, port: env.EMBEDDED_PG_PORT, log: say });
    databaseUrl = embedded.url;
  }
  const m = await migrate(databaseUrl, path.join(root, "prisma/migrations"));
  say(m.applied.length ? `Applied migrations: ${m.applied.join(", ")}` : "Database schema is up to date");

  const madeToken = env.BOOTSTRAP_API_TOKEN ? undefined : await firstToken(databaseUrl, env.SECRET_KEY);
  const admin = await firstAdminAndHint(databaseUrl, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);

  try {
    buildIfNeeded(root, say);
  } catch (err) {
    await embedded?.stop();
    throw err;
  }

  const childEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: String(env.PORT),
    NODE_ENV: "production" as const,
  };
  let stopping = false;
  // Commands the worker is running, as it reports while it stops (server/worker/main.ts).
  let workerRunning: number | undefined;
  let workerUp: () => void = () => {};
  const workerStarted = new Promise<void>((resolve) => (workerUp = resolve));
  const children = new Map<string, ChildProcess>();
  const run = (name: string, file: string, args: string[], restarts = 0) => {
    const ipc = name === "worker";
    const child = spawn(file, args, {
      cwd: root,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe", ...(ipc ? (["ipc"] as const) : [])],
    });
    children.set(name, child);
    for (const [stream, to] of [
      [child.stdout!, "out"],
      [child.stderr!, "err"],
    ] as const) {
      const lines = lineSplitter((l) => term.line(formatLogLine(l, name, { color }), to));
      stream.on("data", (d: Buffer) => lines.push(d));
      stream.on("end", () => lines.end());
    }
    if (ipc)
      child.on("message", (msg: StopReport | StartReport) => {
        if (msg?.conveyor === "worker-stopping") workerRunning = msg.running;
        if (msg?.conveyor === "worker-started") workerUp();
      });
    child.on("exit", (code, signal) => {
      children.delete(name);
      if (stopping) return;
      const delay = Math.min(30_000, 1000 * 2 ** restarts);
      say(`${name} exited (${signal ?? code}); restarting in ${delay / 1000}s`);
      setTimeout(() => !stopping && run(name, file, args, restarts + 1), delay);
    });
  };
  run("web", process.execPath, ["--import", "tsx", path.join(root, "server/web/main.ts")]);
  run("worker", process.execPath, [path.join(root, "scripts/worker.mjs")]); // compiled, as npm run worker

  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) =>
      c.exitCode !== null || c.signalCode !== null ? resolve() : c.once("exit", () => resolve()),
    );
  let forced = false;
  const force = () => {
    forced = true;
    term.clearStatus();
    const n = workerRunning ?? 0;
    say(
      `Stopping now (second signal).` +
        (children.has("worker") && n > 0
          ? ` The worker is killed with ${plural(n, "command")} in flight: ${n === 1 ? "it stays" : "they stay"}` +
            ` leased until WORKER_LEASE_MS (${env.WORKER_LEASE_MS / 1000} s) runs out,` +
            ` then the next worker takes ${n === 1 ? "it" : "them"} back and reconciles ${n === 1 ? "it" : "them"}.`
          : ""),
    );
    for (const c of children.values()) c.kill("SIGKILL");
  };

  /** Waits for the worker to finish or hand back what it runs, showing what it waits for. */
  const stopWorker = async (c: ChildProcess) => {
    const started = Date.now();
    const graceEnd = started + env.WORKER_GRACE_MS;
    const killAt = graceEnd + WORKER_STOP_MARGIN_MS;
    const tick = () => {
      const t = Date.now();
      if (t >= killAt) {
        term.clearStatus();
        say(
          `The worker did not stop within WORKER_GRACE_MS + ${WORKER_STOP_MARGIN_MS / 1000} s;` +
            ` killing it (what it still held is taken back when its leases expire).`,
        );
        c.kill("SIGKILL");
        return;
      }
      const n = workerRunning;
      if (n === undefined) return term.status(`[conveyor] waiting for the worker to stop…`, "unknown");
      if (n === 0) return term.status(`[conveyor] waiting for the worker to write its last results and stop…`, 0);
      if (t < graceEnd) {
        const left = Math.ceil((graceEnd - t) / 1000);
        return term.status(
          `[conveyor] waiting for ${plural(n, "command")} in flight to finish … ${left} s` +
            ` (then ${n === 1 ? "it is" : "they are"} handed back; Ctrl-C again to stop at once)`,
          n,
        );
      }
      term.status(
        `[conveyor] grace period over: the worker hands back ${plural(n, "command")} in flight…`,
        `over-${n}`,
      );
    };
    tick();
    const timer = setInterval(tick, 1000);
    c.kill("SIGTERM");
    await exited(c);
    clearInterval(timer);
    term.clearStatus();
    if (!forced)
      say(
        `The worker stopped after ${((Date.now() - started) / 1000).toFixed(1)} s (${c.signalCode ? `killed by ${c.signalCode}` : `exit ${c.exitCode}`}).`,
      );
  };

  const stopWeb = async (c: ChildProcess) => {
    const t = setTimeout(() => c.kill("SIGKILL"), WEB_STOP_MS);
    c.kill("SIGTERM");
    await exited(c);
    clearTimeout(t);
  };

  const stop = async (signal: string) => {
    if (stopping) return force();
    stopping = true;
    say(
      `${signal}: stopping the web app and the worker` +
        ` (the worker finishes or hands back what it runs; up to WORKER_GRACE_MS, ${env.WORKER_GRACE_MS / 1000} s)…`,
    );
    const web = children.get("web");
    const worker = children.get("worker");
    await Promise.all([web && stopWeb(web), worker && stopWorker(worker)]);
    if (embedded) {
      say("Stopping the embedded PostgreSQL…");
      await embedded.stop();
    }
    say("Stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  const url = `http://localhost:${env.PORT}`;
  for (let i = 0; i < 300 && !stopping; i++) {
    const ok = await fetch(`${url}/api/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // The worker waits for the database by itself; say "running" once it runs too (or after a minute, saying so).
  const late = await Promise.race([
    workerStarted.then(() => false),
    new Promise<boolean>((r) => setTimeout(() => r(true), 60_000).unref()),
  ]);
  if (late && !stopping) say("The worker has not reported that it started within a minute; see its log lines above.");
  // Credentials made by this start are printed even when it is being stopped already: they are shown only this once.
  if (!stopping) say(`Conveyor is running: console at ${env.PUBLIC_URL}, API at ${url}/api/trpc`);
  say(signInHint(admin.made, admin.generated, { adminEmailSet: !!env.ADMIN_EMAIL }));
  if (env.BOOTSTRAP_API_TOKEN)
    say(
      "API token: the value of BOOTSTRAP_API_TOKEN (admin scope)." +
        " To verify its callbacks, get a signing secret with tokens.rotateSecret (or Rotate secret on the tokens page).",
    );
  else if (madeToken) {
    say(`First API token (admin scope, shown once; keep it): ${madeToken.token}`);
    say(
      `Its signing secret (verifies the X-Conveyor-Signature of callbacks; shown once; keep it): ${madeToken.signingSecret}`,
    );
  }
  if (!stopping) say("Press Ctrl-C to stop.");
}

main().catch((err) => {
  console.error(`[conveyor] ${(err as Error).message}`);
  process.exit(1);
});
