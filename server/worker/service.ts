// The one shape of a worker process's loops (claim loop, heartbeat, rescuer,
// pruner, callback sender, alert evaluator, …): started once, stopped once,
// started in order and stopped in the reverse order, each stop awaited before
// the next.
import type { Wake } from "../lib/wake";

export type Service = {
  name: string;
  start(): void;
  /** Resolves once the service has finished what it was doing. */
  stop(): Promise<void>;
  /** For tests: stop at once, as a crash would. Without it, abandoning calls stop() without waiting. */
  abandon?(): void;
};

/** Services run as one: started in order, stopped in the reverse order, one after another. */
export function serviceGroup(name: string, services: Service[]): Service & { abandon(): void } {
  const reversed = [...services].reverse();
  return {
    name,
    start() {
      for (const s of services) s.start();
    },
    async stop() {
      for (const s of reversed) await s.stop();
    },
    abandon() {
      for (const s of reversed) {
        if (s.abandon) s.abandon();
        else void s.stop();
      }
    },
  };
}

/** `tick` every `everyMs` (the first after `everyMs`); stop() clears the timer without waiting for a tick under way. */
export function interval(name: string, everyMs: number, tick: () => unknown): Service {
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    name,
    start() {
      timer = setInterval(tick, everyMs);
    },
    async stop() {
      clearInterval(timer);
    },
  };
}

/**
 * `run` every `everyMs` (the first after `everyMs`), given whether the
 * service is stopping (a long run may end early); stop() waits for the last
 * run. `run` handles its own errors.
 */
export function periodic(
  name: string,
  everyMs: number,
  run: (stopping: () => boolean) => Promise<void>,
): Service & { readonly stopping: boolean } {
  let stopping = false;
  let running: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    name,
    get stopping() {
      return stopping;
    },
    start() {
      timer = setInterval(() => {
        if (!stopping) running = run(() => stopping);
      }, everyMs);
    },
    async stop() {
      stopping = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * A loop of `step`: again at once when it answers true (there may be more),
 * else on the next `wake.fire()` or after `pollMs`. stop() wakes it and waits
 * for the step under way; halt() only tells it to end.
 */
export function onWake(wake: Wake, pollMs: number, step: () => Promise<boolean>) {
  let stopping = false;
  let loop: Promise<void> = Promise.resolve();
  return {
    get stopping() {
      return stopping;
    },
    start() {
      loop = (async () => {
        while (!stopping) {
          if (await step()) continue;
          await wake.wait(pollMs);
        }
      })();
    },
    async stop() {
      stopping = true;
      wake.fire();
      await loop;
    },
    halt() {
      stopping = true;
    },
  };
}

/** A service of a module that starts itself (`start` returns what stops it). */
export function started(name: string, start: () => { stop: () => Promise<unknown> }): Service {
  let handle: { stop: () => Promise<unknown> } | undefined;
  return {
    name,
    start() {
      handle = start();
    },
    async stop() {
      await handle?.stop();
    },
  };
}
