// The worker: claims due commands (woken by LISTEN/NOTIFY, with a periodic
// scan as fallback), runs up to `concurrency` at once under leases it renews,
// writes every outcome, takes back expired leases (rescuer), sends upstream
// callbacks, and on stop finishes or hands back what it holds.
import type { Db } from "../db/client";
import type { Registry } from "../handlers/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { claim, claimCapped, renewLeases, rescueExpired, type Completion, type Expired } from "../db/queue";
import { runClaimed, LeaseLost, ShuttingDown, describeError, type AttemptEnv } from "./attempt";
import { afterCompensationError, afterUnknown, type Claimed } from "./policy";
import { canReconcile } from "../handlers/types";
import { createCompleter, isConnectionError } from "./completer";
import { startCallbackSender } from "./callbacks";
import { Wake, sleep } from "./wake";

export type WorkerOptions = {
  db: Db;
  registry: Registry;
  log: Logger;
  workerId: string;
  concurrency: number;
  listener?: Listener;
  /** Lease length; renewed every third of it. A dead worker's commands are taken back after it expires. */
  leaseMs?: number;
  /** Fallback scan when no notification arrives (scheduled retries, missed notifications). */
  pollMs?: number;
  rescueEveryMs?: number;
  /** On stop: how long running attempts may take to finish before they are interrupted and handed back. */
  graceMs?: number;
  secretKey: () => Promise<Buffer>;
  resultEndpoint?: AttemptEnv["resultEndpoint"];
  /** Sends upstream callbacks too (default true). */
  callbacks?: boolean;
  callbackTimeoutMs?: number;
  /** HTTP_ALLOWED_HOSTS: checked before every outbound HTTP request (commands and callbacks). */
  checkUrl?: (url: string) => Promise<void>;
};

type Running = { c: Claimed; ctrl: AbortController; done: Promise<void> };

