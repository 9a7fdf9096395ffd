// The engine's groups of states (server/engine/states.ts) as SQL text, so that
// statements name a group instead of copying its list.
import type { State } from "../engine/states";

/** `('a', 'b')`: a group for `status IN …`. */
export const inList = (states: readonly State[]) => `(${states.map((s) => `'${s}'`).join(", ")})`;
