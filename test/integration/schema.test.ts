// A fresh database migrated by our migrator must be what the generated Prisma
// client expects: every model's table, every scalar field's column with a
// compatible type, every enum's values; and the client must round-trip a row
// of every model.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { createEmptyDb } from "../helpers/db";
import { migrate, listMigrations } from "../../server/db/migrate";
import { createDb, type Db } from "../../server/db/client";
import { Prisma } from "../../server/db/generated/client";
import { STATES, canTransition, type State } from "../../server/engine/states";
import { commandInEveryState } from "../helpers/fixtures";

// The Prisma schema parsed for what the runtime model leaves out: optionality, lists, @db types, enum db names.
async function schemaFacts() {
  const src = await readFile(path.resolve("prisma/schema.prisma"), "utf8");
  const models = new Map<
    string,
    {
      table: string;
      fields: Map<string, { optional: boolean; list: boolean; dbType?: string; column: string; type: string }>;
    }
  >();
  const enums = new Map<string, { dbName: string; values: string[] }>();
  for (const m of src.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const fields = new Map();
    for (const line of m[2]!.split("\n")) {
      const f = /^\s+(\w+)\s+(\w+)(\[\])?(\?)?(.*)$/.exec(line);
      if (!f || f[1]!.startsWith("@@")) continue;
      const rest = f[5]!;
      if (
        rest.includes("@relation") ||
        (/^[A-Z]/.test(f[2]!) &&
          !["String", "Int", "BigInt", "Boolean", "DateTime", "Json", "Float"].includes(f[2]!) &&
          !src.includes(`enum ${f[2]} {`))
      )
        continue;
      fields.set(f[1], {
        type: f[2],
        list: !!f[3],
        optional: !!f[4],
        dbType: /@db\.(\w+)/.exec(rest)?.[1],
        column: /@map\("(\w+)"\)/.exec(rest)?.[1] ?? f[1],
      });
    }
    models.set(m[1]!, { table: /@@map\("(\w+)"\)/.exec(m[2]!)?.[1] ?? m[1]!, fields });
  }
  for (const e of src.matchAll(/^enum (\w+) \{([\s\S]*?)^\}/gm)) {
    const body = e[2]!;
    enums.set(e[1]!, {
      dbName: /@@map\("(\w+)"\)/.exec(body)?.[1] ?? e[1]!,
      values: body
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^\w+$/.test(l)),
    });
  }
  return { models, enums };
}

const PG_TYPES: Record<string, string[]> = {
  String: ["text", "uuid"],
  Int: ["integer"],
  BigInt: ["bigint"],
  Boolean: ["boolean"],
  DateTime: ["timestamp with time zone"],
  Json: ["jsonb"],
  Float: ["double precision"],
};

let url: string;
let drop: () => Promise<void>;
let db: Db;

