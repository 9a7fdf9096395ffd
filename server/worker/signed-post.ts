// The signed POST of upstream callbacks and alert webhooks (DESIGN §3, §9): the
// JSON body signed in X-Conveyor-Signature (sha256=<HMAC-SHA256 of the body>),
// the target checked first (HTTP_ALLOWED_HOSTS), under a timeout, redirects not
// followed, the answer read and dropped. What to do with the outcome (record
// the try, when to try again) is the caller's.
import { signBody } from "../crypto";
import { refusedBy } from "../outbound/url-guard";
import { describeError, withTimeout } from "./attempt";

export type SignedPost = {
  url: string;
  /** The JSON text to send and sign. */
  body: string;
  /** The signing secret: read after the target's check, so a refused target needs none. */
  secret: () => string | Promise<string>;
  /** Beside content-type, the signature and user-agent. */
  headers: Record<string, string>;
  timeoutMs: number;
  checkUrl?: (url: string) => Promise<void>;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
};

/** error: null after a 2xx; refused: HTTP_ALLOWED_HOSTS (or the connection's own lookup) refused the target. */
export type PostOutcome = { status: number | null; error: string | null; refused: boolean };

export async function postSigned(p: SignedPost): Promise<PostOutcome> {
  try {
    await p.checkUrl?.(p.url);
    const secret = await p.secret();
    const res = await withTimeout(
      (signal) =>
        (p.fetch ?? fetch)(p.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-conveyor-signature": signBody(secret, p.body),
            "user-agent": "Conveyor",
            ...p.headers,
          },
          body: p.body,
          signal,
          redirect: "manual",
        }),
      p.timeoutMs,
      new AbortController().signal,
    );
    await res.arrayBuffer().catch(() => {});
    const ok = res.status >= 200 && res.status < 300;
    return { status: res.status, error: ok ? null : `HTTP ${res.status}`, refused: false };
  } catch (err) {
    const r = refusedBy(err);
    return { status: null, error: r ? r.message : describeError(err), refused: r !== null };
  }
}
