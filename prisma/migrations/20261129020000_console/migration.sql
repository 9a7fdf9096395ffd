-- The console: sign-in throttling and session activity.
ALTER TABLE "users"
    ADD COLUMN "failed_logins" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "locked_until" TIMESTAMPTZ(3),
    ADD COLUMN "last_login_at" TIMESTAMPTZ(3);
ALTER TABLE "sessions" ADD COLUMN "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
CREATE INDEX "sessions_expires_at_idx" ON "sessions"("expires_at");
