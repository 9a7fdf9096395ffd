// The payload schemas the console checks a payload with before it sends one
// (Edit & retry), by type: those of types whose schema lives in a
// browser-safe module (zod and the pure input helpers only; see
// .dependency-cruiser.cjs). A type left out here is checked by the server
// alone, whose issues the console shows at the field all the same. Each
// entry is the very object the registry validates with
// (test/unit/registry.test.ts holds them equal).
import type { z } from "zod";
import { httpPayload } from "./http-payload";

export const BROWSER_SCHEMAS: Readonly<Record<string, z.ZodType>> = { http: httpPayload };
