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
--    outputs (catalog lookups) and a string search per row. The same check
--    as enum comparisons, generated from command_transitions as before.
DROP TRIGGER "commands_update" ON "commands";
DO $$
BEGIN
  EXECUTE format($def$
    CREATE TRIGGER "commands_update" BEFORE UPDATE ON "commands" FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
          OR (NEW.status IS DISTINCT FROM OLD.status
              AND (NEW.state_changed_at IS NOT DISTINCT FROM OLD.state_changed_at
                   OR NOT (CASE OLD.status %s ELSE false END))))
    EXECUTE FUNCTION "conveyor_command_update"()
  $def$, (SELECT string_agg(format('WHEN %L THEN NEW.status IN (%s)', from_status, tos), ' ')
          FROM (SELECT from_status, string_agg(quote_literal(to_status), ', ' ORDER BY to_status) AS tos
                FROM command_transitions GROUP BY from_status) t));
END $$;
