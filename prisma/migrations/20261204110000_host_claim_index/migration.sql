-- The gated claim of a host (server/db/flow-claim.ts) walks this instead of
-- commands_claim_idx: a rate-limited host's few due commands are found
-- directly, however large the backlog of other scopes. Only rows with a host
-- (the http type's) are in it, so other types' intake and completions pay
-- nothing for it.
CREATE INDEX "commands_host_claim_idx" ON "commands" (target_host, priority DESC, run_at)
  WHERE target_host IS NOT NULL AND status IN ('pending', 'retrying', 'awaiting', 'compensating')
    AND lease_id IS NULL AND NOT key_waiting;
