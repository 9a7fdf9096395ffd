// Which operator action applies to which command (DESIGN §4), and the words
// for why one does not. The actions (server/commands/actions.ts), their
// preview and the console's buttons all ask this module, so that what the
// console offers is what the server does. Dependency-free, so client
// components may import it too.
import { AT_REST, CLAIMABLE, canTransition, type State } from "./states";

export const ACTION_NAMES = ["retry", "compensate", "cancel", "resolve", "editAndRetry"] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

/** The outcomes an operator may record by hand (resolve). */
export const RESOLVE_OUTCOMES = ["succeeded", "failed"] as const satisfies readonly State[];
export type ResolveOutcome = (typeof RESOLVE_OUTCOMES)[number];

/**
 * The states each action applies in: those with the transition it makes.
 * Retry runs a command at rest again (pending); compensate undoes one at rest;
 * cancel stops one waiting for a worker, before compensation (a claimed one is
 * leased, and skipped); resolve records the outcome of one that could not tell.
 * Edit & retry is a retry with a corrected payload: the same states.
 */
export const ACTION_FROM: Record<ActionName, readonly State[]> = {
  retry: AT_REST.filter((s) => canTransition(s, "pending")),
  compensate: AT_REST.filter((s) => canTransition(s, "compensating")),
  cancel: CLAIMABLE.filter((s) => canTransition(s, "cancelled")),
  resolve: AT_REST.filter((s) => RESOLVE_OUTCOMES.every((o) => canTransition(s, o))),
  editAndRetry: AT_REST.filter((s) => canTransition(s, "pending")),
};

/** How the reasons name an action: its procedure's name, but "edit & retry" as the console's button says it. */
export const actionWords = (a: ActionName) => (a === "editAndRetry" ? "edit & retry" : a);

/** "All that match this filter" is capped, so that one click cannot rewrite the whole table: an action takes the newest this many. */
export const MAX_ACTION_TARGETS = 10_000;

/** What an action needs to know about one command; `status` null: no such command. */
export type ActionSubject = { status: State | null; leased: boolean };

/** Why `action` does not apply to the command, or null when it does (the same words a skipped command gets). */
export function whyNot(action: ActionName, c: ActionSubject): string | null {
  if (c.status === null) return "no such command";
  if (c.leased) return `${c.status}: a worker is working on it right now`;
  if (!ACTION_FROM[action].includes(c.status))
    return `${c.status}: ${actionWords(action)} applies only to ${ACTION_FROM[action].join(", ")} commands`;
  return null;
}
