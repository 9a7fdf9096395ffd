-- Batches (DESIGN §8): the commands one submitBatch stored, as a unit with
-- counts per state, `done`, and a signed callback each time it becomes done.
--
-- Counts: batch_counts holds signed deltas per (batch, state, shard), the
-- shard being the writing backend's pid (as state_entries), so concurrent
-- completions of one batch never wait for each other's counter row; a read
-- adds up at most states x shards rows, not the batch's commands.
--
-- Done: a command entering a state at rest notifies conveyor_batches with its
-- batch's id after commit; a worker then locks the batch row and, in a later
-- statement (a snapshot taken after the lock), adds up the states not at rest:
-- zero flips done and queues the callback in the same transaction. A command
-- leaving a state at rest (an operator's retry or compensate) clears done in
-- the trigger, under the same row lock, so the two cannot miss each other.
-- Batch rows are not referenced by a foreign key from commands: the check
-- would cost every insert, batch or not; retention removes done batches once
-- their commands are past retention (server/db/retention.ts).
CREATE TABLE "batches" (
  "id" uuid NOT NULL,
  "client_id" uuid NOT NULL,
  "name" text,
  "callback_url" text,
  -- the commands stored with it (duplicates that answered earlier commands do not join)
  "total" integer NOT NULL,
  "done" boolean NOT NULL DEFAULT false,
  "done_at" timestamp(3) with time zone,
  "created_at" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "batches_pkey" PRIMARY KEY ("id"),
  CONSTRAINT "batches_name_check" CHECK (length(name) BETWEEN 1 AND 200),
  CONSTRAINT "batches_total_check" CHECK (total >= 1),
  CONSTRAINT "batches_done_check" CHECK (done = (done_at IS NOT NULL)),
  CONSTRAINT "batches_client_id_fkey" FOREIGN KEY ("client_id")
    REFERENCES "api_clients" ("id") ON UPDATE CASCADE ON DELETE RESTRICT
);
-- Recent batches (the console), a client's, and the open ones (metrics, the done check after a reconnect).
CREATE INDEX "batches_created_at_idx" ON "batches" ("created_at" DESC, "id" DESC);
CREATE INDEX "batches_client_id_idx" ON "batches" ("client_id", "created_at" DESC);
CREATE INDEX "batches_open_idx" ON "batches" ("created_at") WHERE NOT done;
CREATE INDEX "batches_done_at_idx" ON "batches" ("done_at") WHERE done;

CREATE TABLE "batch_counts" (
  "batch_id" uuid NOT NULL,
  "status" command_status NOT NULL,
  "shard" integer NOT NULL,
  "n" integer NOT NULL,
  CONSTRAINT "batch_counts_pkey" PRIMARY KEY ("batch_id", "status", "shard"),
  CONSTRAINT "batch_counts_batch_id_fkey" FOREIGN KEY ("batch_id")
    REFERENCES "batches" ("id") ON UPDATE CASCADE ON DELETE CASCADE
);

-- One row each time the batch became done (with a callbackUrl); each try in batch_delivery_tries.
CREATE TABLE "batch_deliveries" (
  "id" bigserial NOT NULL,
  "batch_id" uuid NOT NULL,
  "url" text NOT NULL,
  "body" jsonb NOT NULL,
  "attempts" integer NOT NULL DEFAULT 0,
  "next_at" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "locked_until" timestamp(3) with time zone,
  "last_status" integer,
  "last_error" text,
  "delivered_at" timestamp(3) with time zone,
  "created_at" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "batch_deliveries_pkey" PRIMARY KEY ("id"),
  CONSTRAINT "batch_deliveries_batch_id_fkey" FOREIGN KEY ("batch_id")
    REFERENCES "batches" ("id") ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX "batch_deliveries_due_idx" ON "batch_deliveries" ("next_at") WHERE delivered_at IS NULL;
CREATE INDEX "batch_deliveries_batch_id_idx" ON "batch_deliveries" ("batch_id", "id");

CREATE TABLE "batch_delivery_tries" (
  "delivery_id" bigint NOT NULL,
  "number" integer NOT NULL,
  "started_at" timestamp(3) with time zone NOT NULL,
  "finished_at" timestamp(3) with time zone NOT NULL,
  "status" integer,
  "error" text,
  "worker" text,
  CONSTRAINT "batch_delivery_tries_pkey" PRIMARY KEY ("delivery_id", "number"),
  CONSTRAINT "batch_delivery_tries_delivery_id_fkey" FOREIGN KEY ("delivery_id")
    REFERENCES "batch_deliveries" ("id") ON UPDATE CASCADE ON DELETE CASCADE
);

ALTER TABLE "commands" ADD COLUMN "batch_id" uuid;
-- A batch's commands (its page, the list's filter); only the commands of batches are in it.
CREATE INDEX "commands_batch_id_idx" ON "commands" ("batch_id", "created_at" DESC, "id" DESC)
  WHERE batch_id IS NOT NULL;

-- A statement of its own (not in conveyor_commands_changed): an update without
-- batch commands pays one scan of its transition table that finds none.
CREATE FUNCTION "conveyor_batch_changed"() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows WHERE batch_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  -- In key order, as state_entries: two statements writing some of the same rows wait rather than deadlock.
  INSERT INTO batch_counts (batch_id, status, shard, n)
  SELECT d.batch_id, d.status, pg_backend_pid(), sum(d.n)::int
  FROM (
    SELECT n.batch_id, n.status, 1 AS n FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.batch_id IS NOT NULL AND n.status IS DISTINCT FROM o.status
    UNION ALL
    SELECT o.batch_id, o.status, -1 FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.batch_id IS NOT NULL AND n.status IS DISTINCT FROM o.status
  ) d
  GROUP BY 1, 2
  ORDER BY 1, 2
  ON CONFLICT (batch_id, status, shard) DO UPDATE SET n = batch_counts.n + EXCLUDED.n;
  -- Left a state at rest: the batch is open again (its row lock orders this against the done check).
  UPDATE batches b SET done = false, done_at = NULL
  FROM (SELECT DISTINCT n.batch_id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.batch_id IS NOT NULL
          AND o.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')
          AND n.status NOT IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')
        ORDER BY 1) r
  WHERE b.id = r.batch_id;
  -- Entered one: ask for the done check (delivered after commit, so it sees this change).
  PERFORM pg_notify('conveyor_batches', x.batch_id::text)
  FROM (SELECT DISTINCT n.batch_id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.batch_id IS NOT NULL
          AND n.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')
          AND o.status NOT IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')) x;
  RETURN NULL;
END $$;

CREATE TRIGGER "commands_batch_changed" AFTER UPDATE ON "commands"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_batch_changed"();
