-- The row trigger that checks transitions and keeps updated_at,
-- state_changed_at and finished_at cost a PL/pgSQL call per updated row (~4 %
-- of a worker drain's CPU, twice per command). Its WHEN clause, evaluated
-- without PL/pgSQL, now lets a statement skip it when the statement itself
-- sets updated_at and, on a change of state, state_changed_at, and the change
-- is an allowed transition: the worker's claim and completion do so
-- (server/db/queue.ts). Every other update still runs the function, which
-- keeps the timestamps as before; a transition that is not allowed always
-- reaches the function, which refuses it.
DROP TRIGGER "commands_update" ON "commands";
DO $$
BEGIN
  EXECUTE format($def$
    CREATE TRIGGER "commands_update" BEFORE UPDATE ON "commands" FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
          OR (NEW.status IS DISTINCT FROM OLD.status
              AND (NEW.state_changed_at IS NOT DISTINCT FROM OLD.state_changed_at
                   OR NOT ((OLD.status::text || '>' || NEW.status::text) = ANY ('{%s}'::text[])))))
    EXECUTE FUNCTION "conveyor_command_update"()
  $def$, (SELECT string_agg(from_status || '>' || to_status, ',') FROM command_transitions));
END $$;
