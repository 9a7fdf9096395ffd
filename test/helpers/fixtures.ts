// A command in every state, made through the allowed transitions.
import type { Db } from "../../server/db/client";
import type { State } from "../../server/engine/states";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { createUser, signIn, type Role } from "../../server/auth/users";
import { resolveSecretKey } from "../../server/db/settings";

const steps: Record<State, string[]> = {
  pending: [],
  running: ["running"],
  awaiting: ["running", "awaiting"],
  retrying: ["running", "retrying"],
  succeeded: ["running", "succeeded"],
  failed: ["running", "failed"],
  exception: ["running", "exception"],
  compensating: ["running", "succeeded", "compensating"],
  compensated: ["running", "succeeded", "compensating", "compensated"],
  cancelled: ["cancelled"],
};

export async function moveTo(db: Db, id: string, path: string[]) {
  for (const s of path) {
    const lease =
      s === "running"
        ? `lease_id = gen_random_uuid(), locked_by = 'fixture', locked_until = now() + interval '1 hour'`
        : `lease_id = NULL, locked_by = NULL, locked_until = NULL`;
    const extra =
      s === "compensating" ? `, phase = 'compensate'` : s === "exception" ? `, error = 'fixture: gave up'` : "";
    // Parked far in the future so that no worker would take them.
    await db.pool.query(
      `UPDATE commands SET status = $2::command_status, ${lease}, run_at = 'infinity' ${extra} WHERE id = $1`,
      [id, s],
    );
  }
}

export async function commandInEveryState(db: Db, clientId: string, prefix = "fx"): Promise<Record<State, string>> {
  const out = {} as Record<State, string>;
  for (const [state, path] of Object.entries(steps) as [State, string[]][]) {
    const { id } = await submit(directIntake(db, registry), clientId, {
      type: "http",
      idempotencyKey: `${prefix}-${state}`,
      payload: {
        url: `https://backend.example/${state}`,
        compensateUrl: "https://backend.example/undo",
        headers: { Authorization: "Bearer secret-value-123" },
      },
      runAt: "2999-01-01T00:00:00Z",
    });
    await moveTo(db, id, path);
    out[state] = id;
  }
  return out;
}

/** A user with a signed-in session; returns the Cookie header value. */
export async function userWithSession(db: Db, email: string, role: Role): Promise<{ cookie: string; id: string }> {
  const u = await createUser(db, { email, password: "correct horse battery staple", role });
  const { sessionToken } = await signIn(db, email, "correct horse battery staple");
  return { cookie: `conveyor_session=${sessionToken}`, id: u.id };
}

/** What createRule/updateRule need besides the input: the database's secret key (as a test worker resolves it). */
export const ruleSecrets = async (db: Db) => ({ key: await resolveSecretKey(db, undefined) });
