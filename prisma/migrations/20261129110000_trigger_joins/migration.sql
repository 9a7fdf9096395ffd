-- The statement trigger joined its transition tables (old_rows × new_rows)
-- three times per UPDATE: for the state counters, for upstream callbacks and
-- for the workers' wake-up. Only the counters need the join on every
-- statement; callbacks concern rows that reached a terminal state with a
-- callback URL, wake-ups rows that became due without a lease. A scan of
-- new_rows alone now decides whether those two joins run at all: in a worker's
-- claims and successful completions without callback URLs, they never do.
-- (CREATE OR REPLACE resets the function's settings: enable_nestloop = off is
-- restated, see 20261129080000_trigger_plans.)
CREATE OR REPLACE FUNCTION "conveyor_commands_changed"() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
  INSERT INTO state_entries (minute, status, type, shard, n)
  SELECT date_trunc('minute', now()), n.status, n.type, pg_backend_pid() % 32768, count(*)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status IS DISTINCT FROM o.status
  GROUP BY 1, 2, 3, 4
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
