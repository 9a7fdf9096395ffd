// The intake API (DESIGN §3, §8) as methods. Every submitted command carries
// an idempotency key, made here when the caller gives none and kept across the
// transport's retries: a retry after a lost answer finds the stored command
// (`duplicate: true`) instead of storing a second one.
import { ConveyorError } from "./errors.js";
import { sleep, Transport, type TransportOptions } from "./transport.js";
import { activeTraceContext, readSource, traceHeaders, type TraceContext, type TraceContextSource } from "./trace.js";
import {
  isAtRest,
  type BatchOptions,
  type BatchView,
  type CommandView,
  type GetInput,
  type GetManyResult,
  type TypedSubmitInput,
  type Receipt,
  type SubmitBatchInput,
  type SubmitBatchResult,
  type SubmitInput,
} from "./types.js";

export type ConveyorOptions = TransportOptions & {
  /**
   * The trace context a submit carries (W3C `traceparent` / `tracestate`
   * headers; Conveyor sends a child of it on every request it makes for the
   * command). Default: the active OpenTelemetry context, when the application
   * has registered the OpenTelemetry API (read from globalThis, without
   * depending on it); a function to take it from elsewhere; `false` to send none.
   */
  traceContext?: TraceContextSource | false;
};

/** Options every call takes. */
export type CallOptions = {
  /** Aborting it stops the call (and its retries); the call rejects with the signal's reason. */
  signal?: AbortSignal;
};

export type SubmitOptions = CallOptions & {
  /** This submit's trace context, instead of the one `traceContext` gives; `null`: none. */
  trace?: TraceContext | null;
};

export type SubmitBatchOptions = SubmitOptions & { batch?: BatchOptions };

export type WaitForOptions = CallOptions & {
  /** Give up after this long (default 60 s): rejects with a ConveyorError of code WAIT_TIMEOUT. */
  timeoutMs?: number;
  /** First delay between two looks (default 250 ms), growing by half at each up to `maxPollMs`. */
  pollMs?: number;
  /** Longest delay between two looks (default 5 s). */
  maxPollMs?: number;
};

/** The most ids `intake.getMany` takes at once; `getMany` sends longer lists in pieces. */
export const MAX_IDS_PER_REQUEST = 1000;

/**
 * A new idempotency key: a UUID v7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits.
 * Time-ordered keys take their entries at the right edge of the server's unique index of keys instead of on
 * a random page of a history-sized index (with millions of commands in history, each random key costs intake
 * a page read and, after a checkpoint, a whole page written to the WAL). Written here rather than taken from
 * `uuid` so the package keeps no runtime dependency; Web Crypto is what Node 20, browsers and edge share.
 */
export function newIdempotencyKey(now: number = Date.now()): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  for (let i = 5, t = now; i >= 0; i--, t = Math.floor(t / 256)) b[i] = t % 256;
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The input with an idempotency key: the caller's, or a new one. Anything but an object is sent as is, for the server to refuse. */
function withKey<T>(input: T): T {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
  const key = (input as { idempotencyKey?: unknown }).idempotencyKey;
  return key === undefined ? { ...input, idempotencyKey: newIdempotencyKey() } : input;
}

const WAIT_TIMED_OUT = new Error("waitFor timed out");

export class Conveyor {
  private readonly transport: Transport;
  private readonly traceContext: TraceContextSource | false;

  constructor(options: ConveyorOptions) {
    this.transport = new Transport(options);
    this.traceContext = options.traceContext ?? activeTraceContext;
  }

  /** The trace headers of a submit, read as it is called (the caller's active context), kept across its retries. */
  private traceHeaders(options: SubmitOptions): Record<string, string> | undefined {
    return traceHeaders(options.trace !== undefined ? options.trace : readSource(this.traceContext));
  }

