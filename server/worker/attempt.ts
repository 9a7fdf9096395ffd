// Carries out one claimed command: reconcile first when the last outcome is
// unknown, then execute (or poll, or compensate), each under a timeout and the
// lease's abort signal; returns the completion to write. No database access here.
import { CommandTypeError, type AttemptContext } from "../command-types/types";
import { startSpan, tracingOn, type OpenSpan } from "../lib/tracing";
import type { Registry } from "../command-types/registry";
import type { AttemptKind, AttemptOutcome, Claimed, Completion } from "../engine/types";
import { afterCompensationError, afterFailure, afterUnknown, canReconcile, pollDelayMs } from "../engine/policy";
import {
  AttemptLog,
  awaitResult,
  compensated,
  compensateLater,
  follow,
  retryLater,
  succeeded,
  toException,
} from "../engine/transitions";
import { loggableUrl } from "../log";
import type { Counterpart } from "./flow";

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}
export class LeaseLost extends Error {
  constructor() {
    super("lease lost (another worker may have taken the command over)");
    this.name = "LeaseLost";
  }
}
export class ShuttingDown extends Error {
  constructor() {
    super("worker shut down during the attempt");
    this.name = "ShuttingDown";
  }
}

/** A short, log-safe description of why an attempt threw. */
export function describeError(err: unknown): string {
  let msg: string;
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof CommandTypeError) msg = err.message;
  else if (err instanceof Error && typeof code === "string" && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code))
    msg = `network error: ${code}`; // undici's request throws the connection's error itself
  else if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    msg =
      err.message === "fetch failed" && cause
        ? `network error: ${cause.code ?? cause.message}`
        : `${err.name === "Error" ? "" : err.name + ": "}${err.message}`;
  } else msg = String(err);
  // Error messages may quote a URL whole (fetch does): keep its credentials and query string out of logs and records.
  msg = msg.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (u) => loggableUrl(u));
  return msg.length > 2000 ? msg.slice(0, 2000) + "…" : msg;
}

/** Runs fn under a timeout and an outer signal; settles even if fn ignores its signal. */
export async function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  outer: AbortSignal,
): Promise<T> {
  const intr = new Interrupt();
  const onOuter = () => intr.abort(outer.reason);
  if (outer.aborted) onOuter();
  else outer.addEventListener("abort", onOuter, { once: true });
  try {
    return await underTimeout(() => fn(intr.signal), timeoutMs, intr);
  } finally {
    outer.removeEventListener("abort", onOuter);
  }
}

/**
 * What interrupts an attempt: its timeout, a lost lease, shutdown. One per
 * claimed command. Its AbortSignal is made only when a handler asks for it:
 * an AbortController (an EventTarget) per command was ~10 % of a worker's own
 * CPU for handlers that never look at it.
 */
export class Interrupt {
  interrupted = false;
  reason: unknown = undefined;
  private ctrl: AbortController | undefined;
  /** Called once, on the first abort. */
  onAbort: ((reason: unknown) => void) | undefined;
  get signal(): AbortSignal {
    if (!this.ctrl) {
      this.ctrl = new AbortController();
      if (this.interrupted) this.ctrl.abort(this.reason);
    }
    return this.ctrl.signal;
  }
  abort(reason: unknown) {
    if (this.interrupted) return;
    this.interrupted = true;
    this.reason = reason;
    this.ctrl?.abort(reason);
    const f = this.onAbort;
    this.onAbort = undefined;
    f?.(reason);
  }
}

/**
 * Runs fn and interrupts it after timeoutMs; settles as soon as it is
 * interrupted (timeout, lost lease, shutdown), even if fn ignores its signal.
 */
export function underTimeout<T>(fn: () => Promise<T>, timeoutMs: number, intr: Interrupt): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (intr.interrupted) return reject(intr.reason);
    const timer = setTimeout(() => intr.abort(new TimeoutError(timeoutMs)), timeoutMs);
    intr.onAbort = (reason) => {
      clearTimeout(timer);
      reject(reason);
    };
    const settled = () => {
      clearTimeout(timer);
      intr.onAbort = undefined;
    };
    let p: Promise<T>;
    try {
      p = Promise.resolve(fn());
    } catch (err) {
      settled();
      return reject(err);
    }
    p.then(
      (v) => {
        settled();
        resolve(v);
      },
      (err) => {
        settled();
        reject(err);
      },
    );
  });
}

