-- How many commands entered each state, per minute and type: what `count`
-- alert rules (DESIGN §4: "commands that entered one of states in the last
-- window") read. Written once per UPDATE statement by the trigger below; each
-- connection writes its own shard (its backend pid) so that concurrent workers
-- never queue on one counter row; the alert evaluator folds finished minutes
-- into shard -1. Entries into `pending` at creation are not counted here (the
-- intake path stays free of it): commands.created_at says it.
CREATE TABLE "state_entries" (
    "minute" TIMESTAMPTZ(0) NOT NULL,
    "status" "command_status" NOT NULL,
    "type" TEXT NOT NULL,
    "shard" SMALLINT NOT NULL,
    "n" INTEGER NOT NULL,
    CONSTRAINT "state_entries_pkey" PRIMARY KEY ("minute", "status", "type", "shard")
);

CREATE OR REPLACE FUNCTION "conveyor_commands_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO state_entries (minute, status, type, shard, n)
  SELECT date_trunc('minute', now()), n.status, n.type, pg_backend_pid() % 32768, count(*)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status IS DISTINCT FROM o.status
  GROUP BY 1, 2, 3, 4
  ON CONFLICT (minute, status, type, shard) DO UPDATE SET n = state_entries.n + EXCLUDED.n;

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

