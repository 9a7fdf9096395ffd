// The claim loop: claims due commands (woken by LISTEN/NOTIFY, with a periodic
// scan as fallback) into a local queue, runs up to `concurrency` at once, and
// writes every outcome. On stop it claims no more, lets running attempts
// finish within the grace period, then interrupts and hands back the rest.
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { claim } from "../db/claim";
import { flowControl } from "./flow";
import type { Claimed, Completion } from "../engine/types";
import { handBack, runnerFailed } from "../engine/transitions";
import { runClaimed, Interrupt, ShuttingDown, describeError, type AttemptEnv } from "./attempt";
import { createCompleter, isConnectionError } from "./completer";
import { Wake, sleep } from "../lib/wake";
import type { WorkerMetrics } from "./metrics";
import type { FlowTraffic } from "./flow-traffic";
import type { PreparedClaim } from "./prepared-claim";
import { onWake, type Service } from "./service";

const PREFETCH_WINDOW_MS = 50;
const PREFETCH_CAP = 50; // × concurrency
const PREFETCH_MAX = 1_000; // a claim of more rows saves little, and holds more leases to renew

/** A lease this worker holds, until its result is written. */
export type Held = { c: Claimed; intr: Interrupt; done?: Promise<void> };

export type ClaimLoop = Service & {
  /** Handlers running now. */
  readonly running: number;
  /** Every lease this worker holds (by lease id), until its result is written: the heartbeat renews them. */
  readonly held: ReadonlyMap<string, Held>;
};

