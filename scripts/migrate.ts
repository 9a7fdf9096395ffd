// `npm run migrate`: applies pending migrations to DATABASE_URL.
import { parseEnv, EnvError } from "../server/env";
import { migrate } from "../server/db/migrate";

try {
  const env = parseEnv();
  if (!env.DATABASE_URL)
    throw new EnvError(
      "DATABASE_URL is not set: `npm run migrate` needs the database to migrate (npm start migrates its embedded one itself).",
    );
  const r = await migrate(env.DATABASE_URL);
  console.log(
    r.applied.length ? `Applied ${r.applied.join(", ")}` : "Database is up to date",
    `(${r.alreadyApplied} already applied)`,
  );
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
