/**
 * How the console shows an id in a list: its last 8 hex digits. Ids are UUID v7 (./ids.ts), whose first digits
 * are the creation time, shared by every command of the same minute; the last ones are random. A text search
 * finds a command by them (it matches within the id).
 */
export function shortId(id: string): string {
  return id.slice(-8);
}
