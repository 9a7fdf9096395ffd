import { describe, expect, it } from "vitest";
import { parseEnv, EnvError, oidcEnv } from "../../server/env";

describe("environment", () => {
  it("has a documented default for everything", () => {
    const e = parseEnv({});
    expect(e).toMatchObject({
      PORT: 3000,
      WORKER_CONCURRENCY: 10,
      MAX_BODY_BYTES: 1048576,
      PUBLIC_URL: "http://localhost:3000",
    });
    expect(e.DATABASE_URL).toBeUndefined();
  });

  it("names each bad variable and what is wrong", () => {
    let err: unknown;
    try {
      parseEnv({
        PORT: "eighty",
        DATABASE_URL: "mysql://x",
        WORKER_CONCURRENCY: "0",
        SMTP_URL: "http://mail",
        ADMIN_EMAIL: "not-an-email",
        BOOTSTRAP_API_TOKEN: "short",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/PORT: must be a whole number from 1 to 65535, got "eighty"/);
    expect(msg).toMatch(/DATABASE_URL: must be a URL starting with postgres:\/\//);
    expect(msg).toMatch(/WORKER_CONCURRENCY: must be a whole number from 1 to 1000/);
    expect(msg).toMatch(/SMTP_URL: must be a URL starting with smtp:\/\/ or smtps:\/\//);
    expect(msg).toMatch(/ADMIN_EMAIL: must be an email address/);
    expect(msg).toMatch(/BOOTSTRAP_API_TOKEN: must be at least 24 characters/);
  });

  it("takes a separate URL for LISTEN (for transaction-mode poolers), checked like DATABASE_URL", () => {
    expect(parseEnv({ DATABASE_LISTEN_URL: "postgresql://u@db:5432/c" }).DATABASE_LISTEN_URL).toBe(
      "postgresql://u@db:5432/c",
    );
    expect(() => parseEnv({ DATABASE_LISTEN_URL: "mysql://x" })).toThrow(
      /DATABASE_LISTEN_URL: must be a URL starting with postgres:\/\/ or postgresql:\/\//,
    );
  });

  it("turns prepared statements off only when asked (PgBouncer in transaction mode before 1.21)", () => {
    expect(parseEnv({}).DB_PREPARED_STATEMENTS).toBe(true);
    expect(parseEnv({ DB_PREPARED_STATEMENTS: "off" }).DB_PREPARED_STATEMENTS).toBe(false);
    expect(() => parseEnv({ DB_PREPARED_STATEMENTS: "no" })).toThrow(/DB_PREPARED_STATEMENTS: must be on or off/);
  });

  it("wants ADMIN_EMAIL and ADMIN_PASSWORD together", () => {
    expect(() => parseEnv({ ADMIN_EMAIL: "a@b.example" })).toThrow(
      /ADMIN_PASSWORD: ADMIN_EMAIL and ADMIN_PASSWORD must be set together/,
    );
    expect(parseEnv({ ADMIN_EMAIL: "a@b.example", ADMIN_PASSWORD: "correct horse battery" }).ADMIN_EMAIL).toBe(
      "a@b.example",
    );
  });
});

describe("single sign-on settings", () => {
  const sso = {
    OIDC_ISSUER_URL: "https://id.corp.example/realms/main",
    OIDC_CLIENT_ID: "conveyor",
    OIDC_CLIENT_SECRET: "a-client-secret-value",
  };
  it("are off by default, with password sign-in on", () => {
    const e = parseEnv({});
    expect(oidcEnv(e)).toBeUndefined();
    expect(e.PASSWORD_LOGIN).toBe(true);
  });
  it("take the three variables, the role claim and default role, and derive the redirect URI from PUBLIC_URL", () => {
    expect(oidcEnv(parseEnv({ ...sso, PUBLIC_URL: "https://conveyor.corp.example/" }))).toEqual({
      issuerUrl: sso.OIDC_ISSUER_URL,
      clientId: "conveyor",
      clientSecret: "a-client-secret-value",
      roleClaim: "conveyor_role",
      defaultRole: "viewer",
      redirectUri: "https://conveyor.corp.example/api/auth/oidc/callback",
    });
    const e = parseEnv({ ...sso, OIDC_ROLE_CLAIM: "groups", OIDC_DEFAULT_ROLE: "none", PASSWORD_LOGIN: "false" });
    expect(oidcEnv(e)).toMatchObject({
      roleClaim: "groups",
      defaultRole: "none",
      redirectUri: "http://localhost:3000/api/auth/oidc/callback",
    });
    expect(e.PASSWORD_LOGIN).toBe(false);
    expect(oidcEnv(parseEnv({ ...sso, OIDC_ROLE_CLAIM: " " }))?.roleClaim).toBe("conveyor_role");
  });
  it("name each missing one when only some are set, and never echo the secret", () => {
    let msg = "";
    try {
      parseEnv({ OIDC_CLIENT_SECRET: "do-not-print-me" });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/OIDC_ISSUER_URL: must be set too/);
    expect(msg).toMatch(/OIDC_CLIENT_ID: must be set too/);
    expect(msg).not.toMatch(/OIDC_CLIENT_SECRET:/);
    expect(msg).not.toContain("do-not-print-me");
  });
  it("want an https issuer (http only on loopback), a known default role, and SSO before PASSWORD_LOGIN=false", () => {
    expect(() => parseEnv({ ...sso, OIDC_ISSUER_URL: "http://id.corp.example" })).toThrow(
      /OIDC_ISSUER_URL: must be an https:\/\/ URL/,
    );
    expect(oidcEnv(parseEnv({ ...sso, OIDC_ISSUER_URL: "http://127.0.0.1:9000" }))?.issuerUrl).toBe(
      "http://127.0.0.1:9000",
    );
    expect(() => parseEnv({ ...sso, OIDC_DEFAULT_ROLE: "root" })).toThrow(
      /OIDC_DEFAULT_ROLE: must be viewer, operator, admin or none/,
    );
    expect(() => parseEnv({ PASSWORD_LOGIN: "false" })).toThrow(/PASSWORD_LOGIN: false needs single sign-on/);
    expect(() => parseEnv({ PASSWORD_LOGIN: "no" })).toThrow(/PASSWORD_LOGIN: must be true or false/);
  });
});
