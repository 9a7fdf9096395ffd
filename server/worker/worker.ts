// The worker, as its services wired together: the claim loop claims and runs
// commands (./claim-loop.ts), the heartbeat renews their leases, the rescuer
// takes back expired leases of workers that died, the callback sender sends
// upstream callbacks, the scheduler submits the commands of schedules' ticks,
// and the prepared-claim check says when the claim may
// run as a prepared statement. Stopped in the reverse order of their start:
// the claim loop first, which waits for the attempts still running while the
// heartbeat keeps their leases; the callback sender last.
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import type { AttemptEnv } from "./attempt";
import { callbackSender } from "./callbacks";
import { claimLoop } from "./claim-loop";
import { flowTraffic } from "./flow-traffic";
import { heartbeat } from "./heartbeat";
import type { WorkerMetrics } from "./metrics";
import { preparedClaim } from "./prepared-claim";
import { rescuer } from "./rescuer";
import { batchWatcher } from "./batches";
import { scheduler } from "./scheduler";
import { serviceGroup, type Service } from "./service";

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
  /** How often the attempts counted per scope are added to flow_traffic (default 5 s; and on stop). */
  trafficFlushMs?: number;
  /** Runs the scheduler too (default true): schedules' ticks become commands (DESIGN §8). */
  schedules?: boolean;
  /** The scheduler's longest sleep when no schedule is due sooner (default 10 s). */
  schedulerPollMs?: number;
  /** Runs the batch watcher too (default true): the done check and callback of batches (DESIGN §8). */
  batches?: boolean;
  /** The batch watcher's longest time between two checks of every open batch (default 30 s). */
  batchPollMs?: number;
  /** Under load, how long a small write of completions waits for more (default 5 ms; 0: never; CompleterOptions.lingerMs). */
  completionLingerMs?: number;
  /** Claims with a named (prepared) statement once the table is big enough for its generic plan (default true; DB_PREPARED_STATEMENTS). */
  preparedStatements?: boolean;
};

export type Worker = Service & {
  /** Attempts running now. */
  readonly running: number;
  /** Stops claiming; lets running attempts finish within graceMs; interrupts and hands back the rest. */
  stop(): Promise<void>;
  /** For tests: abandon everything at once, as a crash would (leases are left to expire). */
  abandon(): void;
};

export function createWorker(o: WorkerOptions): Worker {
  const leaseMs = o.leaseMs ?? 30_000;
  const { db, log, metrics } = o;
  const prepared = preparedClaim({ db, enabled: o.preparedStatements ?? true });
  const traffic = flowTraffic({ db, log, everyMs: o.trafficFlushMs });
  const claims = claimLoop({
    db,
    registry: o.registry,
    log,
    workerId: o.workerId,
    concurrency: o.concurrency,
    listener: o.listener,
    leaseMs,
    pollMs: o.pollMs ?? 1_000,
    graceMs: o.graceMs ?? 20_000,
    prefetch: o.prefetch,
    prepared,
    attemptEnv: { resultEndpoint: o.resultEndpoint, checkUrl: o.checkUrl, fetch: o.fetch },
    metrics,
    traffic,
    completionLingerMs: o.completionLingerMs,
  });
  const services = serviceGroup("worker", [
    ...(o.callbacks === false
      ? []
      : [
          callbackSender({
            db,
            log,
            workerId: o.workerId,
            listener: o.listener,
            secretKey: o.secretKey,
            timeoutMs: o.callbackTimeoutMs,
            checkUrl: o.checkUrl,
            fetch: o.fetch,
            metrics,
          }),
        ]),
    ...(o.schedules === false
      ? []
      : [
          scheduler({
            db,
            registry: o.registry,
            log,
            listener: o.listener,
            secretKey: o.secretKey,
            metrics,
            pollMs: o.schedulerPollMs,
          }),
        ]),
    ...(o.batches === false ? [] : [batchWatcher({ db, log, listener: o.listener, pollMs: o.batchPollMs })]),
    prepared,
    // Stopped after the claim loop, so that the last attempts are saved too.
    traffic,
    rescuer({ db, registry: o.registry, log, everyMs: o.rescueEveryMs ?? 5_000, metrics }),
    heartbeat({ db, log, leaseMs, held: claims.held, metrics }),
    claims,
  ]);
  return {
    name: "worker",
    get running() {
      return claims.running;
    },
    start: services.start,
    stop: services.stop,
    abandon: services.abandon,
  };
}

/** A worker, started. */
export function startWorker(o: WorkerOptions): Worker {
  const w = createWorker(o);
  w.start();
  return w;
}
