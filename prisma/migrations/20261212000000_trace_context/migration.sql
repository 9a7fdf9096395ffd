-- W3C Trace Context kept with a command (DESIGN §10): the traceparent and
-- tracestate its submit carried (normalized to version 00), or the intake
-- span's when tracing is on and the submit carried none. Every request of the
-- http type and every upstream callback sends a child of it. Nullable without
-- a default: adding them rewrites no row, and an insert without trace context
-- names neither column (server/db/commands.ts).
ALTER TABLE "commands" ADD COLUMN "trace_parent" TEXT, ADD COLUMN "trace_state" TEXT;
