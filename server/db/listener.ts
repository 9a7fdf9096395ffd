// One LISTEN connection per process, reconnecting with backoff when the
// database goes away. Subscribers are told when it (re)connects, since
// notifications sent while it was down are lost and must be made up for.
import pg from "pg";

type Handler = (payload: string) => void;

export type Listener = {
  on: (channel: string, fn: Handler) => void;
  onConnect: (fn: () => void) => void;
  onDisconnect: (fn: () => void) => void;
  readonly connected: boolean;
  close: () => Promise<void>;
};

export function startListener(
  connectionString: string,
  opts: { applicationName?: string; log?: (msg: string, err?: unknown) => void } = {},
): Listener {
  const handlers = new Map<string, Set<Handler>>();
  const connectFns = new Set<() => void>();
  const disconnectFns = new Set<() => void>();
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let listening: Promise<unknown> = Promise.resolve();

  const lost = () => {
    if (connected) for (const fn of disconnectFns) fn();
    connected = false;
    client = undefined;
    if (closed) return;
    const delay = Math.min(10_000, 100 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    timer = setTimeout(connect, delay);
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({
      connectionString,
      application_name: opts.applicationName ?? "conveyor-listen",
      keepAlive: true,
    });
    c.on("error", (err) => opts.log?.("listener connection error", err));
    c.on("end", () => c === client && lost());
    c.on("notification", (n) => {
      for (const fn of handlers.get(n.channel) ?? []) fn(n.payload ?? "");
    });
    try {
      await c.connect();
      for (const ch of handlers.keys()) await c.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
      client = c;
      connected = true;
      attempt = 0;
      for (const fn of connectFns) fn();
    } catch (err) {
      opts.log?.("listener could not connect", err);
      await c.end().catch(() => {});
      if (c !== client) lost();
    }
  };

  setImmediate(connect);
  return {
    on(channel, fn) {
      if (!handlers.has(channel)) {
        handlers.set(channel, new Set());
        // One query at a time on the connection (services subscribe one after another at start).
        const c = client;
        if (c) listening = listening.then(() => c.query(`LISTEN ${pg.escapeIdentifier(channel)}`)).catch(() => {});
      }
      handlers.get(channel)!.add(fn);
    },
    onConnect: (fn) => void connectFns.add(fn),
    onDisconnect: (fn) => void disconnectFns.add(fn),
    get connected() {
      return connected;
    },
    close: async () => {
      closed = true;
      clearTimeout(timer);
      connected = false;
      await client?.end().catch(() => {});
    },
  };
}
