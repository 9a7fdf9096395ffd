import { describe, expect, it } from "vitest";
import { parseEnv, EnvError } from "../../server/env";

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
