// Upstream callbacks (DESIGN §3, §8): POST the command view to its
// callbackUrl, and a done batch's view to the batch's, signed with the
// client's secret, until a 2xx; each try is recorded.
import type { Db } from "../db/client";
import { loggableUrl, type Logger } from "../log";
import type { Listener } from "../db/listener";
import { claimCallbacks, finishCallback } from "../db/callbacks";
import { claimBatchCallbacks, finishBatchCallback } from "../db/batch-callbacks";
import { signingSecretOf, TOKENS_CHANNEL } from "../auth/tokens";
import { backoffMs } from "../engine/backoff";
import { postSigned } from "./signed-post";
import { Wake } from "../lib/wake";
import { onWake, type Service } from "./service";
import { startSpan } from "../lib/tracing";

export function callbackSender(o: {
  db: Db;
  log: Logger;
  workerId: string;
  listener?: Listener;
  secretKey: () => Promise<Buffer>;
  timeoutMs?: number;
  pollMs?: number;
  concurrency?: number;
  checkUrl?: (url: string) => Promise<void>;
  metrics?: { callback: (delivered: boolean) => void };
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}): Service {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const wake = new Wake();
  // Signing secrets by client, kept only while the listener hears rotations:
  // a rotation (or revocation) empties the cache as it commits, and a read
  // that began before it does not put the old secret back (generation).
  const secrets = new Map<string, string>();
  let generation = 0;
  const forget = () => {
    generation++;
    secrets.clear();
  };
  const secretOf = async (clientId: string) => {
    const hit = o.listener?.connected ? secrets.get(clientId) : undefined;
    if (hit) return hit;
    const gen = generation;
    const secret = await signingSecretOf(o.db, await o.secretKey(), clientId);
    if (gen === generation && o.listener?.connected) secrets.set(clientId, secret);
    return secret;
  };
  /** One delivery of either kind: what to send, and how to record a try. */
  type Outgoing = {
    url: string;
    body: unknown;
    clientId: string;
    attempts: number;
    /** x-command-id or x-batch-id, and for the log */
    idHeader: [string, string];
    /** The command's W3C trace context (DESIGN §10); a batch's callback has none of its own. */
    trace?: { parent: string; state: string | null } | null;
    finish: (r: Parameters<typeof finishCallback>[2]) => Promise<void>;
  };
  const send = async (d: Outgoing) => {
    const startedAt = new Date();
    // A child of the command's trace (DESIGN §10): the span's own when tracing is on.
    const span = startSpan("conveyor.callback", "client", d.trace ?? null, {
      [d.idHeader[0] === "x-batch-id" ? "conveyor.batch.id" : "conveyor.command.id"]: d.idHeader[1],
      "conveyor.attempt.kind": "callback",
      "conveyor.callback.attempt": d.attempts,
      "url.full": loggableUrl(d.url),
    });
    const r = await postSigned({
      url: d.url,
      body: JSON.stringify(d.body),
      secret: () => secretOf(d.clientId),
      headers: {
        [d.idHeader[0]]: d.idHeader[1],
        ...(span ? { traceparent: span.traceparent, ...(span.tracestate ? { tracestate: span.tracestate } : {}) } : {}),
      },
      timeoutMs,
      checkUrl: o.checkUrl,
      fetch: o.fetch,
    });
    const { status, refused } = r;
    const ok = r.error === null;
    const error = r.refused ? `${r.error}; not retried` : r.error;
    span?.end(
      {
        "conveyor.attempt.outcome": ok ? "success" : refused ? "failure" : "exception",
        ...(status !== null ? { "http.response.status_code": status } : {}),
      },
      error,
    );
    // A refused target will not be allowed on the next try either: stop there (the delivery shows why).
    const retryInMs = refused ? null : Math.max(1000, backoffMs(d.attempts, 2000, 3600_000));
    await d.finish({ ok, status, error, retryInMs, startedAt, worker: o.workerId });
    o.metrics?.callback(ok);
    if (!ok)
      o.log.warn(
        { [d.idHeader[0].slice(2, -3)]: d.idHeader[1], url: loggableUrl(d.url), attempt: d.attempts, error },
        refused ? "upstream callback refused by HTTP_ALLOWED_HOSTS; given up" : "upstream callback failed; will retry",
      );
  };

  const loop = onWake(wake, o.pollMs ?? 1_000, async () => {
    try {
      const limit = o.concurrency ?? 10;
      const [commands, batches] = await Promise.all([
        claimCallbacks(o.db, limit, timeoutMs * 3),
        claimBatchCallbacks(o.db, limit, timeoutMs * 3),
      ]);
      const due: Outgoing[] = [
        ...commands.map((d) => ({
          ...d,
          idHeader: ["x-command-id", d.commandId] as [string, string],
          finish: (r: Parameters<typeof finishCallback>[2]) => finishCallback(o.db, d, r),
        })),
        ...batches.map((d) => ({
          ...d,
          idHeader: ["x-batch-id", d.batchId] as [string, string],
          finish: (r: Parameters<typeof finishCallback>[2]) => finishBatchCallback(o.db, d, r),
        })),
      ];
      await Promise.all(
        due.map((d) =>
          send(d).catch((err) => o.log.error({ err: String(err) }, "could not record a callback delivery")),
        ),
      );
      if (due.length > 0) return true;
    } catch (err) {
      o.log.warn({ err: String(err) }, "callback claim failed");
    }
    return false;
  });

  return {
    name: "callback sender",
    start() {
      o.listener?.on(TOKENS_CHANNEL, forget);
      o.listener?.onConnect(forget); // rotations may have been missed while disconnected
      o.listener?.onDisconnect(forget);
      o.listener?.on("conveyor_callbacks", () => wake.fire());
      loop.start();
    },
    stop: loop.stop,
  };
}
