// What `npm start` prints. The web and worker processes log JSON lines (pino),
// which suits a log collector (`npm run web`, `npm run worker`) but buries a
// person at a terminal: here each JSON line becomes one short line (time,
// process, level, message, key fields); anything else passes through as it is.
// A status line (the countdown while stopping) stays below the other output.

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
// pino's own fields, and the worker's id (the process column says it already).
const OMIT = new Set(["level", "time", "pid", "hostname", "name", "msg", "v", "worker"]);
const MAX_VALUE = 160;

const clip = (s: string) => (s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s);

function value(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? clip(v) : clip(JSON.stringify(v));
  if (v === null || typeof v === "number" || typeof v === "boolean") return String(v);
  return clip(JSON.stringify(v) ?? String(v));
}

const hhmmss = (ms: number) => {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
};

type Paint = { dim: (s: string) => string; level: (level: number, s: string) => string };
const plain: Paint = { dim: (s) => s, level: (_, s) => s };
const ansi: Paint = {
  dim: (s) => `\x1b[2m${s}\x1b[22m`,
  level: (l, s) => (l >= 50 ? `\x1b[31m${s}\x1b[39m` : l >= 40 ? `\x1b[33m${s}\x1b[39m` : s),
};

/**
 * One line of a child's output as a person reads it. A pino JSON line becomes
 * `HH:MM:SS <process> <LEVEL> <message> key=value …` (an error's stack follows,
 * indented, at level error and above); any other line is returned with the
 * time and process in front.
 */
export function formatLogLine(
  line: string,
  processName: string,
  opts: { color?: boolean; now?: () => number } = {},
): string {
  const p = opts.color ? ansi : plain;
  const now = opts.now ?? Date.now;
  let rec: Record<string, unknown> | undefined;
  if (line.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed && typeof parsed === "object" && typeof (parsed as { level?: unknown }).level === "number")
        rec = parsed as Record<string, unknown>;
    } catch {
      // not JSON after all: shown as it is
    }
  }
  const who = processName.padEnd(6);
  if (!rec) return `${p.dim(hhmmss(now()))} ${who} ${line}`;

  const level = rec.level as number;
  const time = typeof rec.time === "number" ? rec.time : now();
  const parts: string[] = [];
  let stack: string | undefined;
  for (const [k, v] of Object.entries(rec)) {
    if (OMIT.has(k) || v === undefined) continue;
    if (k === "err" && v && typeof v === "object") {
      const e = v as { type?: string; message?: string; stack?: string };
      parts.push(`err=${value(`${e.type && e.type !== "Error" ? `${e.type}: ` : ""}${e.message ?? ""}`)}`);
      if (level >= 50 && typeof e.stack === "string")
        stack = e.stack
          .split("\n")
          .slice(1)
          .map((l) => `    ${l.trim()}`)
          .join("\n");
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  const msg = typeof rec.msg === "string" ? rec.msg : "";
  const name = typeof rec.name === "string" ? rec.name : processName;
  const head = `${p.dim(hhmmss(time))} ${name.padEnd(6)} ${p.level(level, (LEVELS[level] ?? String(level)).padEnd(5))} ${msg}`;
  const fields = parts.length ? `  ${p.dim(parts.join(" "))}` : "";
  return stack ? `${head}${fields}\n${p.dim(stack)}` : `${head}${fields}`;
}

/**
 * How to sign in, saying only what is known: the admin this start made (its
 * generated password, shown once, or ADMIN_PASSWORD), or else what an earlier
 * start made (`generated`: the admin@localhost account of a first start without
 * ADMIN_EMAIL, if there is one).
 */
export function signInHint(
  made: { email: string; password?: string } | null,
  generated: { email: string; passwordUnchanged: boolean; disabled: boolean } | null,
  o: { adminEmailSet: boolean },
): string {
  if (made?.password)
    return `Sign in as ${made.email} with password ${made.password} (shown once; you will be asked to change it)`;
  if (made) return `Sign in as ${made.email} with ADMIN_PASSWORD`;
  const also = o.adminEmailSet
    ? " ADMIN_EMAIL / ADMIN_PASSWORD made no account this time: they only make the first admin, and accounts exist already."
    : "";
  if (generated && !generated.disabled && generated.passwordUnchanged)
    return `Sign in as ${generated.email} with the password the first npm start generated and printed (not changed since).${also}`;
  if (generated)
    return `Sign in with your console account (the first admin, ${generated.email}, was made by the first npm start with a generated password).${also}`;
  return `Sign in with your console account.${also}`;
}

/** Splits a stream's chunks into whole lines (a line may arrive in pieces). */
export function lineSplitter(onLine: (line: string) => void) {
  let rest = "";
  return {
    push(chunk: Buffer | string) {
      const text = rest + chunk.toString();
      const lines = text.split("\n");
      rest = lines.pop()!;
      for (const l of lines) onLine(l.endsWith("\r") ? l.slice(0, -1) : l);
    },
    end() {
      if (rest) onLine(rest);
      rest = "";
    },
  };
}

type Out = { write: (s: string) => unknown; isTTY?: boolean };

/**
 * The terminal of `npm start`: lines, and one status line kept under them. On a
 * terminal the status line is redrawn in place; elsewhere (a file, a pipe) it
 * is printed as a line when its key changes or every `everyMs`.
 */
export function createTerminal(out: Out, err: Out = out, opts: { everyMs?: number; now?: () => number } = {}) {
  const tty = !!out.isTTY;
  const now = opts.now ?? Date.now;
  let status = "";
  let lastKey: unknown;
  let lastAt = 0;
  const clear = () => {
    if (tty && status) out.write("\r\x1b[K");
  };
  return {
    line(text: string, stream: "out" | "err" = "out") {
      clear();
      (stream === "err" ? err : out).write(`${text}\n`);
      if (tty && status) out.write(status);
    },
    /** Shows `text` as the status; `key` says when a non-terminal prints it again (e.g. the number waited for). */
    status(text: string, key?: unknown) {
      if (tty) {
        clear();
        status = text;
        out.write(text);
        return;
      }
      if (key !== lastKey || now() - lastAt >= (opts.everyMs ?? 5_000)) {
        out.write(`${text}\n`);
        lastKey = key;
        lastAt = now();
      }
    },
    clearStatus() {
      clear();
      status = "";
      lastKey = undefined;
    },
  };
}
