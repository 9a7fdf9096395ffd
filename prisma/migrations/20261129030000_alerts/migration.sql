-- Alert rules (DESIGN §4), their firings, and one delivery per recipient.
CREATE TYPE "alert_kind" AS ENUM ('count', 'stuck', 'rate', 'backlog');

CREATE TABLE "alert_rules" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "alert_kind" NOT NULL,
    "states" "command_status"[] NOT NULL DEFAULT '{}',
    "type" TEXT,
    "window_seconds" INTEGER,
    "age_seconds" INTEGER,
    "threshold" DOUBLE PRECISION NOT NULL,
    "recipients" TEXT[] NOT NULL,
    "cooldown_seconds" INTEGER NOT NULL DEFAULT 3600,
    "notify_on_resolve" BOOLEAN NOT NULL DEFAULT false,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "silenced_until" TIMESTAMPTZ(3),
    "firing" BOOLEAN NOT NULL DEFAULT false,
    "firing_since" TIMESTAMPTZ(3),
    "last_sent_at" TIMESTAMPTZ(3),
    "last_value" DOUBLE PRECISION,
    "last_evaluated_at" TIMESTAMPTZ(3),
    "created_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "alert_rules_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "alert_rules_name_check" CHECK (length("name") BETWEEN 1 AND 200),
    CONSTRAINT "alert_rules_recipients_check" CHECK (cardinality("recipients") BETWEEN 1 AND 50),
    CONSTRAINT "alert_rules_firing_check" CHECK ("firing" = ("firing_since" IS NOT NULL))
);

CREATE TABLE "alert_events" (
    "id" BIGSERIAL NOT NULL,
    "rule_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "value" DOUBLE PRECISION,
    "threshold" DOUBLE PRECISION,
    "details" JSONB,
    CONSTRAINT "alert_events_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "alert_events_rule_id_fkey" FOREIGN KEY ("rule_id") REFERENCES "alert_rules"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "alert_events_kind_check" CHECK ("kind" IN ('firing', 'repeat', 'resolved', 'test'))
);
CREATE INDEX "alert_events_rule_id_at_idx" ON "alert_events"("rule_id", "at" DESC);
CREATE INDEX "alert_events_at_idx" ON "alert_events"("at" DESC);

CREATE TABLE "alert_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "event_id" BIGINT NOT NULL,
    "recipient" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "text_body" TEXT NOT NULL,
    "html_body" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "alert_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "alert_deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "alert_events"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "alert_deliveries_event_id_idx" ON "alert_deliveries"("event_id");
CREATE INDEX "alert_deliveries_due_idx" ON "alert_deliveries"("next_at") WHERE "sent_at" IS NULL;
