-- The statement trigger joins its transition tables (old_rows × new_rows).
-- PL/pgSQL plans those queries once per connection, with the row counts of
-- the statement that ran first: a connection whose first update touched one
-- row kept a nested loop, which is quadratic for the claims and completions
-- of a hundred rows that follow (measured: ~25 % of a worker drain's
-- throughput lost, at random, depending on which connection ran what first).
-- Without nested loops the plans are hash joins, linear at any size.
ALTER FUNCTION "conveyor_commands_changed"() SET enable_nestloop = off;
