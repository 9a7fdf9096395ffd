-- Schedules (DESIGN §8): a command submitted at each tick of a cron expression,
-- in a time zone, owned by the internal API client `schedules`. Workers pick
-- the due ones (next_run_at <= now(), enabled) with FOR UPDATE SKIP LOCKED,
-- submit the tick's command with the idempotency key
-- schedule:<id>:<tick as ISO time>, and move next_run_at on: the row lock and
-- the key make it one command per tick, whatever the number of workers.
CREATE TABLE "schedules" (
  "id" uuid NOT NULL,
  "name" text NOT NULL,
  -- 5 fields, or 6 with seconds first (server/schedules/cron.ts checks it).
  "cron" text NOT NULL,
  -- an IANA time zone name, in which the cron's fields are read.
  "timezone" text NOT NULL DEFAULT 'UTC',
  -- what each tick submits: { type, payload, callbackUrl?, priority?, retry? }.
  "command" jsonb NOT NULL,
  "enabled" boolean NOT NULL DEFAULT true,
  -- the next tick (null while disabled).
  "next_run_at" timestamp(3) with time zone,
  -- the tick of the last command submitted, and that command (null once pruned).
  "last_run_at" timestamp(3) with time zone,
  "last_command_id" uuid,
  "created_by" text,
  "created_at" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updated_at" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "schedules_pkey" PRIMARY KEY ("id"),
  CONSTRAINT "schedules_name_check" CHECK (length(name) BETWEEN 1 AND 200),
  CONSTRAINT "schedules_cron_check" CHECK (length(cron) BETWEEN 1 AND 200),
  CONSTRAINT "schedules_timezone_check" CHECK (length(timezone) BETWEEN 1 AND 100),
  CONSTRAINT "schedules_command_check"
    CHECK (jsonb_typeof(command) = 'object' AND command ? 'type' AND command ? 'payload'),
  CONSTRAINT "schedules_next_run_check" CHECK (enabled OR next_run_at IS NULL),
  CONSTRAINT "schedules_last_command_id_fkey" FOREIGN KEY ("last_command_id")
    REFERENCES "commands" ("id") ON UPDATE CASCADE ON DELETE SET NULL
);

-- What the scheduler reads each round, and when it wakes up next.
CREATE INDEX "schedules_due_idx" ON "schedules" ("next_run_at") WHERE enabled;
-- Pruning a command looks for the schedules that point at it (ON DELETE SET NULL).
CREATE INDEX "schedules_last_command_id_idx" ON "schedules" ("last_command_id");