  /** Stores one command; answers its receipt (`duplicate: true` when its idempotency key was used before). */
  submit<T extends string>(input: TypedSubmitInput<T>, options: SubmitOptions = {}): Promise<Receipt> {
    return this.transport.call("mutation", "intake.submit", withKey(input), options.signal, this.traceHeaders(options));
  }

  /**
   * Stores up to 1,000 commands in one transaction; answers one receipt per
   * command, in input order (an invalid one is refused alone, with its issues).
   * With `batch`, the stored commands form one batch (`batchId`; see getBatch).
   */
  submitBatch<T extends readonly string[]>(
    commands: readonly [...{ [K in keyof T]: TypedSubmitInput<T[K]> }],
    options: SubmitBatchOptions = {},
  ): Promise<SubmitBatchResult> {
    // Anything but an array is sent as is, for the server to refuse.
    const input: SubmitBatchInput = {
      commands: Array.isArray(commands) ? commands.map(withKey) : (commands as SubmitInput[]),
    };
    if (options.batch !== undefined) input.batch = options.batch;
    return this.transport.call("mutation", "intake.submitBatch", input, options.signal, this.traceHeaders(options));
  }

  /** A command by id, or by the idempotency key it was submitted with; NOT_FOUND when it is not this client's. */
  get(id: string | GetInput, options: CallOptions = {}): Promise<CommandView> {
    const input: GetInput = typeof id === "string" ? { id } : id;
    return this.transport.call("query", "intake.get", input, options.signal);
  }

  /**
   * Commands by id, in the order asked, each once; ids not found or not this
   * client's are left out. Over 1,000 ids are asked in pieces of 1,000.
   */
  async getMany(ids: readonly string[], options: CallOptions = {}): Promise<GetManyResult> {
    const unique = [...new Set(ids)];
    const items: CommandView[] = [];
    for (let i = 0; i === 0 || i < unique.length; i += MAX_IDS_PER_REQUEST) {
      const chunk = unique.slice(i, i + MAX_IDS_PER_REQUEST);
      const r = await this.transport.call<GetManyResult>("query", "intake.getMany", { ids: chunk }, options.signal);
      items.push(...r.items);
    }
    return { items };
  }

  /** A batch's progress: counts per state, and `done` once every command in it is at rest. */
  getBatch(id: string, options: CallOptions = {}): Promise<BatchView> {
    return this.transport.call("query", "intake.getBatch", { id }, options.signal);
  }

  /**
   * Polls a command (with growing delays) until it is at rest — succeeded,
   * failed, exception, compensated or cancelled — and resolves with its view.
   * Rejects with WAIT_TIMEOUT after `timeoutMs`, with the signal's reason when
   * it aborts, and with any error of `get` that retries did not overcome.
   */
  async waitFor(id: string | GetInput, options: WaitForOptions = {}): Promise<CommandView> {
    const { signal, timeoutMs = 60_000, pollMs = 250, maxPollMs = 5_000 } = options;
    if (signal?.aborted) throw signal.reason;
    // One signal for the caller's abort and the deadline, so that a request in flight stops at either.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const deadline = setTimeout(() => ctl.abort(WAIT_TIMED_OUT), timeoutMs);
    let last: CommandView | undefined;
    try {
      for (let delay = pollMs; ; delay = Math.min(maxPollMs, delay * 1.5)) {
        last = await this.get(id, { signal: ctl.signal });
        if (isAtRest(last.status)) return last;
        await sleep(delay, ctl.signal);
      }
    } catch (err) {
      if (err !== WAIT_TIMED_OUT) throw err;
      const which = typeof id === "string" ? id : JSON.stringify(id);
      throw new ConveyorError({
        code: "WAIT_TIMEOUT",
        message: last
          ? `Command ${which} was still ${last.status} after ${timeoutMs} ms (waitFor timeoutMs)`
          : `Command ${which} could not be read within ${timeoutMs} ms (waitFor timeoutMs)`,
        view: last,
      });
    } finally {
      clearTimeout(deadline);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
