// A worker's traffic per scope (DESIGN §7, the /flow page): attempts,
// exceptions and attempts held back, counted in memory per (type, host) per
// minute and added to flow_traffic every few seconds (and on stop) in one
// statement, so that the hot path never writes for them. Upstream callbacks
// are not attempts on a counterpart and are not counted.
import type { Db } from "../db/client";
import type { Logger } from "../log";
import type { AttemptRecord } from "../engine/types";
import { addTraffic, type TrafficRow } from "../db/flow-traffic";
import type { Service } from "./service";

const FLUSH_MS = 5_000;
/** Counts kept for a database that does not answer: older minutes are dropped rather than kept forever. */
const KEEP_UNFLUSHED_MS = 24 * 3_600_000;

export type FlowTraffic = Service & {
  /** The attempts of one completion of `c`. */
  attempts(c: { type: string; targetHost: string | null }, records: readonly AttemptRecord[]): void;
  /** A claim unit held back `n` attempts it had room for (a limit, a pause, a circuit). */
  held(unit: { type: string; host: string | null }, n: number): void;
  /** Writes what was counted so far. */
  flush(): Promise<void>;
};

type Counts = { attempts: number; exceptions: number; held: number };

export function flowTraffic(o: { db: Db; log: Logger; everyMs?: number }): FlowTraffic {
  let counts = new Map<string, TrafficRow>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let flushing: Promise<void> = Promise.resolve();

  const add = (at: number, type: string, host: string | null, n: Partial<Counts>) => {
    const minute = Math.floor(at / 60_000) * 60_000;
    const h = host ?? "";
    const k = `${minute}\0${type}\0${h}`;
    let r = counts.get(k);
    if (!r) counts.set(k, (r = { minute: new Date(minute), type, host: h, attempts: 0, exceptions: 0, held: 0 }));
    r.attempts += n.attempts ?? 0;
    r.exceptions += n.exceptions ?? 0;
    r.held += n.held ?? 0;
  };

  const write = async () => {
    if (counts.size === 0) return;
    const taken = counts;
    counts = new Map();
    try {
      await addTraffic(o.db, [...taken.values()]);
    } catch (err) {
      // Kept for the next flush (added to what was counted since), unless too old to matter.
      const oldest = Date.now() - KEEP_UNFLUSHED_MS;
      for (const r of taken.values()) if (r.minute.getTime() >= oldest) add(r.minute.getTime(), r.type, r.host, r);
      o.log.warn({ err: String(err) }, "could not save the flow traffic; will try again");
    }
  };
  // One flush at a time: a slow one is not overtaken by the next tick.
  const flush = () => (flushing = flushing.then(write));

  return {
    name: "flow traffic",
    attempts(c, records) {
      for (const a of records) {
        if (a.kind === "callback") continue;
        add(a.startedAt.getTime(), c.type, c.targetHost, {
          attempts: 1,
          exceptions: a.outcome === "exception" ? 1 : 0,
        });
      }
    },
    held(unit, n) {
      if (n > 0) add(Date.now(), unit.type, unit.host, { held: n });
    },
    flush,
    start() {
      timer = setInterval(() => void flush(), o.everyMs ?? FLUSH_MS);
    },
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
