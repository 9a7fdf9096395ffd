// The flow page's data, as the router answers it (type-only: nothing of the server is bundled).
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

type Out = inferRouterOutputs<AppRouter>["flow"];

export type FlowList = Out["list"];
export type ScopeItem = FlowList["scopes"][number];
export type Scope = ScopeItem["scope"];
export type Limit = NonNullable<ScopeItem["limit"]>;
export type BlockedKey = FlowList["blockedKeys"][number];
export type LimitInput = inferRouterInputs<AppRouter>["flow"]["setLimit"];
export type Role = "viewer" | "operator" | "admin";

/** How often the page refetches: traffic is flushed by the workers every 5 s. */
export const REFRESH_MS = 5_000;

export const scopeKind = (s: Scope): "type" | "host" => ("host" in s ? "host" : "type");
export const scopeName = (s: Scope) => ("host" in s ? s.host : s.type);
export const scopeLabel = (s: Scope) => `${scopeKind(s)} ${scopeName(s)}`;
export const scopeId = (s: Scope) => `${scopeKind(s)}:${scopeName(s)}`;

/** A limit in a few words: "≤ 4 in flight · 2.5/s, burst 3 · opens after 3 exceptions, 30 s". */
export function limitParts(l: Limit): string[] {
  const parts: string[] = [];
  if (l.concurrency !== undefined) parts.push(`≤ ${l.concurrency} in flight`);
  if (l.ratePerSecond !== undefined)
    parts.push(`${l.ratePerSecond}/s${l.burst !== undefined ? `, burst ${l.burst}` : ""}`);
  if (l.circuit?.threshold !== undefined || l.circuit?.cooldownSeconds !== undefined) {
    const c = [
      l.circuit.threshold !== undefined ? `opens after ${l.circuit.threshold}` : null,
      l.circuit.cooldownSeconds !== undefined ? `cooldown ${l.circuit.cooldownSeconds} s` : null,
    ].filter(Boolean);
    parts.push(`circuit: ${c.join(", ")}`);
  }
  return parts;
}
