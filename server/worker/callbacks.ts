// Upstream callbacks (DESIGN §3): POST the command view to its callbackUrl,
// signed with the client's secret, until a 2xx; each try is recorded.
import type { Db } from "../db/client";
import { loggableUrl, type Logger } from "../log";
import type { Listener } from "../db/listener";
import { claimCallbacks, finishCallback, type DueCallback } from "../db/callbacks";
import { signingSecretOf, TOKENS_CHANNEL } from "../auth/tokens";
import { signBody } from "../crypto";
import { backoffMs } from "../engine/backoff";
import { describeError, withTimeout } from "./attempt";
import { Wake } from "../lib/wake";
import { onWake, type Service } from "./service";
import { refusedBy } from "../outbound/url-guard";
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
  const send = async (d: DueCallback) => {
    const startedAt = new Date();
    let ok = false;
    let status: number | null = null;
    let error: string | null = null;
    let refused = false;
    // A child of the command's trace (DESIGN §10): the span's own when tracing is on.
    const span = startSpan("conveyor.callback", "client", d.trace, {
      "conveyor.command.id": d.commandId,
      "conveyor.attempt.kind": "callback",
      "conveyor.callback.attempt": d.attempts,
      "url.full": loggableUrl(d.url),
    });
    try {
      await o.checkUrl?.(d.url);
      const secret = await secretOf(d.clientId);
      const body = JSON.stringify(d.body);
      const res = await withTimeout(
        (signal) =>
          (o.fetch ?? fetch)(d.url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-conveyor-signature": signBody(secret, body),
              "x-command-id": d.commandId,
              "user-agent": "Conveyor",
              ...(span
                ? { traceparent: span.traceparent, ...(span.tracestate ? { tracestate: span.tracestate } : {}) }
                : {}),
            },
            body,
            signal,
            redirect: "manual",
          }),
        timeoutMs,
        new AbortController().signal,
      );
      await res.arrayBuffer().catch(() => {});
      status = res.status;
      ok = res.status >= 200 && res.status < 300;
      if (!ok) error = `HTTP ${res.status}`;
    } catch (err) {
      const r = refusedBy(err);
      refused = r !== null;
      error = r ? `${r.message}; not retried` : describeError(err);
    }
    span?.end(
      {
        "conveyor.attempt.outcome": ok ? "success" : refused ? "failure" : "exception",
        ...(status !== null ? { "http.response.status_code": status } : {}),
      },
      error,
    );
    // A refused target will not be allowed on the next try either: stop there (the delivery shows why).
    const retryInMs = refused ? null : Math.max(1000, backoffMs(d.attempts, 2000, 3600_000));
    await finishCallback(o.db, d, { ok, status, error, retryInMs, startedAt, worker: o.workerId });
    o.metrics?.callback(ok);
    if (!ok)
      o.log.warn(
        { command: d.commandId, url: loggableUrl(d.url), attempt: d.attempts, error },
        refused ? "upstream callback refused by HTTP_ALLOWED_HOSTS; given up" : "upstream callback failed; will retry",
      );
  };

  const loop = onWake(wake, o.pollMs ?? 1_000, async () => {
    try {
      const due = await claimCallbacks(o.db, o.concurrency ?? 10, timeoutMs * 3);
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
