// The worker: claims due commands (woken by LISTEN/NOTIFY, with a periodic
// scan as fallback), runs up to `concurrency` at once under leases it renews,
// writes every outcome, takes back expired leases (rescuer), sends upstream
// callbacks, and on stop finishes or hands back what it holds.
import type { Db } from "../db/client";
import type { Registry } from "../handlers/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { claim, claimCapped, commandsRowEstimate, PREPARED_CLAIM_MIN_ROWS } from "../db/claim";
import { renewLeases } from "../db/leases";
import { rescueExpired } from "../db/rescue";
import { runClaimed, Interrupt, LeaseLost, ShuttingDown, describeError, type AttemptEnv } from "./attempt";
import { handBack, rescued, runnerFailed } from "../engine/transitions";
import type { Claimed, Completion, Expired } from "../engine/types";
import { createCompleter, isConnectionError } from "./completer";
import { startCallbackSender } from "./callbacks";
import { Wake, sleep } from "../lib/wake";
import type { WorkerMetrics } from "./metrics";
import { isTransient } from "./completer";

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
  /** Commands claimed ahead of free slots (a local queue). Default: adaptive, about 50 ms of work, at most 50 × concurrency and 1,000. */
  prefetch?: number;
  /** Sends upstream callbacks too (default true). */
  callbacks?: boolean;
  callbackTimeoutMs?: number;
  /** HTTP_ALLOWED_HOSTS: checked before every outbound HTTP request (commands and callbacks). */
  checkUrl?: (url: string) => Promise<void>;
  /** Outbound fetch (commands and callbacks) that pins the checked address; default: the global fetch. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  metrics?: WorkerMetrics;
  /** Claims with a named (prepared) statement once the table is big enough for its generic plan (default true; DB_PREPARED_STATEMENTS). */
  preparedStatements?: boolean;
};

const PREFETCH_WINDOW_MS = 50;
const PREFETCH_CAP = 50; // × concurrency
const PREFETCH_MAX = 1_000; // a claim of more rows saves little, and holds more leases to renew
const RENEW_TRIES = 3;

type Held = { c: Claimed; intr: Interrupt; done?: Promise<void> };

