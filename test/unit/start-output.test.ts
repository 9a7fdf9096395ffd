// What `npm start` prints of its children's output (scripts/start-output.ts):
// pino's JSON lines as short readable lines, other lines as they are, and a
// status line that stays under them.
import { describe, expect, it } from "vitest";
import pino from "pino";
import { Writable } from "node:stream";
import { createTerminal, formatLogLine, lineSplitter, signInHint } from "../../scripts/start-output";

/** Lines exactly as the web and worker processes write them (server/log.ts uses pino with its defaults). */
function pinoLines(write: (log: pino.Logger) => void): string[] {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  write(pino({ name: "worker" }, sink).child({ worker: "vm:4242" }));
  return lines;
}

const at = (h: number, m: number, s: number) => new Date(2026, 11, 2, h, m, s).getTime();

describe("formatLogLine", () => {
  it("turns a pino line into time, process, level, message and key fields", () => {
    const [line] = pinoLines((log) =>
      log.info({ concurrency: 10, types: ["http"], email: "not configured (SMTP_URL unset)" }, "worker started"),
    );
    const rec = JSON.parse(line!);
    const out = formatLogLine(JSON.stringify({ ...rec, time: at(9, 5, 7) }), "worker");
    expect(out).toBe(
      `09:05:07 worker INFO  worker started  concurrency=10 types=["http"] email="not configured (SMTP_URL unset)"`,
    );
    // none of pino's bookkeeping: pid, hostname, the worker id (the process column says it)
    expect(out).not.toMatch(/pid|hostname|vm:4242|"level"/);
  });

  it("shows warnings and errors with their level, the error's message, and the stack only for errors", () => {
    const [warn, error] = pinoLines((log) => {
      log.warn({ command: "3f0c", error: "HTTP 503" }, "upstream callback failed; will retry");
      log.error({ err: new TypeError("boom") }, "claim failed; retrying");
    });
    expect(formatLogLine(warn!, "worker")).toMatch(
      /^\d\d:\d\d:\d\d worker WARN  upstream callback failed; will retry  command=3f0c error="HTTP 503"$/,
    );
    const e = formatLogLine(error!, "worker").split("\n");
    expect(e[0]).toMatch(/^\d\d:\d\d:\d\d worker ERROR claim failed; retrying  err="TypeError: boom"$/);
    expect(e[1]).toMatch(/^ {4}at /); // the stack, indented under it
  });

  it("keeps long values short", () => {
    const out = formatLogLine(
      JSON.stringify({ level: 30, time: at(1, 2, 3), name: "web", msg: "m", body: "x".repeat(1000) }),
      "web",
    );
    expect(out.length).toBeLessThan(200);
    expect(out).toMatch(/…"?$/);
  });

  it("passes any other line through, with the time and the process in front", () => {
    const now = () => at(12, 0, 1);
    expect(formatLogLine("✓ Running next.config.ts took 64ms", "web", { now })).toBe(
      "12:00:01 web    ✓ Running next.config.ts took 64ms",
    );
    expect(formatLogLine("{not json", "web", { now })).toBe("12:00:01 web    {not json");
    expect(formatLogLine('{"a":1}', "web", { now })).toBe('12:00:01 web    {"a":1}'); // JSON, but not a log record
  });

  it("colours the level only when asked (a terminal)", () => {
    const line = JSON.stringify({ level: 50, time: at(1, 2, 3), name: "web", msg: "procedure failed" });
    expect(formatLogLine(line, "web")).not.toContain("\x1b[");
    expect(formatLogLine(line, "web", { color: true })).toContain("\x1b[31mERROR\x1b[39m");
  });
});

describe("lineSplitter", () => {
  it("puts lines split across chunks back together", () => {
    const got: string[] = [];
    const s = lineSplitter((l) => got.push(l));
    s.push('{"level":30,"ms');
    s.push('g":"a"}\r\nsecond\nthi');
    s.push("rd");
    expect(got).toEqual(['{"level":30,"msg":"a"}', "second"]);
    s.end();
    expect(got).toEqual(['{"level":30,"msg":"a"}', "second", "third"]);
  });
});

describe("createTerminal", () => {
  const sink = (isTTY: boolean) => {
    const out = { text: "", isTTY, write: (s: string) => (out.text += s) };
    return out;
  };

  it("on a terminal, redraws the status in place and keeps it under new lines", () => {
    const out = sink(true);
    const t = createTerminal(out);
    t.status("waiting … 18 s");
    t.status("waiting … 17 s");
    t.line("a log line");
    t.clearStatus();
    expect(out.text).toBe("waiting … 18 s\r\x1b[Kwaiting … 17 s\r\x1b[Ka log line\nwaiting … 17 s\r\x1b[K");
  });

  it("elsewhere, prints the status as a line when its key changes or every few seconds", () => {
    const out = sink(false);
    let clock = 0;
    const t = createTerminal(out, out, { everyMs: 5_000, now: () => clock });
    t.status("2 in flight … 18 s", 2);
    clock = 1000;
    t.status("2 in flight … 17 s", 2); // same key, too soon: not printed
    clock = 2000;
    t.status("1 in flight … 16 s", 1);
    clock = 7000;
    t.status("1 in flight … 11 s", 1);
    expect(out.text).toBe("2 in flight … 18 s\n1 in flight … 16 s\n1 in flight … 11 s\n");
  });
});

describe("signInHint", () => {
  const gen = (passwordUnchanged: boolean, disabled = false) => ({
    email: "admin@localhost",
    passwordUnchanged,
    disabled,
  });

  it("on the first start, gives the generated password or names ADMIN_PASSWORD", () => {
    expect(signInHint({ email: "admin@localhost", password: "pw-123" }, null, { adminEmailSet: false })).toBe(
      "Sign in as admin@localhost with password pw-123 (shown once; you will be asked to change it)",
    );
    expect(signInHint({ email: "ops@example.com" }, null, { adminEmailSet: true })).toBe(
      "Sign in as ops@example.com with ADMIN_PASSWORD",
    );
  });

  it("on a restart, never claims that ADMIN_EMAIL / ADMIN_PASSWORD made the first admin", () => {
    const hints = [
      signInHint(null, gen(true), { adminEmailSet: false }),
      signInHint(null, gen(false), { adminEmailSet: false }),
      signInHint(null, null, { adminEmailSet: false }),
      signInHint(null, gen(true), { adminEmailSet: true }),
      signInHint(null, null, { adminEmailSet: true }),
    ];
    for (const h of hints) expect(h).not.toMatch(/ADMIN_PASSWORD made the first admin/);
    expect(hints[0]).toBe(
      "Sign in as admin@localhost with the password the first npm start generated and printed (not changed since).",
    );
    expect(hints[1]).toBe(
      "Sign in with your console account (the first admin, admin@localhost, was made by the first npm start with a generated password).",
    );
    expect(hints[2]).toBe("Sign in with your console account.");
    expect(hints[4]).toBe(
      "Sign in with your console account. ADMIN_EMAIL / ADMIN_PASSWORD made no account this time: they only make the first admin, and accounts exist already.",
    );
    // a disabled admin@localhost is not offered as the way in
    expect(signInHint(null, gen(true, true), { adminEmailSet: false })).toMatch(
      /^Sign in with your console account \(the first admin/,
    );
  });
});
