// What /api/ready checks in the database: every migration applied, and the
// worker's claim query able to run (a dry run that locks nothing).
import type { Db } from "./client";
import { withTransaction } from "./client";
import { CLAIMABLE_NOW } from "./claim";

export async function appliedMigrations(db: Db): Promise<string[]> {
  const { rows } = await db.pool.query<{ migration_name: string }>(
    `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  return rows.map((r) => r.migration_name);
}

export async function claimDryRun(db: Db): Promise<void> {
  await withTransaction(db, async (c) => {
    await c.query(`SET LOCAL statement_timeout = '2s'`);
    await c.query(
      `SELECT id FROM commands WHERE ${CLAIMABLE_NOW}
       ORDER BY priority DESC, run_at LIMIT 0 FOR UPDATE SKIP LOCKED`,
    );
  });
}
