// Starts one real PostgreSQL for the whole run (embedded, unless
// TEST_DATABASE_URL points at a server), migrates a template database once,
// and hands its admin URL to the test files, which clone the template.
import type { TestProject } from "vitest/node";
import os from "node:os";
import path from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import pg from "pg";
import { startEmbedded, type EmbeddedPostgres } from "../server/db/embedded";
import { migrate } from "../server/db/migrate";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

export default async function setup(project: TestProject) {
  let embedded: EmbeddedPostgres | undefined;
  let dir: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    // The postgres user must be able to enter the folder: /tmp is world-enterable.
    dir = await mkdtemp(path.join(os.tmpdir(), "conveyor-test-pg-"));
    embedded = await startEmbedded({
      dir,
      port: await freePort(),
      database: "postgres",
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
    });
    adminUrl = embedded.adminUrl;
  }
  const template = `conveyor_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  await migrate(withDatabase(adminUrl, template), path.resolve("prisma/migrations"));
  project.provide("pgAdminUrl", adminUrl);
  project.provide("templateDb", template);

  return async () => {
    if (embedded) await embedded.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, db: string) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}
