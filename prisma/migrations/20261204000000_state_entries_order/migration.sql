-- The state counters' shard was pg_backend_pid() % 32768: on a host whose
-- kernel.pid_max is above 32768 two live backends could share a shard, and
-- two statements adding to the same (minute, state, type) rows, each several
-- of them, in whatever order their aggregate produced, could deadlock. A
-- shard is now the backend's pid itself (no two live backends have the same),
-- so the column holds any pid; and the trigger adds up its rows in key order
-- (ON CONFLICT locks them in the order they are inserted), so that another
-- statement writing some of the same rows in key order waits for it instead
-- of closing a cycle (test/integration/state-entries.test.ts).
-- The rest of the function is as in 20261129110000_trigger_joins.
-- (CREATE OR REPLACE resets the function's settings: enable_nestloop = off is
-- restated, see 20261129080000_trigger_plans.)
ALTER TABLE "state_entries" ALTER COLUMN "shard" TYPE integer;

CREATE OR REPLACE FUNCTION "conveyor_commands_changed"() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
  INSERT INTO state_entries (minute, status, type, shard, n)
  SELECT date_trunc('minute', now()), n.status, n.type, pg_backend_pid(), count(*)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status IS DISTINCT FROM o.status
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3
  ON CONFLICT (minute, status, type, shard) DO UPDATE SET n = state_entries.n + EXCLUDED.n;
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
