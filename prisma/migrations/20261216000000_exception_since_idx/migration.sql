-- The overview lists the commands in exception longest in that state first.
-- Without an index of its own that read sorted every exception (an outage can
-- leave hundreds of thousands: ~1 s). Exceptions are few in a healthy system
-- and never leased, so the index is small and the hot path never writes it.
CREATE INDEX "commands_exception_since_idx" ON "commands" ("state_changed_at", "id") WHERE status = 'exception' AND lease_id IS NULL;
