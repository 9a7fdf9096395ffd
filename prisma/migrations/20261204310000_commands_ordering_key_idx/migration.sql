-- The console's list filtered by ordering key (commands.list { orderingKey },
-- DESIGN §4), newest first: without it, a key's few commands are looked for
-- along the whole created_at index. Like the list's other indexes, unleased
-- rows only (server/db/leased.ts); commands without a key have no entry.
CREATE INDEX "commands_ordering_key_created_at_idx" ON "commands" (ordering_key, created_at DESC)
  WHERE ordering_key IS NOT NULL AND lease_id IS NULL;
