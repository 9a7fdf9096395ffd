// The schema the shipped migrations make, as one readable file (prisma/schema.sql),
// so that a reader sees today's tables, indexes, functions and triggers without
// replaying every migration in their head.
//
//   npm run db:schema         rewrites prisma/schema.sql
//   npm run db:schema:check   fails with a diff when prisma/schema.sql differs from what the migrations make
//
// Both start an embedded PostgreSQL of their own in a temporary folder (nothing
// to set up, and always the same major version, so the catalog's own rendering
// of definitions cannot differ between machines), migrate a fresh database and
// dump its schema. The dump is read from the catalog with PostgreSQL's own
// pg_get_*def functions: the embedded binaries ship no pg_dump, and a pg_dump of
// another major version refuses the server. Objects are sorted by name, so the
// file changes only where the schema does.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { startEmbedded } from "../server/db/embedded";
import { migrate } from "../server/db/migrate";

const SNAPSHOT = path.resolve("prisma/schema.sql");

const ident = (name: string) => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`);

/** The public schema of the database at `url`, as SQL text. */
export async function dumpSchema(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
      (await c.query<T>(sql, params)).rows;
    const out: string[] = [];
    const section = (title: string, items: string[]) => {
      if (items.length) out.push(`-- ${title}\n\n${items.join("\n\n")}`);
    };
    const version = (await q<{ v: string }>("SELECT current_setting('server_version_num') AS v"))[0]!.v;

    const ns = `(SELECT oid FROM pg_namespace WHERE nspname = 'public')`;

    const enums = await q<{ name: string; labels: string[] }>(`
      SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
      FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE t.typnamespace = ${ns} GROUP BY t.typname ORDER BY t.typname`);
    section(
      "Types",
      enums.map(
        (e) =>
          `CREATE TYPE ${ident(e.name)} AS ENUM (\n${e.labels.map((l) => `  '${l.replace(/'/g, "''")}'`).join(",\n")}\n);`,
      ),
    );

    const domains = await q<{
      name: string;
      base: string;
      def: string | null;
      notnull: boolean;
      checks: string[] | null;
    }>(`
      SELECT t.typname AS name, format_type(t.typbasetype, t.typtypmod) AS base, t.typdefault AS def, t.typnotnull AS notnull,
             (SELECT array_agg(format('CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)) ORDER BY conname)
                FROM pg_constraint WHERE contypid = t.oid AND contype = 'c') AS checks
      FROM pg_type t WHERE t.typnamespace = ${ns} AND t.typtype = 'd' ORDER BY t.typname`);
    section(
      "Domains",
      domains.map(
        (d) =>
          [
            `CREATE DOMAIN ${ident(d.name)} AS ${d.base}`,
            d.def && `  DEFAULT ${d.def}`,
            d.notnull && "  NOT NULL",
            ...(d.checks ?? []).map((x) => `  ${x}`),
          ]
            .filter(Boolean)
            .join("\n") + ";",
      ),
    );

    const sequences = await q<{ name: string; def: string }>(`
      SELECT c.relname AS name,
             format('CREATE SEQUENCE %I AS %s START %s INCREMENT %s MINVALUE %s MAXVALUE %s CACHE %s%s;', c.relname,
                    format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                    CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) AS def
      FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
      WHERE c.relnamespace = ${ns} AND c.relkind = 'S'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
      ORDER BY c.relname`);
    section(
      "Sequences",
      sequences.map((s) => s.def),
    );

    const tables = await q<{ oid: number; name: string; persistence: string; options: string[] | null }>(`
      SELECT c.oid, c.relname AS name, c.relpersistence AS persistence, c.reloptions AS options
      FROM pg_class c WHERE c.relnamespace = ${ns} AND c.relkind IN ('r', 'p') ORDER BY c.relname`);
    const tableText: string[] = [];
    for (const t of tables) {
      const cols = await q<{
        name: string;
        type: string;
        notnull: boolean;
        def: string | null;
        identity: string;
        generated: string;
        collation: string | null;
      }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
                pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity AS identity, a.attgenerated AS generated,
                CASE WHEN a.attcollation <> 0 AND a.attcollation <> (SELECT typcollation FROM pg_type WHERE oid = a.atttypid)
                     THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END AS collation
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [t.oid],
      );
      const cons = await q<{ name: string; def: string }>(
        `SELECT conname AS name, pg_get_constraintdef(oid, true) AS def FROM pg_constraint
         WHERE conrelid = $1 AND contype <> 'n' ORDER BY contype = 'f', conname`,
        [t.oid],
      );
      const lines = cols.map((col) => {
        let s = `  ${ident(col.name)} ${col.type}`;
        if (col.collation) s += ` COLLATE "${col.collation}"`;
        if (col.generated === "s") s += ` GENERATED ALWAYS AS (${col.def}) STORED`;
        else if (col.identity) s += ` GENERATED ${col.identity === "a" ? "ALWAYS" : "BY DEFAULT"} AS IDENTITY`;
        else if (col.def !== null) s += ` DEFAULT ${col.def}`;
        if (col.notnull) s += " NOT NULL";
        return s;
      });
      for (const k of cons) lines.push(`  CONSTRAINT ${ident(k.name)} ${k.def}`);
      const head = `CREATE ${t.persistence === "u" ? "UNLOGGED " : ""}TABLE ${ident(t.name)}`;
      const opts = t.options?.length ? ` WITH (${t.options.join(", ")})` : "";
      tableText.push(`${head} (\n${lines.join(",\n")}\n)${opts};`);
    }
    section("Tables", tableText);

    const views = await q<{ name: string; kind: string; def: string }>(`
      SELECT c.relname AS name, c.relkind AS kind, pg_get_viewdef(c.oid, true) AS def
      FROM pg_class c WHERE c.relnamespace = ${ns} AND c.relkind IN ('v', 'm') ORDER BY c.relname`);
    section(
      "Views",
      views.map((v) => `CREATE ${v.kind === "m" ? "MATERIALIZED " : ""}VIEW ${ident(v.name)} AS\n${v.def.trimEnd()}`),
    );

    // Indexes that back a constraint are written with the constraint above.
    const indexes = await q<{ def: string }>(`
      SELECT pg_get_indexdef(i.indexrelid) AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relnamespace = ${ns} AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
      ORDER BY c.relname`);
    section(
      "Indexes",
      indexes.map((i) => `${i.def.replace(/ ON public\./, " ON ")};`),
    );

    const stats = await q<{ def: string }>(`
      SELECT pg_get_statisticsobjdef(oid) AS def FROM pg_statistic_ext WHERE stxnamespace = ${ns} ORDER BY stxname`);
    section(
      "Extended statistics",
      stats.map((s) => `${s.def};`),
    );

    const functions = await q<{ def: string }>(`
      SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p
      WHERE p.pronamespace = ${ns} AND p.prokind IN ('f', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
      ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`);
    section(
      "Functions",
      functions.map((f) => `${f.def.trimEnd()};`),
    );

    const triggers = await q<{ def: string }>(`
      SELECT pg_get_triggerdef(t.oid, true) AS def FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = ${ns} AND NOT t.tgisinternal ORDER BY c.relname, t.tgname`);
    section(
      "Triggers",
      triggers.map((t) => `${t.def};`),
    );

    const comments = await q<{ def: string }>(`
      SELECT format('COMMENT ON %s IS %L;',
               CASE WHEN d.objsubid = 0 THEN 'TABLE ' || quote_ident(c.relname) ELSE 'COLUMN ' || quote_ident(c.relname) || '.' || quote_ident(a.attname) END,
               d.description) AS def
      FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
      WHERE c.relnamespace = ${ns} ORDER BY c.relname, d.objsubid`);
    section(
      "Comments",
      comments.map((x) => x.def),
    );

    const header =
      `-- The schema that prisma/migrations/ make, read from PostgreSQL ${Math.floor(Number(version) / 10000)}'s catalog.\n` +
      `-- Generated by \`npm run db:schema\`; \`npm run db:schema:check\` (in .ci/run) fails when it differs. Do not edit by hand.\n`;
    // The renderings have no trailing blanks to keep; strip them so editors cannot make a diff.
    return `${header}\n${out.join("\n\n")}\n`.replace(/[ \t]+$/gm, "");
  } finally {
    await c.end();
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

/** Migrates a fresh database in a throwaway embedded PostgreSQL and dumps its schema. */
export async function schemaOfMigrations(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-schema-pg-"));
  const pgsrv = await startEmbedded({ dir, port: await freePort(), database: "schema", settings: { fsync: "off" } });
  try {
    await migrate(pgsrv.url, path.resolve("prisma/migrations"));
    return await dumpSchema(pgsrv.url);
  } finally {
    await pgsrv.stop("immediate");
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const check = process.argv.includes("--check");
  const fresh = await schemaOfMigrations();
  if (!check) {
    await writeFile(SNAPSHOT, fresh);
    console.log(`Wrote ${path.relative(process.cwd(), SNAPSHOT)}`);
    return;
  }
  const committed = await readFile(SNAPSHOT, "utf8").catch(() => "");
  if (committed === fresh) {
    console.log(`${path.relative(process.cwd(), SNAPSHOT)} matches the migrations.`);
    return;
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), "conveyor-schema-"));
  const made = path.join(tmp, "from-migrations.sql");
  await writeFile(made, fresh);
  const diff = spawnSync(
    "diff",
    ["-u", "--label", "prisma/schema.sql (committed)", "--label", "from prisma/migrations", SNAPSHOT, made],
    { encoding: "utf8" },
  );
  await rm(tmp, { recursive: true, force: true });
  console.error(diff.stdout || `${SNAPSHOT} is missing`);
  console.error(
    "prisma/schema.sql differs from what the migrations make. Run `npm run db:schema` and commit the result.",
  );
  process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
