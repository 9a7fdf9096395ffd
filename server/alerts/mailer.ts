// Sends alert deliveries through SMTP_URL with nodemailer, retrying each with
// backoff until the server takes it; never dropped. Without SMTP_URL nothing
// is sent and every delivery says so (the console shows what would be sent).
// Deliveries stored without bodies (test emails) are rendered first, with or
// without SMTP_URL, so that the console can show them.
import nodemailer from "nodemailer";
import type { Db } from "../db/client";
import { renderUnrendered } from "./email";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import { claimDeliveries, finishDelivery, noteUndeliverable } from "../db/alerts";
import { NO_SMTP } from "./delivery";
import { backoffMs } from "../engine/backoff";
import { Wake } from "../lib/wake";

export { NO_SMTP };

function createTransport(smtpUrl: string) {
  // smtp:// upgrades with STARTTLS when the server offers it; smtps:// is TLS from the start.
  const u = new URL(smtpUrl);
  return nodemailer.createTransport({
    host: u.hostname,
    port: Number(u.port) || (u.protocol === "smtps:" ? 465 : 587),
    secure: u.protocol === "smtps:",
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
}

/** `publicUrl`: the console's address, for the links of the emails it renders. */
export function startMailer(o: {
  db: Db;
  log: Logger;
  publicUrl: string;
  smtpUrl?: string;
  from: string;
  listener?: Listener;
  pollMs?: number;
  maxRetryMs?: number;
  metrics?: { email: (sent: boolean) => void };
}) {
  const wake = new Wake();
  let stopping = false;
  o.listener?.on("conveyor_alerts", () => wake.fire());
  const transport = o.smtpUrl ? createTransport(o.smtpUrl) : undefined;
  const loop = (async () => {
    while (!stopping) {
      try {
        await renderUnrendered(o.db, o.publicUrl);
        if (!transport) await noteUndeliverable(o.db, NO_SMTP);
        else {
          const due = await claimDeliveries(o.db, 20, 60_000);
          for (const d of due) {
            try {
              await transport.sendMail({
                from: o.from,
                to: d.recipient,
                subject: d.subject,
                text: d.text_body,
                html: d.html_body,
              });
              await finishDelivery(o.db, d.id, { sent: true, error: null, retryInMs: 0 });
              o.metrics?.email(true);
            } catch (err) {
              const error = (err as Error).message.slice(0, 500);
              const retryInMs = Math.max(1000, backoffMs(d.attempts, 2000, o.maxRetryMs ?? 600_000));
              o.log.warn({ delivery: d.id, to: d.recipient, error, retryInMs }, "alert email not sent; will retry");
              await finishDelivery(o.db, d.id, { sent: false, error, retryInMs });
              o.metrics?.email(false);
            }
          }
          if (due.length) continue;
        }
      } catch (err) {
        o.log.warn({ err: String(err) }, "alert mailer loop failed");
      }
      await wake.wait(o.pollMs ?? 2_000);
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      wake.fire();
      await loop;
      transport?.close();
    },
  };
}

/** Runs the evaluator on an interval (every worker; the lock keeps it to one at a time). */
export function startEvaluator(o: {
  everyMs: number;
  run: () => Promise<unknown>;
  log: Logger;
  metrics?: { evaluation: (ok: boolean) => void };
}) {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    // run() answers null when another worker holds the evaluator lock: not a round of this worker's.
    running = o.run().then(
      (r) => r !== null && o.metrics?.evaluation(true),
      (err) => (o.metrics?.evaluation(false), o.log.warn({ err: String(err) }, "alert evaluation failed")),
    );
  }, o.everyMs);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
