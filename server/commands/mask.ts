// Secrets in payloads (Authorization headers, tokens, passwords) are masked
// wherever the console or logs show a payload.
import { SECRET_FIELD } from "../lib/secret-fields";

export function maskSecrets(v: unknown, depth = 0): unknown {
  if (depth > 20 || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => maskSecrets(x, depth + 1));
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).map(([k, x]) => [
      k,
      SECRET_FIELD.test(k) && typeof x === "string" ? mask(x) : maskSecrets(x, depth + 1),
    ]),
  );
}

const mask = (s: string) =>
  s.length <= 8 ? "••••" : `${s.slice(0, s.indexOf(" ") > 0 && s.indexOf(" ") < 12 ? s.indexOf(" ") + 1 : 0)}••••`;
