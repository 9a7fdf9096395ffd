// Which operator action applies to which command (DESIGN §4), and the words
// for why one does not. The actions (./actions.ts), their preview and the
// console's buttons all ask this module, so that what the console offers is
// what the server does. Pure: no server-only imports, so client components
// may import it too.
import type { State } from "./state";

export const ACTION_NAMES = ["retry", "compensate", "cancel", "resolve"] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

/** The states each action applies in. */
export const ACTION_FROM: Record<ActionName, readonly State[]> = {
  retry: ["failed", "exception", "cancelled"],
  compensate: ["succeeded", "failed", "exception"],
  cancel: ["pending", "retrying", "awaiting"],
  resolve: ["exception"],
};

/** "All that match this filter" is capped, so that one click cannot rewrite the whole table: an action takes the newest this many. */
export const MAX_ACTION_TARGETS = 10_000;

/** What an action needs to know about one command; `status` null: no such command. */
export type ActionSubject = { status: State | null; leased: boolean };

/** Why `action` does not apply to the command, or null when it does (the same words a skipped command gets). */
export function whyNot(action: ActionName, c: ActionSubject): string | null {
  if (c.status === null) return "no such command";
  if (c.leased) return `${c.status}: a worker is working on it right now`;
  if (!ACTION_FROM[action].includes(c.status)) return `${c.status}: ${action} applies only to ${ACTION_FROM[action].join(", ")} commands`;
  return null;
}
