// Alert webhooks (DESIGN §9): POSTs each webhook delivery's JSON, signed with
// its rule's webhook secret in X-Conveyor-Signature (as upstream callbacks
// are: sha256=<HMAC-SHA256 of the body>), until a 2xx; every try is recorded.
// Never dropped: a delivery HTTP_ALLOWED_HOSTS refuses is a failed try too,
// tried again with the same backoff (a fixed allow-list then lets it go).
// Deliveries are claimed with SKIP LOCKED and a lease, so that several
// workers send each exactly once (unless a worker dies mid-try: then again).
import type { Db } from "../db/client";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { ALERTS_CHANNEL, claimWebhooks, finishDelivery, type DueWebhook } from "../db/alerts";
import { decrypt } from "../crypto";
import { backoffMs } from "../engine/backoff";
import { maskWebhook } from "../alerts/format";
import { Wake } from "../lib/wake";
import { postSigned } from "./signed-post";
import { onWake, type Service } from "./service";

export function alertWebhookSender(o: {
  db: Db;
  log: Logger;
  workerId: string;
  listener?: Listener;
  secretKey: () => Promise<Buffer>;
  /** HTTP_ALLOWED_HOSTS: checked before every request (createUrlGuard). */
  checkUrl?: (url: string) => Promise<void>;
  /** The outbound fetch that pins the checked address (createOutboundFetch); default: the global fetch. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  timeoutMs?: number;
  pollMs?: number;
  concurrency?: number;
  /** Backoff: 2 s doubling (full jitter) up to this (default 10 min). */
  maxRetryMs?: number;
  metrics?: { webhook: (sent: boolean) => void };
}): Service {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const wake = new Wake();

  const send = async (d: DueWebhook) => {
    const startedAt = new Date();
    const { status, error } = await postSigned({
      url: d.url,
      body: JSON.stringify(d.body),
      secret: async () => {
        if (!d.secretEnc) throw new Error("the rule has no webhook secret: rotate it (alerts.rotateWebhookSecret)");
        return decrypt(await o.secretKey(), d.secretEnc);
      },
      headers: { "x-conveyor-delivery": d.id, "x-conveyor-rule": d.ruleId },
      timeoutMs,
      checkUrl: o.checkUrl,
      fetch: o.fetch,
    });
    const sent = error === null;
    const retryInMs = Math.max(1000, backoffMs(d.attempts, 2000, o.maxRetryMs ?? 600_000));
    await finishDelivery(o.db, d.id, { sent, status, error, retryInMs, startedAt, worker: o.workerId });
    o.metrics?.webhook(sent);
    if (!sent)
      o.log.warn(
        { delivery: d.id, rule: d.ruleId, url: maskWebhook(d.url), attempt: d.attempts, error, retryInMs },
        "alert webhook not delivered; will retry",
      );
  };

  const loop = onWake(wake, o.pollMs ?? 2_000, async () => {
    try {
      // Leased for three timeouts: a try that outlives it (a hung worker) may be made again by another.
      const due = await claimWebhooks(o.db, o.concurrency ?? 10, timeoutMs * 3);
      await Promise.all(
        due.map((d) =>
          send(d).catch((err) => o.log.error({ err: String(err) }, "could not record an alert webhook delivery")),
        ),
      );
      return due.length > 0;
    } catch (err) {
      o.log.warn({ err: String(err) }, "alert webhook claim failed");
      return false;
    }
  });

  return {
    name: "alert webhook sender",
    start() {
      o.listener?.on(ALERTS_CHANNEL, () => wake.fire());
      loop.start();
    },
    stop: loop.stop,
  };
}
