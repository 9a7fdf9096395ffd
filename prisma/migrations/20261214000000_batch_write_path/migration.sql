-- The write path of batches. The trigger in one statement: the changed rows of a batch are joined
-- once (old to new), then counted, reopened and notified from that one set,
-- instead of three joins and three statements per UPDATE of commands. Same
-- effects, in the same order of locks (batch_counts in key order, then batches
-- in id order).
CREATE OR REPLACE FUNCTION "conveyor_batch_changed"() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
DECLARE
  notified int;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows WHERE batch_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  WITH ch AS MATERIALIZED (
    SELECT n.batch_id AS nb, o.batch_id AS ob, n.status AS ns, o.status AS os,
           o.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled') AS was_at_rest,
           n.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled') AS at_rest
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.batch_id IS NOT NULL OR o.batch_id IS NOT NULL) AND n.status IS DISTINCT FROM o.status
  ),
  counted AS (
    INSERT INTO batch_counts (batch_id, status, shard, n)
    SELECT d.batch_id, d.status, pg_backend_pid(), sum(d.n)::int
    FROM (SELECT nb AS batch_id, ns AS status, 1 AS n FROM ch WHERE nb IS NOT NULL
          UNION ALL
          SELECT ob, os, -1 FROM ch WHERE ob IS NOT NULL) d
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (batch_id, status, shard) DO UPDATE SET n = batch_counts.n + EXCLUDED.n
  ),
  -- Left a state at rest: the batch is open again (its row lock orders this against the done check).
  reopened AS (
    UPDATE batches b SET done = false, done_at = NULL
    FROM (SELECT DISTINCT nb FROM ch WHERE nb IS NOT NULL AND was_at_rest AND NOT at_rest ORDER BY 1) r
    WHERE b.id = r.nb
  )
  -- Entered one: ask for the done check (delivered after commit, so it sees this change).
  SELECT count(pg_notify('conveyor_batches', x.nb::text)) INTO notified
  FROM (SELECT DISTINCT nb FROM ch WHERE nb IS NOT NULL AND at_rest AND NOT was_at_rest) x;
  RETURN NULL;
END $$;

-- A batch's commands under a lease are left out of its index, as they are of
-- the other secondary indexes (20261129070000_unleased_indexes): the claim of
-- a batch's command then writes no entry in it (measured: the index was about
-- half of what a batch's command cost PostgreSQL beyond a plain one's, in
-- bench:engine --batches). Reads of a batch's commands read both halves
-- (server/db/leased.ts), as the commands list does.
DROP INDEX "commands_batch_id_idx";
CREATE INDEX "commands_batch_id_idx" ON "commands" ("batch_id", "created_at" DESC, "id" DESC)
  WHERE batch_id IS NOT NULL AND lease_id IS NULL;
