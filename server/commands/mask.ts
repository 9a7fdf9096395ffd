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

/**
 * A payload sent back as the console showed it (a schedule's, or a command's
 * in Edit & retry) keeps the stored secrets: a secret field whose new value
 * is the mask of the stored one is the stored one.
 */
export function keepMaskedSecrets(next: unknown, old: unknown, depth = 0): unknown {
  if (depth > 20 || next === null || typeof next !== "object" || old === null || typeof old !== "object") return next;
  if (Array.isArray(next))
    return Array.isArray(old) ? next.map((x, i) => keepMaskedSecrets(x, old[i], depth + 1)) : next;
  const o = old as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(next as Record<string, unknown>).map(([k, v]) => {
      const was = o[k];
      if (SECRET_FIELD.test(k) && typeof v === "string" && typeof was === "string")
        return [k, v === (maskSecrets({ [k]: was }) as Record<string, unknown>)[k] ? was : v];
      return [k, keepMaskedSecrets(v, was, depth + 1)];
    }),
  );
}
