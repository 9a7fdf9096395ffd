// Which payload fields hold secrets (Authorization headers, tokens, passwords):
// one list for the masking of what the console and logs show
// (server/commands/mask.ts) and for the text search, which must not find a
// command by a secret it would not show (server/db/command-filter.ts).
const SECRET_FIELD_NAMES =
  "authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|token|access[-_]?token|secret|password|client[-_]?secret";

/** Whether an object key names a secret (case-insensitive, the whole key). */
export const SECRET_FIELD = new RegExp(`^(${SECRET_FIELD_NAMES})$`, "i");

/**
 * A PostgreSQL regular expression (ARE) for `"<secret key>": "<string value>"`
 * in jsonb's text rendering (which always writes `": "` between key and value),
 * so that regexp_replace can blank the values before a search reads the text.
 */
export const SECRET_MEMBER_PG_RE = `"(${SECRET_FIELD_NAMES})": "(?:[^"\\\\]|\\\\.)*"`;
