// HTTP_ALLOWED_HOSTS (DESIGN §6): which hosts outbound requests may reach.
// Unset: any public address, but no loopback, private or link-local one
// (checked on the resolved addresses); a list: only those hosts (exact names,
// or patterns such as *.internal.example); "*": anything.
import dns from "node:dns";
import net from "node:net";
import { Agent, fetch as undiciFetch, request as undiciRequest } from "undici";

export class TargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetRefused";
  }
}

const blocked = new net.BlockList();
for (const [addr, prefix, type] of [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["224.0.0.0", 3, "ipv4"],
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"],
] as const)
  blocked.addSubnet(addr, prefix, type);
// (No ::ffff:0:0/96 rule: BlockList matches IPv4 addresses against IPv4-mapped rules, so it would block all
// of IPv4. IPv4-mapped IPv6 addresses are judged by the IPv4 address inside, below.)

export function isPublicAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return !blocked.check(mapped[1]!, "ipv4");
  // The same in hex, as the URL parser writes it: [::ffff:127.0.0.1] becomes [::ffff:7f00:1].
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const a = parseInt(hex[1]!, 16),
      b = parseInt(hex[2]!, 16);
    return !blocked.check(`${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`, "ipv4");
  }
  return !blocked.check(ip, net.isIPv6(ip) ? "ipv6" : "ipv4");
}

function matches(host: string, pattern: string): boolean {
  if (pattern === host) return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return false;
}

export type Resolve = (host: string) => Promise<{ address: string; family: number }[]>;
const systemResolve: Resolve = (host) => dns.promises.lookup(host, { all: true });

const refusal = (host: string, address: string) =>
  new TargetRefused(
    `host ${host} resolves to ${address}, a loopback, private or link-local address; list it in HTTP_ALLOWED_HOSTS to allow it`,
  );

const parse = (allowedHosts: string | undefined) => {
  const patterns = (allowedHosts ?? "")
    .split(",")
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  return { patterns, anything: patterns.includes("*") };
};

/** The host of a URL as HTTP_ALLOWED_HOSTS names hosts: lower case, an IPv6 address without its brackets. */
const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase();

/**
 * With an explicit list of hosts, the check of a URL's host against it: the
 * reason it is refused, or null when it is listed. Without a list (unset:
 * address-based rules, applied when connecting; "*": anything) there is
 * nothing to check a name against: null. The workers refuse with this before
 * every request; intake uses it to refuse such a URL at submit.
 */
export function createHostListCheck(allowedHosts: string | undefined): ((url: string) => string | null) | null {
  const { patterns, anything } = parse(allowedHosts);
  if (anything || patterns.length === 0) return null;
  return (url) => {
    const host = hostOf(url);
    return patterns.some((p) => matches(host, p)) ? null : `host ${host} is not in HTTP_ALLOWED_HOSTS`;
  };
}

/** Checks a URL before a request (a clear, early refusal). `resolve` is for tests. */
export function createUrlGuard(allowedHosts: string | undefined, resolve: Resolve = systemResolve) {
  const { anything } = parse(allowedHosts);
  const listCheck = createHostListCheck(allowedHosts);
  return async (url: string): Promise<void> => {
    if (anything) return;
    if (listCheck) {
      const refused = listCheck(url);
      if (refused) throw new TargetRefused(refused);
      return;
    }
    const host = hostOf(url);
    const addresses = net.isIP(host) ? [host] : (await resolve(host)).map((a) => a.address);
    const bad = addresses.find((a) => !isPublicAddress(a));
    if (bad) throw refusal(host, bad);
  };
}

/** An answer of the outbound client: what the http type reads (status, a header, the body as text). */
export type OutboundAnswer = { status: number; header(name: string): string | null; text(): Promise<string> };
export type OutboundRequestInit = {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
};
/**
 * The outbound client of the http type: undici's request on the same
 * connection pool and lookup as the fetch beside it. Node's fetch spends most
 * of an http command's worker CPU in its WHATWG layers (Request, Headers,
 * Response, web streams); this reads what the type needs and nothing more.
 * Redirects are never followed (request does not follow them).
 */
export type OutboundRequest = (url: string, init: OutboundRequestInit) => Promise<OutboundAnswer>;

/** fetch for command types and senders, with the http type's faster client on the same dispatcher. */
export type OutboundFetch = ((url: string, init: RequestInit) => Promise<Response>) & {
  readonly request: OutboundRequest;
};

function requestThrough(dispatcher: Agent): OutboundRequest {
  return async (url, init) => {
    const res = await undiciRequest(url, {
      method: init.method as "GET",
      headers: init.headers,
      body: init.body,
      signal: init.signal,
      dispatcher,
    });
    const headers = res.headers;
    return {
      status: res.statusCode,
      header(name) {
        const v = headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
      text: () => res.body.text(),
    };
  };
}

/** The pool of outbound connections when names need no check at connection time (a list, or "*"). */
let plainAgent: Agent | undefined;
const plain = () => (plainAgent ??= new Agent());
let plainRequest: OutboundRequest | undefined;
/** The client without a lookup of its own, as the global fetch connects: for a list, "*", or no outbound fetch given. */
export const defaultOutboundRequest: OutboundRequest = (url, init) =>
  (plainRequest ??= requestThrough(plain()))(url, init);

/**
 * The fetch for outbound requests. With HTTP_ALLOWED_HOSTS unset, the
 * addresses are checked inside the connection's own DNS lookup, so the
 * address checked is the address connected to: a name that resolves to a
 * public address for the check and to a private one a moment later (DNS
 * rebinding) is refused. Redirects are never followed (callers pass
 * redirect: "manual"). With a list or "*", no lookup of our own (names are
 * what the list allows). Its `request` uses the same connections and lookup.
 */
export function createOutboundFetch(
  allowedHosts: string | undefined,
  resolve: Resolve = systemResolve,
  allowed: (ip: string) => boolean = isPublicAddress,
): OutboundFetch {
  const { patterns, anything } = parse(allowedHosts);
  if (anything || patterns.length > 0) {
    return Object.assign((url: string, init: RequestInit) => fetch(url, init), { request: defaultOutboundRequest });
  }
  const lookup = (
    hostname: string,
    options: dns.LookupOptions,
    callback: (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void,
  ) => {
    resolve(hostname).then(
      (addresses) => {
        const bad = addresses.find((a) => !allowed(a.address));
        if (bad) return callback(refusal(hostname, bad.address), "");
        const wanted =
          options.family === 4 || options.family === 6
            ? addresses.filter((a) => a.family === options.family)
            : addresses;
        if (wanted.length === 0)
          return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "");
        if (options.all) callback(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: Error) => callback(err, ""),
    );
  };
  const dispatcher = new Agent({ connect: { lookup: lookup as never } });
  return Object.assign(
    (url: string, init: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    { request: requestThrough(dispatcher) },
  );
}

/** The refusal inside a fetch error (fetch wraps connection errors in its cause), if that is what it was. */
export function refusedBy(err: unknown): TargetRefused | null {
  if (err instanceof TargetRefused) return err;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof TargetRefused ? cause : null;
}
