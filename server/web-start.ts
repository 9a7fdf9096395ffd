// Start-up of the web process: validate the environment (a bad variable stops
// the server with a message naming it) and create the BOOTSTRAP_API_TOKEN
// token before the first request.
import { envOrExit } from "./env";
import { SecretKeyMismatch } from "./db/settings";
import { appDeps } from "./app";
import { ensureBootstrapToken } from "./auth/tokens";
import { ensureFirstAdmin } from "./auth/users";
import { startConfiguredTracing } from "./tracing-start";

export async function onWebStart() {
  const e = envOrExit();
  const deps = appDeps();
  await startConfiguredTracing(e, "conveyor-web", deps.log);
  // A web process with another key than the database's secrets would fail every signature: refuse to start.
  await deps.secretKey().catch((err) => {
    if (!(err instanceof SecretKeyMismatch)) return; // the database may not be up yet: /api/health says so
    console.error(err.message);
    process.exit(1);
  });
  try {
    if (e.BOOTSTRAP_API_TOKEN) await ensureBootstrapToken(deps.db, await deps.secretKey(), e.BOOTSTRAP_API_TOKEN);
    // The first admin from ADMIN_EMAIL/ADMIN_PASSWORD (npm start makes one with a generated password when they are unset).
    if (e.ADMIN_EMAIL && e.ADMIN_PASSWORD)
      await ensureFirstAdmin(deps.db, { email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD });
  } catch (err) {
    deps.log.error({ err }, "could not create the bootstrap token or the first admin");
  }
}
