-- Single sign-on (DESIGN §9): users who sign in with OpenID Connect. Such a
-- user is known by its identity provider's issuer and subject (the `sub`
-- claim, stable where an email may change); it has no password. The email and
-- display name are the provider's, refreshed at each sign-in.
ALTER TABLE "users"
    ALTER COLUMN "password_hash" DROP NOT NULL,
    ADD COLUMN "name" TEXT,
    ADD COLUMN "oidc_issuer" TEXT,
    ADD COLUMN "oidc_subject" TEXT,
    -- both or neither; and an account without a password is one that signs in with SSO
    ADD CONSTRAINT "users_oidc_check" CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)),
    ADD CONSTRAINT "users_password_or_oidc_check" CHECK (password_hash IS NOT NULL OR oidc_subject IS NOT NULL);
CREATE UNIQUE INDEX "users_oidc_issuer_oidc_subject_key" ON "users"("oidc_issuer", "oidc_subject");
