-- Commands under a lease (claimed by a worker: a few hundred at any time) are
-- left out of the secondary indexes. A claim then writes two index entries
-- (primary key, commands_lease_idx) instead of five, and a completion skips
-- the status index when it succeeds. Queries that must see every command read
-- the leased ones through commands_lease_idx (server/db/leased.ts).
DROP INDEX "commands_status_created_at_idx";
CREATE INDEX "commands_status_created_at_idx" ON "commands"("status", "created_at" DESC) WHERE "status" <> 'succeeded' AND "lease_id" IS NULL;
DROP INDEX "commands_type_created_at_idx";
CREATE INDEX "commands_type_created_at_idx" ON "commands"("type", "created_at" DESC) WHERE "lease_id" IS NULL;
DROP INDEX "commands_created_at_idx";
CREATE INDEX "commands_created_at_idx" ON "commands"("created_at" DESC) WHERE "lease_id" IS NULL;

-- Attempts: one index instead of two. They are only ever read per command.
ALTER TABLE "attempts" DROP CONSTRAINT "attempts_pkey";
DROP INDEX "attempts_command_id_number_idx";
ALTER TABLE "attempts" ADD CONSTRAINT "attempts_pkey" PRIMARY KEY ("command_id", "id");
