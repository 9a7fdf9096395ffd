-- Alert channels and kinds (DESIGN §9): webhooks beside or instead of email
-- recipients, each rule with its own webhook signing secret (encrypted with
-- the secret key, like the API clients' signing secrets); the rule kinds
-- `latency` and `circuit`; and every try of every delivery recorded.
ALTER TYPE "alert_kind" ADD VALUE 'latency';
ALTER TYPE "alert_kind" ADD VALUE 'circuit';

ALTER TABLE "alert_rules"
  ADD COLUMN "webhooks" text[] NOT NULL DEFAULT '{}',
  -- AES-256-GCM under the secret key (server/crypto.ts); shown once, at creation or rotation.
  ADD COLUMN "webhook_secret_enc" text,
  -- latency rules: the percentile (0–100] of the time from receipt to finish.
  ADD COLUMN "percentile" double precision,
  DROP CONSTRAINT "alert_rules_recipients_check",
  ADD CONSTRAINT "alert_rules_recipients_check" CHECK (cardinality("recipients") <= 50),
  ADD CONSTRAINT "alert_rules_webhooks_check" CHECK (cardinality("webhooks") <= 20),
  ADD CONSTRAINT "alert_rules_channels_check" CHECK (cardinality("recipients") + cardinality("webhooks") >= 1),
  ADD CONSTRAINT "alert_rules_percentile_check" CHECK ("percentile" IS NULL OR ("percentile" > 0 AND "percentile" <= 100));

-- One outbox for every channel: an email (recipient: the address; bodies
-- rendered) or a webhook (recipient: the URL; body: the JSON posted, as json
-- rather than jsonb so that it is posted with its members in the documented order).
ALTER TABLE "alert_deliveries"
  ADD COLUMN "channel" text NOT NULL DEFAULT 'email',
  ADD COLUMN "body" json,
  ADD COLUMN "last_status" integer,
  ADD CONSTRAINT "alert_deliveries_channel_check" CHECK ("channel" IN ('email', 'webhook')),
  ADD CONSTRAINT "alert_deliveries_webhook_body_check" CHECK ("channel" = 'email' OR "body" IS NOT NULL);
-- The senders' claims: each channel's due deliveries.
DROP INDEX "alert_deliveries_due_idx";
CREATE INDEX "alert_deliveries_due_idx" ON "alert_deliveries" ("channel", "next_at") WHERE "sent_at" IS NULL;

CREATE TABLE "alert_delivery_tries" (
  "delivery_id" bigint NOT NULL,
  "number" integer NOT NULL,
  "started_at" timestamp(3) with time zone NOT NULL,
  "finished_at" timestamp(3) with time zone NOT NULL,
  -- the HTTP status a webhook answered (null: no answer, and for emails)
  "status" integer,
  "error" text,
  "worker" text,
  CONSTRAINT "alert_delivery_tries_pkey" PRIMARY KEY ("delivery_id", "number"),
  CONSTRAINT "alert_delivery_tries_delivery_id_fkey" FOREIGN KEY ("delivery_id")
    REFERENCES "alert_deliveries" ("id") ON UPDATE CASCADE ON DELETE CASCADE
);

-- Latency and failure-rate rules read the commands finished in their window.
-- Finished commands had no index on finished_at: each evaluation read them all.
-- Only finished commands have an entry (finished_at is set exactly while at
-- rest), written when a command comes to rest: an update that already changes
-- the indexed status (never a HOT one), so one more index entry, no more.
CREATE INDEX "commands_finished_at_idx" ON "commands" ("finished_at") WHERE "finished_at" IS NOT NULL;
