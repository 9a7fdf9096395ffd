-- Flow control (DESIGN §7): ordering keys, limits and pauses per scope, circuit breakers.
--
-- Ordering keys. Commands of one client with the same ordering_key run one at
-- a time, in the order received (ordering_seq). Of a key's commands in a
-- blocking state (pending, running, awaiting, retrying, compensating,
-- exception), exactly one is its head (key_waiting = false); the others wait
-- (key_waiting = true) and are left out of the claim index, so that a deep key
-- costs the claim nothing. Intake decides key_waiting under the key's advisory
-- lock (server/db/commands.ts); an operator action that brings a command of a
-- key back into a blocking state makes it wait; and when a command of a key
-- enters or leaves a free state (succeeded, failed, compensated, cancelled),
-- or is made to wait, a deferred trigger, at commit and under the same lock,
-- makes the key's earliest waiting command its head if it has none.
ALTER TABLE "commands"
  ADD COLUMN "ordering_key" text,
  ADD COLUMN "ordering_seq" bigint,
  ADD COLUMN "key_waiting" boolean NOT NULL DEFAULT false,
  -- The http type's target host (lower case, no port): the scope of host limits and circuits.
  ADD COLUMN "target_host" text,
  ADD CONSTRAINT "commands_ordering_key_check"
    CHECK (ordering_key IS NULL OR (length(ordering_key) BETWEEN 1 AND 200 AND ordering_seq IS NOT NULL)),
  ADD CONSTRAINT "commands_key_waiting_check" CHECK (NOT key_waiting OR ordering_key IS NOT NULL);

CREATE SEQUENCE "command_order_seq" AS bigint;

-- Unfinished http commands learn their host; finished ones never run again.
UPDATE "commands"
SET target_host = lower(substring(payload->>'url' FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]+)'))
WHERE type = 'http' AND finished_at IS NULL;

DROP INDEX "commands_claim_idx";
CREATE INDEX "commands_claim_idx" ON "commands" (priority DESC, run_at)
  WHERE status IN ('pending', 'retrying', 'awaiting', 'compensating') AND lease_id IS NULL AND NOT key_waiting;

CREATE INDEX "commands_ordering_idx" ON "commands" (client_id, ordering_key, ordering_seq)
  WHERE ordering_key IS NOT NULL AND status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception');

CREATE FUNCTION "conveyor_ordering_lock"(client uuid, okey text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended(client::text || '/' || okey, 0) $$;

CREATE FUNCTION "conveyor_release_key"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(conveyor_ordering_lock(NEW.client_id, NEW.ordering_key));
  UPDATE commands c SET key_waiting = false
  WHERE c.id = (SELECT w.id FROM commands w
                WHERE w.client_id = NEW.client_id AND w.ordering_key = NEW.ordering_key AND w.key_waiting
                  AND w.status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception')
                ORDER BY w.ordering_seq LIMIT 1)
    AND NOT EXISTS (SELECT 1 FROM commands h
                    WHERE h.client_id = NEW.client_id AND h.ordering_key = NEW.ordering_key AND NOT h.key_waiting
                      AND h.status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception'));
  IF FOUND THEN
    PERFORM pg_notify('conveyor_commands', '');
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER "commands_order_release" AFTER UPDATE ON "commands"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.ordering_key IS NOT NULL
        AND ((OLD.status IS DISTINCT FROM NEW.status
              AND (OLD.status IN ('succeeded', 'failed', 'compensated', 'cancelled')
                   OR NEW.status IN ('succeeded', 'failed', 'compensated', 'cancelled')))
             OR (NEW.key_waiting AND NOT OLD.key_waiting)))
  EXECUTE FUNCTION "conveyor_release_key"();

-- The command view (upstream callbacks) gains orderingKey.
CREATE OR REPLACE FUNCTION "conveyor_command_view"(c "commands") RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', c.id, 'type', c.type, 'status', c.status, 'payload', c.payload,
    'result', c.result, 'failure', c.failure, 'error', c.error,
    'attemptCount', c.attempt_count, 'idempotencyKey', c.idempotency_key, 'orderingKey', c.ordering_key,
    'createdAt', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updatedAt', to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'finishedAt', to_char(c.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Scopes: a command type (kind 'type') or an http target host (kind 'host').
-- A row holds what an admin set (limit, circuit overrides), what an operator
-- set (pause), the shared rate limiter's bucket and the circuit breaker's
-- state. A scope is gated when its attempts must be counted out one claim at a
-- time (server/db/flow-claim.ts) instead of by the plain claim.
CREATE TABLE "flow_scopes" (
  "kind" text NOT NULL CONSTRAINT "flow_scopes_kind_check" CHECK (kind IN ('type', 'host')),
  "name" text NOT NULL CONSTRAINT "flow_scopes_name_check" CHECK (length(name) BETWEEN 1 AND 253),
  "has_limit" boolean NOT NULL DEFAULT false,
  "concurrency" integer CONSTRAINT "flow_scopes_concurrency_check" CHECK (concurrency >= 1),
  "rate_per_second" double precision CONSTRAINT "flow_scopes_rate_check" CHECK (rate_per_second > 0),
  "burst" integer CONSTRAINT "flow_scopes_burst_check" CHECK (burst >= 1),
  "circuit_threshold" integer CONSTRAINT "flow_scopes_circuit_threshold_check" CHECK (circuit_threshold >= 1),
  "circuit_cooldown_seconds" integer CONSTRAINT "flow_scopes_circuit_cooldown_check" CHECK (circuit_cooldown_seconds >= 1),
  "paused" boolean NOT NULL DEFAULT false,
  "paused_reason" text,
  "paused_at" timestamp(3) with time zone,
  "paused_by" text,
  "tokens" double precision,
  "tokens_at" timestamp(3) with time zone,
  "circuit_state" text NOT NULL DEFAULT 'closed'
    CONSTRAINT "flow_scopes_circuit_state_check" CHECK (circuit_state IN ('closed', 'open', 'half_open')),
  "circuit_since" timestamp(3) with time zone NOT NULL DEFAULT now(),
  "consecutive_exceptions" integer NOT NULL DEFAULT 0,
  "cooldown_ms" integer,
  "next_probe_at" timestamp(3) with time zone,
  "probe_lease" uuid,
  "gated" boolean GENERATED ALWAYS AS (paused OR has_limit OR circuit_state <> 'closed') STORED,
  "updated_at" timestamp(3) with time zone NOT NULL DEFAULT now(),
  CONSTRAINT "flow_scopes_pkey" PRIMARY KEY (kind, name),
  CONSTRAINT "flow_scopes_open_check" CHECK (circuit_state = 'closed' OR (cooldown_ms IS NOT NULL AND next_probe_at IS NOT NULL))
);
CREATE INDEX "flow_scopes_gated_idx" ON "flow_scopes" (kind, name) WHERE gated;

-- Attempts per minute per (type, host), flushed by each worker every few
-- seconds: the /flow page's traffic and attempts per second, without a
-- write per attempt. host is '' for types without one.
CREATE TABLE "flow_traffic" (
  "minute" timestamp(0) with time zone NOT NULL,
  "type" text NOT NULL,
  "host" text NOT NULL DEFAULT '',
  "attempts" integer NOT NULL DEFAULT 0,
  "exceptions" integer NOT NULL DEFAULT 0,
  "held" integer NOT NULL DEFAULT 0,
  CONSTRAINT "flow_traffic_pkey" PRIMARY KEY (minute, type, host)
);
