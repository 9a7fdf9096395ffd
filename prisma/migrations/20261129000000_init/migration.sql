-- Conveyor's first schema. Matches prisma/schema.prisma (checked by
-- test/integration/schema.test.ts); CHECK constraints and partial indexes
-- carry the invariants Prisma cannot express.

CREATE TYPE "command_status" AS ENUM ('pending', 'running', 'awaiting', 'retrying', 'succeeded', 'failed', 'exception', 'compensating', 'compensated', 'cancelled');
CREATE TYPE "token_scope" AS ENUM ('client', 'admin');
CREATE TYPE "user_role" AS ENUM ('viewer', 'operator', 'admin');
CREATE TYPE "attempt_kind" AS ENUM ('execute', 'reconcile', 'compensate', 'poll');
CREATE TYPE "attempt_outcome" AS ENUM ('success', 'failure', 'exception', 'accepted', 'not_found', 'unknown');

CREATE TABLE "api_clients" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "scope" "token_scope" NOT NULL,
    "token_hash" TEXT NOT NULL,
    "token_prefix" TEXT NOT NULL,
    "signing_secret_enc" TEXT NOT NULL,
    "created_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    CONSTRAINT "api_clients_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "api_clients_name_check" CHECK (length("name") BETWEEN 1 AND 200)
);
CREATE UNIQUE INDEX "api_clients_token_hash_key" ON "api_clients"("token_hash");

CREATE TABLE "commands" (
    "id" UUID NOT NULL,
    "client_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "command_status" NOT NULL DEFAULT 'pending',
    "idempotency_key" TEXT,
    "callback_url" TEXT,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "run_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "max_attempts" INTEGER,
    "backoff_ms" INTEGER,
    "max_backoff_ms" INTEGER,
    "result" JSONB,
    "failure" JSONB,
    "error" TEXT,
    "attempt_count" INTEGER NOT NULL DEFAULT 0,
    "needs_reconcile" BOOLEAN NOT NULL DEFAULT false,
    "phase" TEXT NOT NULL DEFAULT 'execute',
    "locked_by" TEXT,
    "locked_until" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "state_changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    CONSTRAINT "commands_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "commands_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "api_clients"("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "commands_type_check" CHECK ("type" ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    CONSTRAINT "commands_idempotency_key_check" CHECK (length("idempotency_key") BETWEEN 1 AND 200),
    CONSTRAINT "commands_priority_check" CHECK ("priority" BETWEEN -1000 AND 1000),
    CONSTRAINT "commands_retry_check" CHECK (("max_attempts" IS NULL OR "max_attempts" BETWEEN 1 AND 100)
        AND ("backoff_ms" IS NULL OR "backoff_ms" >= 0) AND ("max_backoff_ms" IS NULL OR "max_backoff_ms" >= 0)),
    CONSTRAINT "commands_attempt_count_check" CHECK ("attempt_count" >= 0),
    CONSTRAINT "commands_phase_check" CHECK ("phase" IN ('execute', 'compensate')),
    -- a running command is always held under a lease
    CONSTRAINT "commands_lease_check" CHECK ("status" <> 'running' OR ("locked_by" IS NOT NULL AND "locked_until" IS NOT NULL)),
    -- finished_at is set exactly when the command is at rest (terminal or waiting for an operator)
    CONSTRAINT "commands_finished_check" CHECK (("finished_at" IS NOT NULL) = ("status" IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')))
);
-- Partial: commands without a key (most, in bulk traffic) cost this index nothing on every update.
CREATE UNIQUE INDEX "commands_client_id_idempotency_key_key" ON "commands"("client_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL;
CREATE INDEX "commands_status_created_at_idx" ON "commands"("status", "created_at" DESC);
CREATE INDEX "commands_type_created_at_idx" ON "commands"("type", "created_at" DESC);
CREATE INDEX "commands_created_at_idx" ON "commands"("created_at" DESC);
-- the worker's claim order: due commands by priority, then due time
CREATE INDEX "commands_due_idx" ON "commands"("priority" DESC, "run_at") WHERE "status" IN ('pending', 'retrying');
-- the rescuer's scan for expired leases
CREATE INDEX "commands_lease_idx" ON "commands"("locked_until") WHERE "locked_until" IS NOT NULL;

-- Wake sleeping workers when commands arrive (one notification per statement, not per row).
CREATE FUNCTION "conveyor_notify_commands"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('conveyor_commands', '');
  RETURN NULL;
END $$;
CREATE TRIGGER "commands_notify_insert" AFTER INSERT ON "commands" FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_notify_commands"();

CREATE TABLE "attempts" (
    "id" BIGSERIAL NOT NULL,
    "command_id" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "kind" "attempt_kind" NOT NULL,
    "outcome" "attempt_outcome",
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "error" TEXT,
    "worker" TEXT NOT NULL,
    "detail" JSONB,
    CONSTRAINT "attempts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "attempts_command_id_fkey" FOREIGN KEY ("command_id") REFERENCES "commands"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "attempts_number_check" CHECK ("number" >= 1),
    CONSTRAINT "attempts_finished_check" CHECK (("finished_at" IS NULL) = ("outcome" IS NULL))
);
CREATE INDEX "attempts_command_id_number_idx" ON "attempts"("command_id", "number");

CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" "user_role" NOT NULL,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "must_change_password" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "users_email_check" CHECK ("email" = lower("email") AND "email" LIKE '%_@_%')
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "user_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "sessions_user_id_idx" ON "sessions"("user_id");

CREATE TABLE "audit_entries" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "reason" TEXT,
    "command_ids" UUID[],
    "details" JSONB,
    CONSTRAINT "audit_entries_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "audit_entries_at_idx" ON "audit_entries"("at" DESC);
CREATE INDEX "audit_entries_command_ids_idx" ON "audit_entries" USING GIN ("command_ids");

-- Process-wide settings (e.g. the generated encryption key when SECRET_KEY is unset).
CREATE TABLE "conveyor_settings" (
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    CONSTRAINT "conveyor_settings_pkey" PRIMARY KEY ("key")
);