export function startWorker(o: WorkerOptions) {
  const leaseMs = o.leaseMs ?? 30_000;
  const pollMs = o.pollMs ?? 1_000;
  const rescueEveryMs = o.rescueEveryMs ?? 5_000;
  const graceMs = o.graceMs ?? 20_000;
  const log = o.log;
  const wake = new Wake();
  const running = new Map<string, Running>(); // by lease id
  const completer = createCompleter(o.db, log);
  const capped = o.registry.names().flatMap((n) => {
    const cap = o.registry.get(n)!.concurrency;
    return cap ? [{ type: n, cap }] : [];
  });
  const cappedNames = capped.map((c) => c.type);
  let stopping = false;
  let dbFailures = 0;

  o.listener?.on("conveyor_commands", () => wake.fire());
  o.listener?.onConnect(() => wake.fire()); // notifications may have been missed while disconnected

  const launch = (c: Claimed) => {
    const ctrl = new AbortController();
    const entry: Running = { c, ctrl, done: Promise.resolve() };
    running.set(c.leaseId, entry);
    entry.done = (async () => {
      let completion: Completion;
      try {
        completion = await runClaimed(c, o.registry, { workerId: o.workerId, signal: ctrl.signal, resultEndpoint: o.resultEndpoint, checkUrl: o.checkUrl });
      } catch (err) {
        // runClaimed classifies everything; this is a bug guard so the claim is always released.
        log.error({ err, command: c.id }, "attempt runner failed");
        completion = { id: c.id, leaseId: c.leaseId, status: "exception", phase: c.phase, runAt: null, tries: c.tries, needsReconcile: false, error: `internal error: ${describeError(err)}`, attemptCount: c.attemptCount, attempts: [] };
      }
      const applied = await completer.complete(completion);
      if (!applied) log.warn({ command: c.id }, "lease was taken back before the result was written; the new holder reconciles");
      else log.debug({ command: c.id, type: c.type, status: completion.status }, "attempt recorded");
    })().finally(() => {
      running.delete(c.leaseId);
      wake.fire();
    });
  };

  const claimNow = async (free: number): Promise<number> => {
    let got = await claim(o.db, o.workerId, free, leaseMs, cappedNames);
    for (const c of got) launch(c);
    let n = got.length;
    for (const { type, cap } of capped) {
      if (n >= free) break;
      got = await claimCapped(o.db, o.workerId, type, cap, free - n, leaseMs);
      for (const c of got) launch(c);
      n += got.length;
    }
    return n;
  };

  const loop = (async () => {
    while (!stopping) {
      const free = o.concurrency - running.size;
      if (free > 0) {
        try {
          const n = await claimNow(free);
          dbFailures = 0;
          if (n === free) continue; // there may be more: claim again as slots free up
        } catch (err) {
          dbFailures++;
          log.error({ err: isConnectionError(err) ? String(err) : err, attempt: dbFailures }, "claim failed; retrying");
          await sleep(Math.min(10_000, 100 * 2 ** dbFailures));
          continue;
        }
      }
      await wake.wait(pollMs);
    }
  })();

  // Lease renewal: commands whose lease was lost are interrupted.
  const heartbeat = setInterval(async () => {
    const ids = [...running.keys()];
    if (ids.length === 0) return;
    try {
      const held = await renewLeases(o.db, ids, leaseMs);
      for (const id of ids) if (!held.has(id)) running.get(id)?.ctrl.abort(new LeaseLost());
    } catch (err) {
      log.warn({ err: String(err) }, "could not renew leases");
    }
  }, Math.max(50, Math.floor(leaseMs / 3)));

  // Rescuer: takes back expired leases of workers that died or lost the database.
  const decideExpired = (rows: Expired[]): Completion[] =>
    rows.map((r) => {
      const type = o.registry.get(r.type);
      const parsed = type?.schema.safeParse(r.payload);
      const payload = parsed?.success ? parsed.data : r.payload;
      const kind = r.status === "compensating" ? "compensate" : r.status === "awaiting" ? "poll" : r.needsReconcile && type && canReconcile(type, payload) ? "reconcile" : "execute";
      const error = `lease expired: worker ${r.lockedBy} stopped renewing it (it crashed or lost the database); outcome unknown`;
      const attempt = { number: r.attemptCount + 1, kind, outcome: "exception" as const, startedAt: r.attemptStartedAt ?? new Date(), finishedAt: new Date(), error, worker: r.lockedBy };
      const base = { id: r.id, leaseId: r.leaseId, phase: r.phase, attempts: [attempt], attemptCount: r.attemptCount + 1 };
      if (r.status === "awaiting") return { ...base, status: "awaiting", runAt: new Date(), tries: r.tries, needsReconcile: false, error: null } as Completion;
      const tries = r.tries + 1;
      if (!type) return { ...base, status: r.status === "compensating" ? "exception" : "exception", runAt: null, tries, needsReconcile: false, error: `${error}; unknown command type` } as Completion;
      const next = r.status === "compensating" ? afterCompensationError(type, r, tries, error) : afterUnknown(type, payload, r, tries, error);
      const status = next.to;
      return {
        ...base,
        status,
        runAt: next.to === "retrying" || next.to === "compensating" ? new Date(Date.now() + next.delayMs) : null,
        tries,
        needsReconcile: next.to === "retrying",
        error: "error" in next ? next.error : error,
      } as Completion;
    });
  const rescuer = setInterval(async () => {
    try {
      const rescued = await rescueExpired(o.db, 200, decideExpired);
      if (rescued.length) log.warn({ commands: rescued.map((r) => r.id) }, "took back expired leases");
    } catch (err) {
      log.warn({ err: String(err) }, "rescuer failed");
    }
  }, rescueEveryMs);

  const callbacks = o.callbacks === false ? undefined : startCallbackSender({ db: o.db, log, workerId: o.workerId, listener: o.listener, secretKey: o.secretKey, timeoutMs: o.callbackTimeoutMs, checkUrl: o.checkUrl });

  return {
    get running() {
      return running.size;
    },
    /** Stops claiming; lets running attempts finish within graceMs; interrupts and hands back the rest. */
    async stop() {
      stopping = true;
      wake.fire();
      await loop;
      const all = Promise.all([...running.values()].map((r) => r.done));
      const timer = setTimeout(() => {
        for (const r of running.values()) r.ctrl.abort(new ShuttingDown());
      }, graceMs);
      await all;
      clearTimeout(timer);
      clearInterval(heartbeat);
      clearInterval(rescuer);
      await callbacks?.stop();
    },
    /** For tests: abandon everything at once, as a crash would (leases are left to expire). */
    abandon() {
      stopping = true;
      clearInterval(heartbeat);
      clearInterval(rescuer);
      void callbacks?.stop();
    },
  };
}
