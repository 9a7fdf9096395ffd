// Start-up of the web process: validate the environment (a bad variable stops
// the server with a message naming it) and create the BOOTSTRAP_API_TOKEN
// token before the first request.
import { env } from "./env";
import { appDeps } from "./app";
import { ensureBootstrapToken } from "./auth/tokens";

export async function onWebStart() {
  try {
    env();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
  const deps = appDeps();
  const token = env().BOOTSTRAP_API_TOKEN;
  if (!token) return;
  try {
    await ensureBootstrapToken(deps.db, await deps.secretKey(), token);
  } catch (err) {
    deps.log.error({ err }, "could not create the BOOTSTRAP_API_TOKEN token");
  }
}
