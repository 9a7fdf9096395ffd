// The console's filter of commands (states, type, creation time, ordering key, batch, text search)
// as SQL conditions: shared by the lists, the counts and the operator actions'
// "all that match".
import { SECRET_MEMBER_PG_RE } from "../lib/secret-fields";
import type { State } from "../engine/states";

export type ListFilter = {
  status?: State[];
  type?: string;
  q?: string;
  createdAfter?: string;
  createdBefore?: string;
  /** DESIGN §7: the commands of this ordering key (of any client). */
  orderingKey?: string;
  /** DESIGN §8: the commands of this batch. */
  batchId?: string;
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A search of more words than this is read as one phrase (each word is one more pass over every text it reads). */
const MAX_SEARCH_WORDS = 8;
/** The words of a text search: each must occur in what SEARCH_TEXT reads (in any case, in any order). */
export function searchWords(q: string): string[] {
  const words = q.trim().split(/\s+/).filter(Boolean);
  return words.length > MAX_SEARCH_WORDS ? [q.trim()] : words;
}

/**
 * What a text search reads of a command: its id, idempotency key, payload,
 * failure and last error, in lower case. Not indexed: a trigram index over
 * it cost ~50 µs more per insert and ~60 µs more per completion (measured,
 * 100,000 rows), on the hottest paths there are; a page of search results
 * reads at most SEARCH_WINDOW commands instead (searchCommands).
 */
// Secret values in the payload are blanked first: a viewer must not find a command by a secret the console masks.
const SEARCHED_PAYLOAD = `regexp_replace(payload::text, '${SECRET_MEMBER_PG_RE}', '"\\1": ""', 'gi')`;
export const SEARCH_TEXT = `lower(id::text || ' ' || COALESCE(idempotency_key, '') || ' '
  || ${SEARCHED_PAYLOAD} || ' ' || COALESCE(failure::text, '') || ' ' || COALESCE(error, ''))`;

export const textMatch = (text: string, words: string[], p: (v: unknown) => string) =>
  words.map((w) => `strpos(${text}, lower(${p(w)}::text)) > 0`).join(" AND ");

/** SEARCH_TEXT before secrets are blanked: the same text without its regular expression (~5 µs a command). */
const UNMASKED_TEXT = `lower(id::text || ' ' || COALESCE(idempotency_key, '') || ' '
  || payload::text || ' ' || COALESCE(failure::text, '') || ' ' || COALESCE(error, ''))`;

/**
 * All the words in SEARCH_TEXT, tried first on the unmasked text: blanking a secret only takes characters out, so a
 * word found in SEARCH_TEXT is found in the unmasked text too, unless it spans a blanked value's two quotes (`""`).
 * The regular expression then runs only for the commands that may match, not for every command a search reads.
 */
export function searchMatch(words: string[], p: (v: unknown) => string): string {
  const masked = textMatch(SEARCH_TEXT, words, p);
  if (words.some((w) => w.includes('""'))) return masked;
  return `CASE WHEN ${textMatch(UNMASKED_TEXT, words, p)} THEN ${masked} ELSE false END`;
}

/** Conditions of the filter other than its text search. */
export function baseWhere(f: ListFilter, p: (v: unknown) => string): string[] {
  const parts: string[] = [];
  if (f.status?.length) parts.push(`status = ANY(${p(f.status)}::command_status[])`);
  if (f.type) parts.push(`type = ${p(f.type)}`);
  if (f.createdAfter) parts.push(`created_at >= ${p(f.createdAfter)}::timestamptz`);
  if (f.createdBefore) parts.push(`created_at < ${p(f.createdBefore)}::timestamptz`);
  if (f.orderingKey) parts.push(`ordering_key = ${p(f.orderingKey)}`);
  if (f.batchId) parts.push(`batch_id = ${p(f.batchId)}::uuid`);
  return parts;
}

export const pusher = (params: unknown[]) => (v: unknown) => (params.push(v), `$${params.length}`);

/**
 * The condition and parameters for a filter, text search included ("all that
 * match" reads the whole table): a command id finds that command; other text
 * finds the command with that idempotency key, and every command whose text
 * holds all the words.
 */
export function where(f: ListFilter, params: unknown[]): string {
  const p = pusher(params);
  const parts = baseWhere(f, p);
  const q = f.q?.trim();
  if (q) {
    if (UUID_RE.test(q)) parts.push(`id = ${p(q)}::uuid`);
    else parts.push(`(idempotency_key = ${p(q)} OR (${searchMatch(searchWords(q), p)}))`);
  }
  return parts.join(" AND ");
}

/** A text search (not a command id)? Those go through searchCommands. */
export const isTextSearch = (f: ListFilter) => !!f.q?.trim() && !UUID_RE.test(f.q.trim());
