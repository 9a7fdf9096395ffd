// Builds the Next.js app when there is no build, or when the sources changed
// since the last one (a fingerprint of the files the build reads is kept in .next/).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";

const INPUTS = [
  "app",
  "server",
  "components",
  "lib",
  "public",
  "next.config.ts",
  "instrumentation.ts",
  "postcss.config.mjs",
  "package-lock.json",
  "tsconfig.json",
];
const SKIP = new Set(["node_modules", ".next", "generated"]);

function walk(p: string, out: string[]) {
  if (!existsSync(p)) return;
  if (statSync(p).isDirectory()) {
    for (const e of readdirSync(p).sort()) if (!SKIP.has(e)) walk(path.join(p, e), out);
  } else out.push(p);
}

export function sourceFingerprint(root: string): string {
  const files: string[] = [];
  for (const i of INPUTS) walk(path.join(root, i), files);
  const h = createHash("sha256");
  for (const f of files) h.update(path.relative(root, f)).update("\0").update(readFileSync(f)).update("\0");
  return h.digest("hex");
}

/**
 * One build at a time per checkout (test files running in parallel both ask
 * for a build): a lock directory beside the temp files, taken atomically by
 * mkdir, holding its holder's pid. A waiter takes the lock over when that
 * process is gone (an `npm start` stopped during its build), or after 15
 * minutes whatever the reason.
 */
export function withBuildLock<T>(root: string, fn: () => T, log: (m: string) => void = console.log): T {
  const lock = path.join(
    os.tmpdir(),
    `conveyor-build-${createHash("sha256").update(path.resolve(root)).digest("hex").slice(0, 16)}.lock`,
  );
  const holderFile = path.join(lock, "pid");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let said = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(holderFile, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        const holder = existsSync(holderFile) ? Number(readFileSync(holderFile, "utf8")) : NaN;
        const age = Date.now() - statSync(lock).mtimeMs;
        // No pid a few seconds after the mkdir: its holder died in between (or predates the pid file).
        const gone = holder > 0 ? !isAlive(holder) : age > 10_000;
        if (gone || age > 15 * 60_000) {
          log(
            `Taking over the build lock of process ${holder || "?"} (${gone ? "it is gone" : "held for 15 minutes"})`,
          );
          rmSync(lock, { recursive: true, force: true });
          continue;
        }
        if (!said) log(`Waiting for the build that process ${holder || "?"} is running…`);
        said = true;
      } catch {}
      Atomics.wait(pause, 0, 0, 250);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

/** Returns true when a build ran. Throws when it fails. */
export function buildIfNeeded(root: string, log: (m: string) => void = console.log): boolean {
  const stamp = path.join(root, ".next", "conveyor-fingerprint");
  const fp = sourceFingerprint(root);
  const upToDate = () =>
    existsSync(path.join(root, ".next", "BUILD_ID")) && existsSync(stamp) && readFileSync(stamp, "utf8") === fp;
  if (upToDate()) return false;
  return withBuildLock(root, () => (upToDate() ? false : build(root, stamp, fp, log)), log);
}

function build(root: string, stamp: string, fp: string, log: (m: string) => void): boolean {
  log("Building the web app (no build yet, or the sources changed; about a minute)…");
  const r = spawnSync(path.join(root, "node_modules", ".bin", "next"), ["build"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("next build failed");
  writeFileSync(stamp, fp);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildIfNeeded(path.resolve(import.meta.dirname, ".."));
}