export function startWorker(o: WorkerOptions) {
  const leaseMs = o.leaseMs ?? 30_000;
  const pollMs = o.pollMs ?? 1_000;
  const rescueEveryMs = o.rescueEveryMs ?? 5_000;
  const graceMs = o.graceMs ?? 20_000;
  const log = o.log;
  const wake = new Wake();
  // Every lease this worker holds (by lease id), until its result is written.
  const held = new Map<string, Held>();
  // Claimed but not started yet: a local queue, so that one claim (one commit)
  // fetches a batch. Its size adapts to how fast handlers finish: about
  // PREFETCH_WINDOW_MS of work, so that fast commands come in large batches
  // while slow ones are not hoarded away from other workers.
  const ready: Claimed[] = [];
  let avgHandlerMs = 10;
  const prefetch = () =>
    o.prefetch ?? Math.max(1, Math.min(PREFETCH_CAP * o.concurrency, PREFETCH_MAX, Math.round((o.concurrency * PREFETCH_WINDOW_MS) / Math.max(0.05, avgHandlerMs))));
  let active = 0; // handlers running (the concurrency limit)
  const completer = createCompleter(o.db, log);
  const capped = o.registry.names().flatMap((n) => {
    const cap = o.registry.get(n)!.concurrency;
    return cap ? [{ type: n, cap }] : [];
  });
  const cappedNames = capped.map((c) => c.type);
  let stopping = false;
  let dbFailures = 0;

  // The prepared claim's generic plan is safe once the statistics know the
  // table (see server/db/claim.ts): checked now and every minute.
  let preparedClaim = false;
  let preparedBroken = false;
  const checkTableSize = async () => {
    try {
      preparedClaim = (o.preparedStatements ?? true) && (await commandsRowEstimate(o.db)) >= PREPARED_CLAIM_MIN_ROWS;
    } catch {
      // keep the last answer; the next check retries
    }
  };
  void checkTableSize();
  const tableSizeTimer = setInterval(checkTableSize, 60_000);

  o.listener?.on("conveyor_commands", () => wake.fire());
  o.listener?.onConnect(() => wake.fire()); // notifications may have been missed while disconnected

  const metrics = o.metrics;
  const settle = async (h: Held, completion: Completion) => {
    const applied = await completer.complete(completion);
    held.delete(h.c.leaseId);
    const c = h.c;
    if (completion.attempts.length === 0) return; // handed back unstarted
    // Every line about an attempt carries the command, its type, the attempt number and (from the parent logger) the worker.
    const last = completion.attempts.at(-1)!;
    const fields = { command: c.id, type: c.type, attempt: last.number, kind: last.kind, outcome: last.outcome, status: completion.status };
    if (!applied) log.warn(fields, "lease was taken back before the result was written; the new holder reconciles");
    else if (completion.status === "exception") log.warn({ ...fields, error: completion.error }, "command needs an operator");
    else if (last.outcome === "exception") log.info({ ...fields, error: last.error, retryAt: completion.runAt }, "attempt outcome unknown; will reconcile");
    else log.debug(fields, "attempt recorded");
  };

  const launch = (h: Held) => {
    const c = h.c;
    active++;
    const t0 = performance.now();
    metrics?.pickup(c.type, (Date.now() - c.runAt.getTime()) / 1000);
    h.done = (async () => {
      let completion: Completion;
      try {
        completion = await runClaimed(c, o.registry, { workerId: o.workerId, intr: h.intr, resultEndpoint: o.resultEndpoint, checkUrl: o.checkUrl, fetch: o.fetch });
      } catch (err) {
        // runClaimed classifies everything; this is a bug guard so the claim is always released.
        log.error({ err, command: c.id }, "attempt runner failed");
        completion = runnerFailed(c, describeError(err));
      } finally {
        avgHandlerMs = 0.9 * avgHandlerMs + 0.1 * (performance.now() - t0);
        // The slot is free as soon as the handler is done; the lease is kept (and renewed) until the result is written.
        active--;
        pump();
        wake.fire();
      }
      metrics?.attempts(c.type, completion.attempts);
      await settle(h, completion);
    })();
  };

  const pump = () => {
    while (!stopping && active < o.concurrency && ready.length > 0) launch(held.get(ready.shift()!.leaseId)!);
  };

  const hold = (cs: Claimed[]) => {
    for (const c of cs) {
      held.set(c.leaseId, { c, intr: new Interrupt() });
      ready.push(c);
    }
    pump();
    return cs.length;
  };

  const claimNow = async (room: number): Promise<number> => {
    let claimed: Claimed[];
    try {
      claimed = await claim(o.db, o.workerId, room, leaseMs, cappedNames, preparedClaim && !preparedBroken);
    } catch (err) {
      // A migration changed the type of a column the prepared claim returns: PostgreSQL refuses the
      // cached statement on this connection for good. Claim unprepared from now on (nothing was claimed).
      if (!/cached plan must not change result type/.test(String((err as Error)?.message))) throw err;
      preparedBroken = true;
      log.warn({ err: String(err) }, "the schema changed under the prepared claim; claiming without it from now on");
      claimed = await claim(o.db, o.workerId, room, leaseMs, cappedNames, false);
    }
    let n = hold(claimed);
    for (const { type, cap } of capped) {
      if (n >= room) break;
      n += hold(await claimCapped(o.db, o.workerId, type, cap, room - n, leaseMs));
    }
    return n;
  };

  const loop = (async () => {
    while (!stopping) {
      const p = prefetch();
      const room = o.concurrency + p - active - ready.length;
      // Claim when the local queue runs low: at once when idle, in batches under load.
      if (room > 0 && ready.length <= Math.floor(p / 2)) {
        try {
          const n = await claimNow(room);
          dbFailures = 0;
          if (n === room) continue; // there may be more
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

  // Lease renewal: commands whose lease was lost are interrupted. A renewal that fails for a passing
  // reason (connection, deadlock) is tried again at once rather than a heartbeat later: each miss
  // eats a third of the lease.
  const renew = async (leases: { id: string; leaseId: string }[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await renewLeases(o.db, leases, leaseMs);
      } catch (err) {
        if (attempt >= RENEW_TRIES || !isTransient(err)) throw err;
        log.warn({ err: String(err), attempt }, "could not renew leases; trying again");
        await sleep(50 * attempt);
      }
    }
  };
  const heartbeat = setInterval(async () => {
    const ids = [...held.keys()];
    if (ids.length === 0) return;
    try {
      const renewed = await renew([...held.values()].map((h) => ({ id: h.c.id, leaseId: h.c.leaseId })));
      for (const id of ids) {
        const h = held.get(id);
        if (renewed.has(id) || !h || h.intr.interrupted) continue;
        metrics?.leaseLost();
        log.warn({ command: h.c.id, type: h.c.type, attempt: h.c.attemptCount + 1 }, "lease lost; interrupting the attempt");
        h.intr.abort(new LeaseLost());
      }
    } catch (err) {
      log.warn({ err: String(err) }, "could not renew leases");
    }
  }, Math.max(50, Math.floor(leaseMs / 3)));

  // Rescuer: takes back expired leases of workers that died or lost the database.
  const decideExpired = (rows: Expired[]): Completion[] =>
    rows.map((r) => {
      const type = o.registry.get(r.type);
      const parsed = type?.schema.safeParse(r.payload);
      return rescued(r, type, parsed?.success ? parsed.data : r.payload);
    });
  const rescuer = setInterval(async () => {
    try {
      const rescued = await rescueExpired(o.db, 200, decideExpired);
      if (rescued.length) {
        metrics?.rescued(rescued.length);
        log.warn({ commands: rescued.map((r) => r.id) }, "took back expired leases");
      }
    } catch (err) {
      log.warn({ err: String(err) }, "rescuer failed");
    }
  }, rescueEveryMs);

  const callbacks = o.callbacks === false ? undefined : startCallbackSender({ db: o.db, log, workerId: o.workerId, listener: o.listener, secretKey: o.secretKey, timeoutMs: o.callbackTimeoutMs, checkUrl: o.checkUrl, fetch: o.fetch, metrics });

  return {
    get running() {
      return active;
    },
    /** Stops claiming; lets running attempts finish within graceMs; interrupts and hands back the rest. */
    async stop() {
      stopping = true;
      wake.fire();
      await loop;
      const notStarted = ready.splice(0).map((c) => settle(held.get(c.leaseId)!, handBack(c)));
      const all = Promise.all([...notStarted, ...[...held.values()].map((r) => r.done)]);
      const timer = setTimeout(() => {
        for (const r of held.values()) r.intr.abort(new ShuttingDown());
      }, graceMs);
      await all;
      clearTimeout(timer);
      clearInterval(heartbeat);
      clearInterval(rescuer);
      clearInterval(tableSizeTimer);
      await callbacks?.stop();
    },
    /** For tests: abandon everything at once, as a crash would (leases are left to expire). */
    abandon() {
      stopping = true;
      clearInterval(heartbeat);
      clearInterval(rescuer);
      clearInterval(tableSizeTimer);
      void callbacks?.stop();
    },
  };
}
