-- The worker engine: leases, retry budget, allowed transitions enforced by the
-- database, timestamps owned by the database, upstream callback deliveries.

ALTER TYPE "attempt_kind" ADD VALUE 'callback';

ALTER TABLE "commands"
    ADD COLUMN "lease_id" UUID,
    ADD COLUMN "tries" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "attempt_started_at" TIMESTAMPTZ(3),
    ADD CONSTRAINT "commands_tries_check" CHECK ("tries" >= 0),
    -- a lease is whole: id, holder and expiry together
    ADD CONSTRAINT "commands_lease_whole_check" CHECK (("lease_id" IS NULL) = ("locked_by" IS NULL) AND ("lease_id" IS NULL) = ("locked_until" IS NULL)),
    -- only states a worker acts in can be leased
    ADD CONSTRAINT "commands_lease_state_check" CHECK ("lease_id" IS NULL OR "status" IN ('running', 'awaiting', 'compensating'));

-- Claim order: what is due and not leased, by priority then due time.
DROP INDEX "commands_due_idx";
CREATE INDEX "commands_claim_idx" ON "commands"("priority" DESC, "run_at")
    WHERE "status" IN ('pending', 'retrying', 'awaiting', 'compensating') AND "lease_id" IS NULL;

-- The allowed transitions (server/commands/state.ts holds the same list; a test compares them).
CREATE TABLE "command_transitions" (
    "from_status" "command_status" NOT NULL,
    "to_status" "command_status" NOT NULL,
    CONSTRAINT "command_transitions_pkey" PRIMARY KEY ("from_status", "to_status")
);
INSERT INTO "command_transitions" ("from_status", "to_status") VALUES
    ('pending', 'running'), ('pending', 'cancelled'),
    ('running', 'succeeded'), ('running', 'failed'), ('running', 'retrying'), ('running', 'awaiting'), ('running', 'exception'),
    ('awaiting', 'succeeded'), ('awaiting', 'failed'), ('awaiting', 'retrying'), ('awaiting', 'exception'), ('awaiting', 'cancelled'),
    ('retrying', 'running'), ('retrying', 'cancelled'),
    ('succeeded', 'compensating'),
    ('failed', 'compensating'), ('failed', 'pending'),
    ('exception', 'pending'), ('exception', 'succeeded'), ('exception', 'failed'), ('exception', 'compensating'),
    ('compensating', 'compensated'), ('compensating', 'exception'),
    ('cancelled', 'pending');

-- The check itself is a function generated from that table (no table lookup per row).
DO $$
DECLARE allowed text;
BEGIN
  SELECT string_agg(quote_literal(from_status || '>' || to_status), ', ') INTO allowed FROM command_transitions;
  EXECUTE format('CREATE FUNCTION conveyor_transition_allowed(f command_status, t command_status) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT (f::text || ''>'' || t::text) = ANY (ARRAY[%s]) $f$', allowed);
END $$;

-- Every change of state is checked, and the database keeps updated_at,
-- state_changed_at and finished_at (set exactly while at rest).
CREATE FUNCTION "conveyor_command_update"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT conveyor_transition_allowed(OLD.status, NEW.status) THEN
      RAISE EXCEPTION 'command %: % -> % is not an allowed transition', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'command_transitions';
    END IF;
    NEW.state_changed_at := now();
    NEW.finished_at := CASE WHEN NEW.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled') THEN now() END;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "commands_update" BEFORE UPDATE ON "commands" FOR EACH ROW EXECUTE FUNCTION "conveyor_command_update"();

-- The command view of DESIGN §3, as the upstream callback body.
CREATE FUNCTION "conveyor_command_view"(c "commands") RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', c.id, 'type', c.type, 'status', c.status, 'payload', c.payload,
    'result', c.result, 'failure', c.failure, 'error', c.error,
    'attemptCount', c.attempt_count, 'idempotencyKey', c.idempotency_key,
    'createdAt', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updatedAt', to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'finishedAt', to_char(c.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Upstream callbacks: one delivery per notified state, retried until a 2xx.
CREATE TABLE "callback_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "command_id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "status" "command_status" NOT NULL,
    "body" JSONB NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "locked_until" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "last_status" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "callback_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "callback_deliveries_command_id_fkey" FOREIGN KEY ("command_id") REFERENCES "commands"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "callback_deliveries_command_id_idx" ON "callback_deliveries"("command_id");
CREATE INDEX "callback_deliveries_due_idx" ON "callback_deliveries"("next_at") WHERE "delivered_at" IS NULL;

-- After changes of state (once per statement, over the changed rows): queue
-- upstream callbacks, and wake workers when commands are (again) theirs to take.
CREATE FUNCTION "conveyor_commands_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO callback_deliveries (command_id, url, status, body)
  SELECT n.id, n.callback_url, n.status, conveyor_command_view(n)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status IS DISTINCT FROM o.status AND n.callback_url IS NOT NULL
    AND n.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled');
  IF FOUND THEN
    PERFORM pg_notify('conveyor_callbacks', '');
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE n.status IN ('pending', 'retrying', 'compensating', 'awaiting') AND n.lease_id IS NULL AND n.run_at <= now()
               AND (n.status IS DISTINCT FROM o.status OR o.lease_id IS NOT NULL)) THEN
    PERFORM pg_notify('conveyor_commands', '');
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER "commands_changed" AFTER UPDATE ON "commands"
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_commands_changed"();