export function claimLoop(o: {
  db: Db;
  registry: Registry;
  log: Logger;
  workerId: string;
  concurrency: number;
  listener?: Listener;
  leaseMs: number;
  pollMs: number;
  graceMs: number;
  /** Commands claimed ahead of free slots; default adaptive (see below). */
  prefetch?: number;
  prepared: PreparedClaim;
  attemptEnv: Pick<AttemptEnv, "resultEndpoint" | "checkUrl" | "fetch">;
  metrics?: WorkerMetrics;
  traffic?: FlowTraffic;
  /** See CompleterOptions.lingerMs. */
  completionLingerMs?: number;
}): ClaimLoop {
  const { log, metrics } = o;
  const { resultEndpoint, checkUrl, fetch: outboundFetch } = o.attemptEnv;
  const wake = new Wake();
  const held = new Map<string, Held>();
  // Claimed but not started yet: a local queue, so that one claim (one commit)
  // fetches a batch. Its size adapts to how fast handlers finish: about
  // PREFETCH_WINDOW_MS of work, so that fast commands come in large batches
  // while slow ones are not hoarded away from other workers.
  const ready: Claimed[] = [];
  let avgHandlerMs = 10;
  const prefetch = () =>
    o.prefetch ??
    Math.max(
      1,
      Math.min(
        PREFETCH_CAP * o.concurrency,
        PREFETCH_MAX,
        Math.round((o.concurrency * PREFETCH_WINDOW_MS) / Math.max(0.05, avgHandlerMs)),
      ),
    );
  let active = 0; // handlers running (the concurrency limit)
  let readyGated = 0; // of `ready`, commands of gated units: started first
  // Under load a small write of completions waits up to 5 ms for more: at ~3,000 http commands/s a write carried
  // ~24 completions, each write costing PostgreSQL about a millisecond beyond its rows (bench:engine --linger).
  const completer = createCompleter(o.db, log, { lingerMs: o.completionLingerMs ?? 5 });
  const flow = flowControl({
    db: o.db,
    registry: o.registry,
    log,
    workerId: o.workerId,
    leaseMs: o.leaseMs,
    pollMs: o.pollMs,
    listener: o.listener,
    wake: () => wake.fire(),
    metrics,
    traffic: o.traffic,
  });
  const gatedIds = new Set<string>(); // leases of commands claimed through a gated unit
  let dbFailures = 0;
  /** Claiming stopped because results waiting to be written filled the room; the next write wakes it. */
  let writesBehind = false;

  const settle = async (h: Held, completion: Completion) => {
    const applied = await completer.complete(completion);
    held.delete(h.c.leaseId);
    if (writesBehind) {
      writesBehind = false;
      wake.fire(); // room again
    }
    const c = h.c;
    if (completion.attempts.length === 0) return; // handed back unstarted
    // Every line about an attempt carries the command, its type, the attempt number and (from the parent logger) the worker.
    const last = completion.attempts.at(-1)!;
    const fields = {
      command: c.id,
      type: c.type,
      attempt: last.number,
      kind: last.kind,
      outcome: last.outcome,
      status: completion.status,
    };
    if (!applied) log.warn(fields, "lease was taken back before the result was written; the new holder reconciles");
    else if (completion.status === "exception")
      log.warn({ ...fields, error: completion.error }, "command needs an operator");
    else if (last.outcome === "exception")
      log.info({ ...fields, error: last.error, retryAt: completion.runAt }, "attempt outcome unknown; will reconcile");
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
        completion = await runClaimed(c, o.registry, {
          workerId: o.workerId,
          intr: h.intr,
          resultEndpoint,
          checkUrl,
          fetch: outboundFetch,
          counterpart: flow,
        });
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
      o.traffic?.attempts(c, completion.attempts);
      await settle(h, completion);
      if (gatedIds.delete(c.leaseId)) {
        flow.released(c);
        wake.fire();
      }
    })();
  };

  const pump = () => {
    while (!loop.stopping && active < o.concurrency && ready.length > 0) {
      const c = ready.shift()!;
      if (gatedIds.has(c.leaseId)) readyGated--;
      const h = held.get(c.leaseId)!;
      // Its circuit opened since the claim (this worker saw it, or the fleet was told): not started, handed back.
      if (flow.holdBack(c)) void settle(h, handBack(c)).then(() => gatedIds.delete(c.leaseId));
      else launch(h);
    }
  };

  const hold = (cs: Claimed[], gated = false) => {
    for (const c of cs) {
      held.set(c.leaseId, { c, intr: new Interrupt() });
      if (gated) {
        gatedIds.add(c.leaseId);
        ready.splice(readyGated++, 0, c);
      } else ready.push(c);
    }
    pump();
    return cs.length;
  };

  const claimNow = async (room: number): Promise<number> => {
    let claimed: Claimed[];
    try {
      claimed = await claim(o.db, o.workerId, room, o.leaseMs, flow.codeGatedTypes, o.prepared.usable);
    } catch (err) {
      // A migration changed the type of a column the prepared claim returns: PostgreSQL refuses the
      // cached statement on this connection for good. Claim unprepared from now on (nothing was claimed).
      if (!/cached plan must not change result type/.test(String((err as Error)?.message))) throw err;
      o.prepared.broken();
      log.warn({ err: String(err) }, "the schema changed under the prepared claim; claiming without it from now on");
      claimed = await claim(o.db, o.workerId, room, o.leaseMs, flow.codeGatedTypes, false);
    }
    return hold(claimed);
  };

  /**
   * Gated commands go to the front of the local queue, prefetched like the others: the queue holds about
   * PREFETCH_WINDOW_MS of work, within the START_SPREAD_MS a rate limit keeps in hand for the delay between
   * a grant and the request (server/flow/allowance.ts); a concurrency limit counts them once claimed.
   */
  const claimGatedNow = async (room: number) => (room > 0 ? hold(await flow.claim(room), true) : 0);

  /** One round: claim when the local queue runs low (at once when idle, in batches under load); true: claim again at once. */
  const step = async (): Promise<boolean> => {
    const p = prefetch();
    // Held also counts commands run but not yet written (the completer's queue, each lease renewed until then): when
    // writes fall behind, claims stop at twice the usual leases, where counting only the running and the ready let a
    // stalled write turn into hundreds of thousands of leases, each renewed, whose renewal blocked the write.
    const room = Math.min(o.concurrency + p - active - ready.length, 2 * (o.concurrency + p) - held.size);
    if (room <= 0 && held.size > active + ready.length) writesBehind = true;
    if (room > 0 && ready.length <= Math.floor(p / 2)) {
      try {
        const g = await claimGatedNow(room);
        const n = await claimNow(room - g);
        dbFailures = 0;
        if (n + g === room) return true; // there may be more
      } catch (err) {
        dbFailures++;
        log.error({ err: isConnectionError(err) ? String(err) : err, attempt: dbFailures }, "claim failed; retrying");
        await sleep(Math.min(10_000, 100 * 2 ** dbFailures));
        return true;
      }
    }
    return false;
  };
  const loop = onWake(wake, o.pollMs, step);

  return {
    name: "claim loop",
    get running() {
      return active;
    },
    held,
    start() {
      o.listener?.on("conveyor_commands", () => wake.fire());
      o.listener?.onConnect(() => wake.fire()); // notifications may have been missed while disconnected
      flow.start();
      loop.start();
    },
    /** Stops claiming; lets running attempts finish within graceMs; interrupts and hands back the rest. */
    async stop() {
      await loop.stop();
      flow.stop();
      const notStarted = ready.splice(0).map((c) => settle(held.get(c.leaseId)!, handBack(c)));
      const all = Promise.all([...notStarted, ...[...held.values()].map((r) => r.done)]);
      const timer = setTimeout(() => {
        for (const r of held.values()) r.intr.abort(new ShuttingDown());
      }, o.graceMs);
      await all;
      clearTimeout(timer);
    },
    /** Claims no more and starts nothing more; what runs goes on, and leases are left to expire. */
    abandon() {
      loop.halt();
      flow.stop();
    },
  };
}
