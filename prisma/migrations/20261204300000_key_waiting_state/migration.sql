-- Ordering keys (DESIGN §7): key_waiting says a command is held back by an
-- earlier command of its key, which only a command in a state that holds the
-- key (pending, running, awaiting, retrying, compensating, exception) can be.
-- Operator actions that took a command to a free state (cancel, resolve) left
-- it true; they now set it false (server/db/operator-actions.ts), and the rows
-- they left are put right. Clearing it fires no release
-- (commands_order_release): the status does not change.
UPDATE "commands" SET key_waiting = false
WHERE key_waiting AND status NOT IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception');

ALTER TABLE "commands" ADD CONSTRAINT "commands_key_waiting_state_check"
  CHECK (NOT key_waiting OR status IN ('pending', 'running', 'awaiting', 'retrying', 'compensating', 'exception'));
