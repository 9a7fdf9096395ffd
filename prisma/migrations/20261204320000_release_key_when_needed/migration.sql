-- The key's release (commands_order_release, at commit, per row that frees a
-- command of an ordering key or makes one wait) as an UPDATE of commands every
-- time: with nothing waiting, the update changed no row but still ran the
-- table's statement trigger (conveyor_commands_changed, over its transition
-- tables), and when it did change one, its row trigger (to set updated_at).
-- Measured (bench/engine.ts --ordering-keys 10000, pg_stat_statements): ~100 µs
-- per call, half the database's CPU of a keyed drain. Now it looks first, under
-- the same lock, and updates only the command it releases (updated_at set here,
-- as the hot statements do). The same decision: the key's earliest waiting
-- command becomes its head when the key has none.
CREATE OR REPLACE FUNCTION "conveyor_release_key"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  nxt uuid;
BEGIN
  PERFORM pg_advisory_xact_lock(conveyor_ordering_lock(NEW.client_id, NEW.ordering_key));
  SELECT w.id INTO nxt FROM commands w
  WHERE w.client_id = NEW.client_id AND w.ordering_key = NEW.ordering_key AND w.key_waiting
    AND w.status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception')
  ORDER BY w.ordering_seq LIMIT 1;
  IF nxt IS NULL OR EXISTS (
       SELECT 1 FROM commands h
       WHERE h.client_id = NEW.client_id AND h.ordering_key = NEW.ordering_key AND NOT h.key_waiting
         AND h.status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception')) THEN
    RETURN NULL;
  END IF;
  UPDATE commands SET key_waiting = false, updated_at = now() WHERE id = nxt;
  PERFORM pg_notify('conveyor_commands', '');
  RETURN NULL;
END $$;
