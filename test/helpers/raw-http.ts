// A raw HTTP/1.1 client on node:net, for what fetch hides: it can write a whole
// body before reading a byte of the answer (as most clients do), stop writing
// halfway, and report how the server closed the connection.
import net from "node:net";

type RawAnswer = {
  status: number;
  headers: Record<string, string>;
  body: string;
};

export type RawOutcome = {
  /** The answer, when a complete one arrived. */
  answer?: RawAnswer;
  /** The socket error met, if any (ECONNRESET, EPIPE…). */
  error?: string;
  /** Whether the connection was closed by the end (otherwise the caller's deadline passed first). */
  closed: boolean;
  /** Milliseconds from the first byte written to the close (or the deadline). */
  ms: number;
};

export type RawRequest = {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
  /** Declare this Content-Length but send only `body` (then keep the connection open without writing). */
  declaredLength?: number;
  /** true: read nothing until the whole body has been handed to the kernel. */
  writeFirst?: boolean;
  /** Give up waiting for the close after this long. */
  deadlineMs?: number;
  /** Write the request (line, headers and body) in pieces of this many bytes, each `pieceGapMs` after the last. */
  pieceBytes?: number;
  pieceGapMs?: number;
};

function parse(buf: Buffer): RawAnswer | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(statusLine!.split(" ")[1]);
  let rest = buf.subarray(end + 4);
  if (status === 100) return parse(rest);
  if (headers["transfer-encoding"] === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf("\r\n");
      if (eol < 0) return null;
      const size = parseInt(rest.subarray(0, eol).toString("latin1"), 16);
      if (rest.length < eol + 2 + size + 2) return null;
      if (size === 0) return { status, headers, body: Buffer.concat(parts).toString("utf8") };
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
  }
  const length = Number(headers["content-length"] ?? NaN);
  if (Number.isFinite(length))
    return rest.length >= length ? { status, headers, body: rest.subarray(0, length).toString("utf8") } : null;
  return null; // read to the close
}

/** Sends one request on a fresh connection and waits for the server to close it (or the deadline). */
export function rawRequest(baseUrl: string, r: RawRequest): Promise<RawOutcome> {
  const url = new URL(baseUrl);
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(Number(url.port), url.hostname);
    const received: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    const settle = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      const all = Buffer.concat(received);
      let answer = parse(all) ?? undefined;
      if (!answer && closed && all.indexOf("\r\n\r\n") >= 0) {
        // No length: the body runs to the close.
        const end = all.indexOf("\r\n\r\n");
        const head = parse(Buffer.concat([all.subarray(0, end), Buffer.from("\r\ncontent-length: 0\r\n\r\n")]));
        if (head) answer = { ...head, body: all.subarray(end + 4).toString("utf8") };
      }
      socket.destroy();
      resolve({ answer, error, closed, ms: performance.now() - started });
    };
    const deadline = setTimeout(() => settle(false), r.deadlineMs ?? 30_000);
    socket.on("data", (d) => received.push(d));
    socket.on("error", (e) => (error ??= (e as NodeJS.ErrnoException).code ?? e.message));
    socket.on("close", () => settle(true));
    if (r.writeFirst) socket.pause();

    const body = r.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { host: url.host, ...r.headers };
    if (r.chunked) headers["transfer-encoding"] = "chunked";
    else if (r.body || r.declaredLength !== undefined)
      headers["content-length"] = String(r.declaredLength ?? body.length);
    const head = `${r.method} ${r.path} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}\r\n`;
    const payload = r.chunked
      ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")])
      : body;
    const all = Buffer.concat([Buffer.from(head, "latin1"), payload]);
    const done = (err?: Error | null) => {
      if (err) error ??= (err as NodeJS.ErrnoException).code ?? err.message;
      if (r.writeFirst) socket.resume();
    };
    if (r.pieceBytes) {
      // Spaced out so that the server reads them one by one (there is no event for "the server has read it").
      const step = r.pieceBytes;
      const next = (at: number) => {
        if (at >= all.length || socket.destroyed) return done();
        socket.write(all.subarray(at, at + step), (err) =>
          err ? done(err) : setTimeout(() => next(at + step), r.pieceGapMs ?? 5),
        );
      };
      next(0);
    } else {
      // The callback runs once the kernel has taken every byte (or with the error that stopped it).
      socket.write(all, done);
    }
  });
}
