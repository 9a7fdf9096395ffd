// The command types this deployment knows. To add one: write
// server/command-types/<name>.ts exporting a CommandType (see types.ts and
// http.ts), then add it to the list below.
import { createRegistry } from "./registry";
import { http } from "./http";

export const registry = createRegistry([http]);
