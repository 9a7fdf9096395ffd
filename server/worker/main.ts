// `npm run worker`: one worker process. It connects, listens for new
// commands, and stops cleanly on SIGTERM/SIGINT. (The execution engine is
// built on this loop in server/worker/.)
import os from "node:os";
import pg from "pg";
import { parseEnv, EnvError } from "../env";
import { createDb } from "../db/client";
import { createLogger } from "../log";
import { resolveSecretKey } from "../db/settings";
import { ensureBootstrapToken } from "../auth/tokens";

async function main() {
  let e;
  try {
    e = parseEnv();
    if (!e.DATABASE_URL) throw new EnvError("DATABASE_URL is not set: the worker needs the database (npm start sets it for the embedded PostgreSQL).");
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
  const workerId = `${os.hostname()}:${process.pid}`;
  const log = createLogger({ name: "worker", level: e.LOG_LEVEL }).child({ worker: workerId });
  const db = createDb(e.DATABASE_URL, { max: Math.min(e.WORKER_CONCURRENCY + 2, 50), applicationName: "conveyor-worker" });
  if (e.BOOTSTRAP_API_TOKEN) await ensureBootstrapToken(db, await resolveSecretKey(db, e.SECRET_KEY), e.BOOTSTRAP_API_TOKEN);

  let stopping = false;
  let listener: pg.Client | undefined;
  const listen = async () => {
    const c = new pg.Client({ connectionString: e.DATABASE_URL, application_name: "conveyor-worker-listen" });
    c.on("error", () => {});
    c.on("end", () => {
      if (!stopping) setTimeout(() => listen().catch(() => {}), 1000);
    });
    c.on("notification", () => log.debug("commands arrived"));
    await c.connect();
    await c.query("LISTEN conveyor_commands");
    listener = c;
  };
  await listen();
  log.info({ concurrency: e.WORKER_CONCURRENCY }, "worker started");

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "worker stopping");
    await listener?.end().catch(() => {});
    await db.close();
    log.info("worker stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
