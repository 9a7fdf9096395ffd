// HTTP_ALLOWED_HOSTS (DESIGN §6): which hosts outbound requests may reach.
// Unset: any public address, but no loopback, private or link-local one
// (checked on the resolved addresses); a list: only those hosts (exact names,
// or patterns such as *.internal.example); "*": anything.
import { lookup } from "node:dns/promises";
import net from "node:net";

export class TargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetRefused";
  }
}

const blocked = new net.BlockList();
for (const [addr, prefix, type] of [
  ["0.0.0.0", 8, "ipv4"], ["10.0.0.0", 8, "ipv4"], ["100.64.0.0", 10, "ipv4"], ["127.0.0.0", 8, "ipv4"], ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"], ["192.0.0.0", 24, "ipv4"], ["192.168.0.0", 16, "ipv4"], ["198.18.0.0", 15, "ipv4"], ["224.0.0.0", 3, "ipv4"],
  ["::", 128, "ipv6"], ["::1", 128, "ipv6"], ["fc00::", 7, "ipv6"], ["fe80::", 10, "ipv6"], ["ff00::", 8, "ipv6"],
] as const) blocked.addSubnet(addr, prefix, type);
// (No ::ffff:0:0/96 rule: BlockList matches IPv4 addresses against IPv4-mapped rules, so it would block all
// of IPv4. IPv4-mapped IPv6 addresses are judged by the IPv4 address inside, below.)

export function isPublicAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return !blocked.check(mapped[1]!, "ipv4");
  // The same in hex, as the URL parser writes it: [::ffff:127.0.0.1] becomes [::ffff:7f00:1].
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const a = parseInt(hex[1]!, 16), b = parseInt(hex[2]!, 16);
    return !blocked.check(`${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`, "ipv4");
  }
  return !blocked.check(ip, net.isIPv6(ip) ? "ipv6" : "ipv4");
}

function matches(host: string, pattern: string): boolean {
  if (pattern === host) return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return false;
}

export function createUrlGuard(allowedHosts: string | undefined) {
  const patterns = (allowedHosts ?? "").split(",").map((p) => p.trim().toLowerCase()).filter(Boolean);
  const anything = patterns.includes("*");
  return async (url: string): Promise<void> => {
    if (anything) return;
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (patterns.length > 0) {
      if (!patterns.some((p) => matches(host, p))) throw new TargetRefused(`host ${host} is not in HTTP_ALLOWED_HOSTS`);
      return;
    }
    const addresses = net.isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
    const bad = addresses.find((a) => !isPublicAddress(a));
    if (bad) throw new TargetRefused(`host ${host} resolves to ${bad}, a loopback, private or link-local address; list it in HTTP_ALLOWED_HOSTS to allow it`);
  };
}
