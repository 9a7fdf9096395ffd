import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

export type Proc = {
  child: ChildProcess;
  output: () => string;
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/**
 * Runs a TypeScript file with tsx; collects its output so tests can await a line instead of sleeping.
 * `detached`: in its own process group, so that a signal to -pid reaches it and its children, as Ctrl-C at a terminal does.
 */
export function runTs(
  file: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  opts: { detached?: boolean } = {},
): Proc {
  // node --import tsx: one process (the tsx wrapper would stand between us and signals).
  return runNode(["--import", "tsx", path.resolve(file), ...args], env, opts.detached);
}

/** Runs a worker process as `npm run worker` does (compiled by scripts/worker.mjs, not tsx); `entry` for another entry. */
export function runWorker(env: Record<string, string | undefined> = {}, entry?: string): Proc {
  return runNode([path.resolve("scripts/worker.mjs"), ...(entry ? [path.resolve(entry)] : [])], env);
}

function runNode(args: string[], env: Record<string, string | undefined>, detached = false): Proc {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m[0]);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re}; output so far:\n${out}`));
        }, timeoutMs);
        listeners.add(check);
        exited.then(() =>
          setTimeout(() => {
            if (listeners.has(check)) {
              listeners.delete(check);
              clearTimeout(timer);
              reject(new Error(`process exited before ${re}; output:\n${out}`));
            }
          }, 50),
        );
        check();
      }),
  };
}
