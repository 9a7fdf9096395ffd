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
import { createToken } from "../server/auth/tokens";
import { ensureFirstAdmin } from "../server/auth/users";
import { buildIfNeeded } from "./build-if-needed";
import { formatLogLine, lineSplitter } from "./start-output";

const root = path.resolve(import.meta.dirname, "..");
const say = (msg: string) => console.log(`[conveyor] ${msg}`);
const color = !!process.stdout.isTTY && !process.env.NO_COLOR;

// Next.js prints a telemetry notice on its first build and sends usage data: not from here (the build and both processes inherit this).
process.env.NEXT_TELEMETRY_DISABLED ??= "1";

/** On a fresh install with no user, the first admin: ADMIN_EMAIL/ADMIN_PASSWORD, or a generated password shown once. */
async function createFirstAdmin(url: string, email?: string, password?: string) {
  const db = createDb(url, { max: 1 });
  try {
    return await ensureFirstAdmin(db, { email, password });
  } finally {
    await db.close();
  }
}

/** On a fresh install with no token at all, make one admin token (and its signing secret) so the API can be tried at once. */
async function createFirstToken(url: string, secretKeyHex: string | undefined): Promise<{ token: string; signingSecret: string } | undefined> {
  const db = createDb(url, { max: 1 });
  try {
    if ((await db.prisma.apiClient.count()) > 0) return undefined;
    const { token, signingSecret } = await createToken(db, await resolveSecretKey(db, secretKeyHex), { name: "first token (npm start)", scope: "admin", createdBy: "npm start" });
    return { token, signingSecret };
  } finally {
    await db.close();
  }
}

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

  const firstToken = env.BOOTSTRAP_API_TOKEN ? undefined : await createFirstToken(databaseUrl, env.SECRET_KEY);
  const firstAdmin = await createFirstAdmin(databaseUrl, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);

  try {
    buildIfNeeded(root, say);
  } catch (err) {
    await embedded?.stop();
    throw err;
  }

  const childEnv = { ...process.env, DATABASE_URL: databaseUrl, PORT: String(env.PORT), NODE_ENV: "production" as const };
  let stopping = false;
  const children = new Map<string, ChildProcess>();
  const run = (name: string, file: string, args: string[], restarts = 0) => {
    const child = spawn(file, args, { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    children.set(name, child);
    for (const [stream, print] of [
      [child.stdout!, console.log],
      [child.stderr!, console.error],
    ] as const) {
      const lines = lineSplitter((l) => print(formatLogLine(l, name, { color })));
      stream.on("data", (d: Buffer) => lines.push(d));
      stream.on("end", () => lines.end());
    }
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

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the web app and the worker…`);
    await Promise.all(
      [...children.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => c.kill("SIGKILL"), 15_000);
            c.once("exit", () => (clearTimeout(t), resolve()));
            c.kill("SIGTERM");
          }),
      ),
    );
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
    const ok = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  say(`Conveyor is running: console at ${env.PUBLIC_URL}, API at ${url}/api/trpc`);
  if (firstAdmin?.password) say(`Sign in as ${firstAdmin.email} with password ${firstAdmin.password} (shown once; you will be asked to change it)`);
  else if (firstAdmin) say(`Sign in as ${firstAdmin.email} with ADMIN_PASSWORD`);
  else say("Sign in with your console account (ADMIN_EMAIL / ADMIN_PASSWORD made the first admin).");
  if (env.BOOTSTRAP_API_TOKEN) say("API token: the value of BOOTSTRAP_API_TOKEN (admin scope). To verify its callbacks, get a signing secret with tokens.rotateSecret (or Rotate secret on the tokens page).");
  else if (firstToken) {
    say(`First API token (admin scope, shown once; keep it): ${firstToken.token}`);
    say(`Its signing secret (verifies the X-Conveyor-Signature of callbacks; shown once; keep it): ${firstToken.signingSecret}`);
  }
  say("Press Ctrl-C to stop.");
}

main().catch((err) => {
  console.error(`[conveyor] ${(err as Error).message}`);
  process.exit(1);
});
