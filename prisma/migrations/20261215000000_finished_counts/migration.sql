-- Counts of the finished commands (the states the pruner deletes: succeeded,
-- failed, compensated, cancelled), which grow with the history. The console's
-- counts read these rows instead of counting the table's index entries (about
-- a second for 10 million). Signed deltas per writing backend (shard = its pid,
-- which no other live backend has; 0: folded by the compaction), so that
-- concurrent writers never wait for one counter: a read sums at most
-- states × backends rows. Kept by the triggers below on every write of commands:
-- an update that changes a status (the statement trigger that already joins old
-- and new rows), a delete (the pruner) and an insert in a finished state (never
-- the intake's, which pays one scan of its statement's new rows): statement
-- triggers over their transition tables, one upsert per state and statement
-- (a row trigger would write one row version per command: a bulk load of
-- finished commands in one transaction would chain them all); a truncate.
CREATE TABLE "finished_counts" (
    "status" "command_status" NOT NULL,
    "shard" INTEGER NOT NULL,
    "n" BIGINT NOT NULL,
    CONSTRAINT "finished_counts_pkey" PRIMARY KEY ("status", "shard"),
    CONSTRAINT "finished_counts_status_check" CHECK (status IN ('succeeded', 'failed', 'compensated', 'cancelled'))
);

CREATE OR REPLACE FUNCTION "conveyor_commands_changed"() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
  WITH ch AS MATERIALIZED (
    SELECT n.status AS ns, o.status AS os, n.type
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status
  ),
  entries AS (
    INSERT INTO state_entries (minute, status, type, shard, n)
    SELECT date_trunc('minute', now()), ns, type, pg_backend_pid(), count(*)
    FROM ch
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3
    ON CONFLICT (minute, status, type, shard) DO UPDATE SET n = state_entries.n + EXCLUDED.n
  )
  INSERT INTO finished_counts (status, shard, n)
  SELECT d.s, pg_backend_pid(), sum(d.n)
  FROM (SELECT ch.ns AS s, 1 AS n FROM ch WHERE ch.ns IN ('succeeded', 'failed', 'compensated', 'cancelled')
        UNION ALL
        SELECT ch.os, -1 FROM ch WHERE ch.os IN ('succeeded', 'failed', 'compensated', 'cancelled')) d
  GROUP BY 1
  HAVING sum(d.n) <> 0
  ORDER BY 1
  ON CONFLICT (status, shard) DO UPDATE SET n = finished_counts.n + EXCLUDED.n;
  IF EXISTS (SELECT 1 FROM new_rows n
             WHERE n.callback_url IS NOT NULL AND n.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled')) THEN
    INSERT INTO callback_deliveries (command_id, url, status, body)
    SELECT n.id, n.callback_url, n.status, conveyor_command_view(n)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status AND n.callback_url IS NOT NULL
      AND n.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled');
    IF FOUND THEN
      PERFORM pg_notify('conveyor_callbacks', '');
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n
             WHERE n.status IN ('pending', 'retrying', 'compensating', 'awaiting') AND n.lease_id IS NULL AND n.run_at <= now())
     AND EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE n.status IN ('pending', 'retrying', 'compensating', 'awaiting') AND n.lease_id IS NULL AND n.run_at <= now()
                   AND (n.status IS DISTINCT FROM o.status OR o.lease_id IS NOT NULL)) THEN
    PERFORM pg_notify('conveyor_commands', '');
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION "conveyor_finished_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO finished_counts (status, shard, n)
  SELECT o.status, pg_backend_pid(), -count(*)
  FROM old_rows o
  WHERE o.status IN ('succeeded', 'failed', 'compensated', 'cancelled')
  GROUP BY 1
  ORDER BY 1
  ON CONFLICT (status, shard) DO UPDATE SET n = finished_counts.n + EXCLUDED.n;
  RETURN NULL;
END $$;

CREATE FUNCTION "conveyor_finished_inserted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n WHERE n.status IN ('succeeded', 'failed', 'compensated', 'cancelled')) THEN
    INSERT INTO finished_counts (status, shard, n)
    SELECT n.status, pg_backend_pid(), count(*)
    FROM new_rows n
    WHERE n.status IN ('succeeded', 'failed', 'compensated', 'cancelled')
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (status, shard) DO UPDATE SET n = finished_counts.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION "conveyor_finished_truncated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM finished_counts;
  RETURN NULL;
END $$;

-- Writers wait while the counts start from the table as it is (the triggers below count from then on).
LOCK TABLE "commands" IN SHARE MODE;
INSERT INTO finished_counts (status, shard, n)
SELECT status, 0, count(*) FROM commands
WHERE status IN ('succeeded', 'failed', 'compensated', 'cancelled')
GROUP BY status;

CREATE TRIGGER "commands_finished_deleted" AFTER DELETE ON "commands"
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_finished_deleted"();
CREATE TRIGGER "commands_finished_inserted" AFTER INSERT ON "commands"
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_finished_inserted"();
CREATE TRIGGER "commands_finished_truncated" AFTER TRUNCATE ON "commands"
FOR EACH STATEMENT EXECUTE FUNCTION "conveyor_finished_truncated"();
