// A real SMTP server on loopback (smtp-server) that parses what arrives (mailparser).
import { SMTPServer } from "smtp-server";
import { simpleParser, type ParsedMail } from "mailparser";
import type { AddressInfo } from "node:net";

export type Inbox = {
  port: number;
  url: string;
  mails: ParsedMail[];
  waitFor: (n: number, timeoutMs?: number) => Promise<ParsedMail[]>;
  close: () => Promise<void>;
};

export async function startSmtp(port = 0): Promise<Inbox> {
  const mails: ParsedMail[] = [];
  const waiters: (() => void)[] = [];
  // The built-in TLS certificate of smtp-server has expired: plain SMTP on loopback.
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    authOptional: true,
    logger: false,
    onData(stream, _session, cb) {
      simpleParser(stream)
        .then((m) => {
          mails.push(m);
          for (const w of waiters.splice(0)) w();
          cb();
        })
        .catch(cb);
    },
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  const actual = (server.server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `smtp://127.0.0.1:${actual}`,
    mails,
    waitFor: (n, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${n} mails, got ${mails.length}`)), timeoutMs);
        const check = () => (mails.length >= n ? (clearTimeout(timer), resolve(mails)) : waiters.push(check));
        check();
      }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
