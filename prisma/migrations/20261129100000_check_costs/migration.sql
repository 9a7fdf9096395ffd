-- Two checks that ran on every update of a command, though what they check
-- rarely or never changes (found with perf during a worker drain):
--
-- 1. The type name's format was a CHECK constraint with a regular expression,
--    and PostgreSQL evaluates every CHECK constraint on every new row
--    version: twice per command in the worker (claim, completion), ~2.5 % of
--    a drain's CPU in the regular expression engine. As a domain, the format
--    is checked when a value is written to the column (insert, or an update
--    that sets it), and not when an update leaves it as it was.
--    This rewrites the table once (ALTER COLUMN ... TYPE to a domain with a
--    constraint): run this release at a quiet time (docs/operations.md §4).
CREATE DOMAIN "command_type_name" AS text
    CONSTRAINT "commands_type_check" CHECK (VALUE ~ '^[a-z][a-z0-9_.-]{0,63}$');
ALTER TABLE "commands" DROP CONSTRAINT "commands_type_check";
ALTER TABLE "commands" ALTER COLUMN "type" TYPE "command_type_name";

-- 2. The row trigger's WHEN clause checked the transition as text
--    (OLD.status::text || '>' || NEW.status::text = ANY (...)): two enum
--    outputs (catalog lookups) and a string search per row, and PostgreSQL
--    reads the clause back from its stored form (12 KB of node text) at the
--    start of every UPDATE statement. Now a bitmask per state, generated from
--    command_transitions as before: bit k of masks[i] allows the change from
--    the i-th state to the k-th (enum order); 4 KB stored. A state missing
--    from the arrays counts as not allowed, so the function decides (and refuses).
DROP TRIGGER "commands_update" ON "commands";
DO $$
DECLARE
  states text := (SELECT array_agg(s ORDER BY s)::text FROM unnest(enum_range(NULL::command_status)) s);
  masks text := (SELECT array_agg((SELECT COALESCE(sum(1 << array_position(enum_range(NULL::command_status), t.to_status)), 0)
                                   FROM command_transitions t WHERE t.from_status = f) ORDER BY f)::text
                 FROM unnest(enum_range(NULL::command_status)) f);
BEGIN
  EXECUTE format($def$
    CREATE TRIGGER "commands_update" BEFORE UPDATE ON "commands" FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
          OR (NEW.status IS DISTINCT FROM OLD.status
              AND (NEW.state_changed_at IS NOT DISTINCT FROM OLD.state_changed_at
                   OR COALESCE(('%s'::int[])[array_position('%s'::command_status[], OLD.status)]
                               & (1 << array_position('%s'::command_status[], NEW.status)), 0) = 0)))
    EXECUTE FUNCTION "conveyor_command_update"()
  $def$, masks, states, states);
END $$;