beforeAll(async () => {
  ({ url, drop } = await createEmptyDb());
  const r = await migrate(url);
  expect(r.applied.length).toBeGreaterThan(0);
  db = createDb(url, { max: 2 });
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

describe("migrations", () => {
  it("create every table and column the Prisma client expects", async () => {
    const { models, enums } = await schemaFacts();
    // The parse must have found the models the generated client has.
    expect([...models.keys()].sort()).toEqual(Object.keys(Prisma.ModelName).sort());
    expect(models.get("Command")!.fields.size).toBeGreaterThan(20);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const cols = (
      await c.query<{
        table_name: string;
        column_name: string;
        data_type: string;
        udt_name: string;
        is_nullable: string;
      }>(
        `SELECT table_name, column_name, data_type, udt_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'`,
      )
    ).rows;
    const enumRows = (
      await c.query<{ typname: string; labels: string[] }>(
        `SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
      )
    ).rows;
    await c.end();

    expect(models.size).toBeGreaterThanOrEqual(6);
    for (const [model, m] of models) {
      const tableCols = cols.filter((r) => r.table_name === m.table);
      expect(tableCols.length, `table ${m.table} for model ${model}`).toBeGreaterThan(0);
      for (const [name, f] of m.fields) {
        const col = tableCols.find((r) => r.column_name === f.column);
        expect(col, `${model}.${name} → ${m.table}.${f.column}`).toBeDefined();
        if (f.list) expect(col!.data_type, `${model}.${name}`).toBe("ARRAY");
        else if (enums.has(f.type)) expect(col!.udt_name, `${model}.${name}`).toBe(enums.get(f.type)!.dbName);
        else if (f.dbType === "SmallInt") expect(col!.data_type, `${model}.${name}`).toBe("smallint");
        else if (f.dbType === "Json") expect(col!.data_type, `${model}.${name}`).toBe("json");
        else expect(PG_TYPES[f.type], `${model}.${name} is ${col!.data_type}`).toContain(col!.data_type);
        if (f.dbType === "Uuid") expect(f.list ? col!.udt_name : col!.data_type).toMatch(/uuid/);
        if (!f.list) expect(col!.is_nullable, `${model}.${name} nullability`).toBe(f.optional ? "YES" : "NO");
      }
      // No column the client does not know about (it would need a default to accept inserts).
      for (const col of tableCols)
        expect(
          [...m.fields.values()].map((f) => f.column),
          `${m.table}.${col.column_name} is in the schema`,
        ).toContain(col.column_name);
    }
    for (const [, e] of enums) {
      expect(enumRows.find((r) => r.typname === e.dbName)?.labels, e.dbName).toEqual(e.values);
    }
  });

  it("round-trip a row of every model through the Prisma client", async () => {
    const client = await db.prisma.apiClient.create({
      data: {
        id: crypto.randomUUID(),
        name: "n",
        scope: "client",
        tokenHash: "h",
        tokenPrefix: "p",
        signingSecretEnc: "s",
      },
    });
    const cmd = await db.prisma.command.create({
      data: {
        id: crypto.randomUUID(),
        clientId: client.id,
        type: "http",
        payload: { a: [1, "x"] },
        idempotencyKey: "k",
        retry: undefined,
      } as never,
    });
    expect(cmd.status).toBe("pending");
    const att = await db.prisma.attempt.create({
      data: { commandId: cmd.id, number: 1, kind: "execute", worker: "w" },
    });
    expect(typeof att.id).toBe("bigint");
    const user = await db.prisma.user.create({
      data: { id: crypto.randomUUID(), email: "a@b.example", passwordHash: "x", role: "viewer" },
    });
    await db.prisma.session.create({ data: { id: "s1", userId: user.id, expiresAt: new Date(Date.now() + 1000) } });
    const audit = await db.prisma.auditEntry.create({ data: { actor: "a", action: "retry", commandIds: [cmd.id] } });
    expect(audit.commandIds).toEqual([cmd.id]);
    await db.prisma.setting.create({ data: { key: "k", value: "v" } });
    const back = await db.prisma.command.findUniqueOrThrow({
      where: { id: cmd.id },
      include: { attempts: true, client: true },
    });
    expect(back.payload).toEqual({ a: [1, "x"] });
    expect(back.attempts).toHaveLength(1);
  });

  it("enforce invariants in the database", async () => {
    const client = await db.prisma.apiClient.create({
      data: {
        id: crypto.randomUUID(),
        name: "n2",
        scope: "client",
        tokenHash: "h2",
        tokenPrefix: "p",
        signingSecretEnc: "s",
      },
    });
    const id = crypto.randomUUID();
    await db.pool.query(`INSERT INTO commands (id, client_id, type, payload) VALUES ($1, $2, 'http', '{}')`, [
      id,
      client.id,
    ]);
    // running without a lease, and at rest without finished_at, are refused
    await expect(db.pool.query(`UPDATE commands SET status = 'running' WHERE id = $1`, [id])).rejects.toThrow(
      /commands_lease_check/,
    );
    await expect(db.pool.query(`UPDATE commands SET finished_at = now() WHERE id = $1`, [id])).rejects.toThrow(
      /commands_finished_check/,
    );
    await expect(db.pool.query(`UPDATE commands SET status = 'succeeded' WHERE id = $1`, [id])).rejects.toThrow(
      /not an allowed transition/,
    );
    await expect(db.pool.query(`UPDATE commands SET lease_id = gen_random_uuid() WHERE id = $1`, [id])).rejects.toThrow(
      /commands_lease_(whole|state)_check/,
    );
    await expect(db.pool.query(`UPDATE commands SET priority = 5000 WHERE id = $1`, [id])).rejects.toThrow(
      /commands_priority_check/,
    );
    // a statement that keeps the timestamps itself skips the trigger's function, but not its transition check
    await expect(
      db.pool.query(
        `UPDATE commands SET status = 'succeeded', updated_at = now(), state_changed_at = now(), finished_at = now() WHERE id = $1`,
        [id],
      ),
    ).rejects.toThrow(/not an allowed transition/);
  });

  it("plan the statement trigger's joins as hash joins, whichever statement a connection ran first", async () => {
    const { rows } = await db.pool.query(`SELECT proconfig FROM pg_proc WHERE proname = 'conveyor_commands_changed'`);
    expect(rows[0].proconfig).toEqual(["enable_nestloop=off"]);
  });

  it("refuse a malformed type name when it is written, and only then", async () => {
    const client = await db.prisma.apiClient.create({
      data: {
        id: crypto.randomUUID(),
        name: "n4",
        scope: "client",
        tokenHash: "h4",
        tokenPrefix: "p",
        signingSecretEnc: "s",
      },
    });
    await expect(
      db.pool.query(
        `INSERT INTO commands (id, client_id, type, payload) VALUES (gen_random_uuid(), $1, 'Bad Type', '{}')`,
        [client.id],
      ),
    ).rejects.toThrow(/commands_type_check/);
    const id = crypto.randomUUID();
    await db.pool.query(`INSERT INTO commands (id, client_id, type, payload) VALUES ($1, $2, 'my.type-2_x', '{}')`, [
      id,
      client.id,
    ]);
    await expect(db.pool.query(`UPDATE commands SET type = 'no/slashes' WHERE id = $1`, [id])).rejects.toThrow(
      /commands_type_check/,
    );
    await expect(db.pool.query(`UPDATE commands SET type = $2 WHERE id = $1`, [id, "x".repeat(65)])).rejects.toThrow(
      /commands_type_check/,
    );
    // read back as plain text, through both clients
    expect((await db.pool.query(`SELECT type FROM commands WHERE id = $1`, [id])).rows[0].type).toBe("my.type-2_x");
    expect((await db.prisma.command.findUniqueOrThrow({ where: { id } })).type).toBe("my.type-2_x");
    expect(await db.prisma.command.count({ where: { type: "my.type-2_x" } })).toBe(1);
  });

  it("allow exactly the transitions of server/engine/states.ts, whether a statement keeps the timestamps itself or not", async () => {
    const client = await db.prisma.apiClient.create({
      data: {
        id: crypto.randomUUID(),
        name: "n5",
        scope: "client",
        tokenHash: "h5",
        tokenPrefix: "p",
        signingSecretEnc: "s",
      },
    });
    const ids = await commandInEveryState(db, client.id, "tr");
    const terminal = (s: State) => ["succeeded", "failed", "exception", "compensated", "cancelled"].includes(s);
    const c = await db.pool.connect();
    const outcomes: string[] = [];
    try {
      await c.query("BEGIN");
      for (const from of STATES) {
        for (const to of STATES) {
          if (from === to) continue;
          const lease =
            to === "running"
              ? `lease_id = gen_random_uuid(), locked_by = 't', locked_until = now() + interval '1 hour'`
              : `lease_id = NULL, locked_by = NULL, locked_until = NULL`;
          const finished = terminal(to) ? "now()" : "NULL";
          for (const hot of [true, false]) {
            const timestamps = hot
              ? `, updated_at = clock_timestamp(), state_changed_at = clock_timestamp(), finished_at = ${finished}`
              : "";
            await c.query("SAVEPOINT t");
            const ok = await c
              .query(`UPDATE commands SET status = $2::command_status, ${lease}${timestamps} WHERE id = $1`, [
                ids[from],
                to,
              ])
              .then(
                () => true,
                (err: Error) => {
                  if (!/not an allowed transition/.test(err.message)) throw err;
                  return false;
                },
              );
            await c.query("ROLLBACK TO SAVEPOINT t");
            if (ok !== canTransition(from, to))
              outcomes.push(`${from} → ${to} (${hot ? "with" : "without"} timestamps): ${ok ? "allowed" : "refused"}`);
          }
        }
      }
    } finally {
      await c.query("ROLLBACK");
      c.release();
    }
    expect(outcomes).toEqual([]);
  });

  it("keep the timestamps: the trigger's function when a statement does not, the statement's own values when it does (the worker's hot path)", async () => {
    const client = await db.prisma.apiClient.create({
      data: {
        id: crypto.randomUUID(),
        name: "n3",
        scope: "client",
        tokenHash: "h3",
        tokenPrefix: "p",
        signingSecretEnc: "s",
      },
    });
    const id = crypto.randomUUID();
    await db.pool.query(
      `INSERT INTO commands (id, client_id, type, payload, created_at, updated_at, state_changed_at)
       VALUES ($1, $2, 'http', '{}', now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour')`,
      [id, client.id],
    );
    // "fresh": written by this test's last statement, not an hour ago
    const row = async () =>
      (
        await db.pool.query(
          `SELECT status, updated_at > now() - interval '1 minute' AS updated, state_changed_at > now() - interval '1 minute' AS changed,
                  finished_at > now() - interval '1 minute' AS finished, updated_at, state_changed_at, finished_at FROM commands WHERE id = $1`,
          [id],
        )
      ).rows[0];
    // not kept by the statement: the function sets them
    await db.pool.query(`UPDATE commands SET priority = 1 WHERE id = $1`, [id]);
    let r = await row();
    expect([r.updated, r.changed, r.finished]).toEqual([true, false, null]);
    await db.pool.query(`UPDATE commands SET status = 'cancelled' WHERE id = $1`, [id]);
    r = await row();
    expect([r.status, r.updated, r.changed, r.finished]).toEqual(["cancelled", true, true, true]);
    // kept by the statement, an allowed transition: its own values stand (the function would have written now())
    const t = new Date("2026-01-02T03:04:05.000Z");
    await db.pool.query(
      `UPDATE commands SET status = 'pending', updated_at = $2, state_changed_at = $2, finished_at = NULL WHERE id = $1`,
      [id, t],
    );
    r = await row();
    expect([r.status, r.updated_at.getTime(), r.state_changed_at.getTime(), r.finished_at]).toEqual([
      "pending",
      t.getTime(),
      t.getTime(),
      null,
    ]);
  });

  it("are recorded in Prisma's table, apply once, and refuse a changed migration", async () => {
    const again = await migrate(url);
    expect(again.applied).toEqual([]);
    const files = await listMigrations(path.resolve("prisma/migrations"));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const rows = (
      await c.query(`SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name`)
    ).rows;
    expect(rows.map((r) => [r.migration_name, r.checksum])).toEqual(files.map((f) => [f.name, f.checksum]));
    await c.query(`UPDATE _prisma_migrations SET checksum = 'x' WHERE migration_name = $1`, [files[0]!.name]);
    await expect(migrate(url)).rejects.toThrow(/changed after it was applied/);
    await c.query(`UPDATE _prisma_migrations SET checksum = $1 WHERE migration_name = $2`, [
      files[0]!.checksum,
      files[0]!.name,
    ]);
    await c.end();
  });

  it("is safe to run from several processes at once", async () => {
    const other = await createEmptyDb();
    try {
      const results = await Promise.all([migrate(other.url), migrate(other.url), migrate(other.url)]);
      expect(results.map((r) => r.applied.length).sort()).toEqual([
        0,
        0,
        results.reduce((n, r) => n + r.applied.length, 0),
      ]);
    } finally {
      await other.drop();
    }
  });
});