export type AttemptEnv = {
  workerId: string;
  /** The command's interruption: the worker aborts it when the lease is lost or on shutdown; a timeout aborts it too. */
  intr: Interrupt;
  now?: () => Date;
  /** HTTP_ALLOWED_HOSTS check for outbound requests. */
  checkUrl?: (url: string) => Promise<void>;
  /** Outbound fetch that pins checked addresses (see server/outbound/url-guard.ts). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Where and how an asynchronous backend may post its result (see server/commands/inbound.ts). */
  resultEndpoint?: (commandId: string) => { url: string; secret: string };
  /** The circuit breaker of the command's scope (./flow.ts): told of every answer and exception of the counterpart. */
  counterpart?: Counterpart;
};

export async function runClaimed(c: Claimed, registry: Registry, env: AttemptEnv): Promise<Completion> {
  const log = new AttemptLog(c, env.workerId, env.now);

  const type = registry.get(c.type);
  if (!type)
    return toException(
      log,
      c.tries,
      `unknown command type "${c.type}" (is this worker older than the one that accepted it?)`,
    );
  const parsed = type.schema.safeParse(c.payload);
  if (!parsed.success)
    return toException(
      log,
      c.tries,
      `stored payload does not match the type's schema: ${parsed.error.issues[0]?.message}`,
    );
  const payload = parsed.data;
  const timeoutMs = type.timeoutMs(payload);
  const intr = env.intr;
  // Tracing (DESIGN §10): each attempt is a span, a child of the submit's trace context, and its requests carry
  // the span's traceparent. Off and without stored context: neither span nor header, at the cost of this test.
  const traced = c.trace !== null || tracingOn();
  let span: OpenSpan | undefined;
  const begin = (kind: AttemptKind) => {
    if (!traced) return;
    span = startSpan(`conveyor.${kind}`, "consumer", c.trace, {
      "conveyor.command.id": c.id,
      "conveyor.command.type": c.type,
      "conveyor.attempt.kind": kind,
      "conveyor.attempt.number": log.count + 1,
      "conveyor.worker.id": env.workerId,
    });
  };
  /** Records the attempt, and ends its span. */
  const record = (
    kind: AttemptKind,
    started: Date,
    outcome: AttemptOutcome,
    error: string | null,
    detail?: unknown,
  ) => {
    log.record(kind, started, outcome, error, detail);
    if (span) {
      span.end({ "conveyor.attempt.outcome": outcome }, outcome === "exception" ? error : null);
      span = undefined;
    }
  };
  const ctx = (): AttemptContext => ({
    commandId: c.id,
    idempotencyKey: c.id,
    attempt: log.count + 1,
    get signal() {
      return intr.signal;
    },
    checkUrl: env.checkUrl,
    fetch: env.fetch,
    result: env.resultEndpoint?.(c.id),
    traceparent: span?.traceparent,
    tracestate: span?.tracestate ?? undefined,
  });
  const interrupted = (err: unknown) => err instanceof ShuttingDown || err instanceof LeaseLost;
  // The counterpart answered / did not: its circuit breaker hears of it. An exception while the
  // circuit is open (or the probe's own) uses none of the retry budget, and waits for the circuit, not a backoff.
  const answered = () => env.counterpart?.answered(c);
  const counts = async () => (env.counterpart ? env.counterpart.exception(c) : true);

  /** An exception that used no budget: as after any unknown outcome, but due as soon as the circuit lets it through. */
  const held = (l: AttemptLog, t: number, error: string) => {
    const next = afterUnknown(type, payload, c, t, error);
    return follow(l, t, next.to === "retrying" ? { ...next, delayMs: 0 } : next);
  };

  // --- compensation ---
  if (c.status === "compensating") {
    if (!type.compensate)
      return toException(log, c.tries, `compensation requested, but type "${type.name}" has no compensate`);
    const started = log.now();
    begin("compensate");
    const tries = c.tries + 1;
    try {
      const r = await underTimeout(() => type.compensate!(payload, ctx()), timeoutMs, intr);
      await answered();
      if (r.outcome === "success") {
        record("compensate", started, "success", null, r.result);
        return compensated(log, tries);
      }
      record("compensate", started, "failure", JSON.stringify(r.failure));
      return toException(log, tries, `compensation failed: ${JSON.stringify(r.failure)}`);
    } catch (err) {
      record("compensate", started, "exception", describeError(err));
      if (interrupted(err)) return compensateLater(log, c.tries, 0, `compensation: ${describeError(err)}`);
      if (!(await counts())) return compensateLater(log, c.tries, 0, `compensation: ${describeError(err)}`);
      return follow(log, tries, afterCompensationError(type, c, tries, describeError(err)));
    }
  }

  // --- awaiting an asynchronous backend: poll ---
  if (c.status === "awaiting") {
    if (!canReconcile(type, payload)) return awaitResult(log, c.tries, null);
    const maxWait = type.poll?.maxWaitMs ?? 24 * 3600_000;
    if (log.now().getTime() - c.stateChangedAt.getTime() > maxWait) {
      return toException(
        log,
        c.tries,
        `no result from the backend within ${Math.round(maxWait / 1000)} s of its acceptance`,
      );
    }
    const started = log.now();
    begin("poll");
    try {
      const q = await underTimeout(() => type.query!(payload, ctx()), timeoutMs, intr);
      if (q.outcome !== "unknown") await answered();
      record("poll", started, q.outcome, null, "detail" in q ? q.detail : undefined);
      if (q.outcome === "success") return succeeded(log, c.tries, q.result);
      if (q.outcome === "failure") return follow(log, c.tries, afterFailure(type, c, c.tries, q.failure));
      if (q.outcome === "not_found")
        return retryLater(log, c.tries, 0, false, "the backend no longer knows the accepted command; sending it again");
      return awaitResult(log, c.tries + 1, pollDelayMs(type, c.tries + 1));
    } catch (err) {
      record("poll", started, "exception", describeError(err));
      if (interrupted(err)) return awaitResult(log, c.tries, 0);
      if (!(await counts())) return awaitResult(log, c.tries, 0);
      return awaitResult(log, c.tries + 1, pollDelayMs(type, c.tries + 1));
    }
  }

  // --- running: reconcile first when the last outcome is unknown ---
  let tries = c.tries;
  if (c.needsReconcile) {
    if (canReconcile(type, payload)) {
      const started = log.now();
      begin("reconcile");
      try {
        const q = await underTimeout(() => type.query!(payload, ctx()), timeoutMs, intr);
        if (q.outcome !== "unknown") await answered();
        record("reconcile", started, q.outcome, null, "detail" in q ? q.detail : undefined);
        if (q.outcome === "success") return succeeded(log, tries, q.result);
        if (q.outcome === "failure") return follow(log, tries, afterFailure(type, c, tries, q.failure));
        if (q.outcome === "unknown") {
          tries++;
          return follow(
            log,
            tries,
            afterUnknown(
              type,
              payload,
              c,
              tries,
              "reconcile: the backend cannot tell yet what became of the last attempt",
            ),
          );
        }
        // not_found: never received; execute again below, with the same idempotency key
      } catch (err) {
        record("reconcile", started, "exception", describeError(err));
        if (interrupted(err)) return retryLater(log, tries, 0, true, describeError(err));
        if (!(await counts())) return held(log, tries, `reconcile: ${describeError(err)}`);
        tries++;
        return follow(log, tries, afterUnknown(type, payload, c, tries, `reconcile: ${describeError(err)}`));
      }
    } else if (!type.idempotent(payload)) {
      return toException(
        log,
        tries,
        "the last attempt's outcome is unknown, and this command can neither be reconciled (no status query) nor safely sent again (not idempotent)",
        true,
      );
    }
  }

  const started = log.now();

  begin("execute");
  tries++;
  try {
    const r = await underTimeout(() => type.execute(payload, ctx()), timeoutMs, intr);
    await answered();
    if (r.outcome === "success") {
      record("execute", started, "success", null);
      return succeeded(log, tries, r.result);
    }
    if (r.outcome === "failure") {
      record("execute", started, "failure", null, r.failure);
      return follow(log, tries, afterFailure(type, c, tries, r.failure));
    }
    record("execute", started, "accepted", null, r.detail);
    return awaitResult(log, 0, canReconcile(type, payload) ? pollDelayMs(type, 0) : null);
  } catch (err) {
    record("execute", started, "exception", describeError(err));
    // Interrupted by shutdown: not the command's fault, so it costs no try; the next attempt reconciles.
    if (interrupted(err)) return retryLater(log, tries - 1, 0, true, describeError(err));
    if (!(await counts())) return held(log, tries - 1, describeError(err));
    return follow(log, tries, afterUnknown(type, payload, c, tries, describeError(err)));
  }
}
