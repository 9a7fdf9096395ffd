import { v7 } from "uuid";

/**
 * A new command (or batch) id: a UUID v7 (RFC 9562), time-ordered, so each new command takes its entries
 * at the right edge of the primary key and of the attempts' key instead of on a random leaf of a
 * history-sized index. Random v4 ids made every insert dirty (and, after each checkpoint, write whole to
 * the WAL) one random page per index: ~1.1 full-page images per stored command with 10 million in history
 * (docs/operations.md §7.5). The 74 random bits keep ids unguessable; the first 48 are the creation time in
 * milliseconds, which `createdAt` already tells the same clients.
 */
export function newCommandId(): string {
  return v7();
}
