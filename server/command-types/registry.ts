import type { CommandType } from "./types";
import { AppError, toIssues } from "../errors";

export type Registry = {
  get: (name: string) => CommandType<unknown> | undefined;
  names: () => string[];
  /** Validates a payload for a type; throws BAD_REQUEST naming the field. */
  validate: (type: string, payload: unknown) => unknown;
};

// Each type has its own payload type; `any` lets one list hold them all (each is used only with its own schema's output).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function createRegistry(types: CommandType<any>[]): Registry {
  const byName = new Map<string, CommandType<unknown>>();
  for (const t of types) {
    if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(t.name)) throw new Error(`Invalid command type name "${t.name}"`);
    if (byName.has(t.name)) throw new Error(`Command type "${t.name}" is registered twice`);
    byName.set(t.name, t as CommandType<unknown>);
  }
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    validate(type, payload) {
      const t = byName.get(type);
      if (!t) {
        throw new AppError("BAD_REQUEST", `Unknown command type "${type}"`, [
          { path: ["type"], message: `unknown command type "${type}"; known types: ${[...byName.keys()].join(", ")}` },
        ]);
      }
      const parsed = t.schema.safeParse(payload);
      if (!parsed.success) {
        const issues = toIssues(parsed.error.issues, ["payload"]);
        throw new AppError("BAD_REQUEST", `Invalid payload for type "${type}"`, issues);
      }
      return parsed.data;
    },
  };
}
