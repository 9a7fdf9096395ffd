-- Edit & retry (DESIGN §9): an operator may correct a command's payload and
-- run it again under the same id and idempotency key. The payload the client
-- submitted is kept here at the first edit (NULL while the payload is the one
-- submitted), so that the client's own retry of that submission, with the same
-- key and the payload it sent, is still answered as a duplicate of the command
-- rather than refused as a CONFLICT (server/db/commands.ts findByKeys).
-- A nullable column without a default: no table rewrite.
ALTER TABLE "commands" ADD COLUMN "submitted_payload" jsonb;
