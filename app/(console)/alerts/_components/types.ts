// The alerts page's data, as the router answers it (type-only: nothing of the server is bundled).
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

type Out = inferRouterOutputs<AppRouter>["alerts"];

export type Rule = Out["listRules"]["items"][number];
export type RuleKind = Rule["kind"];
export type RuleEmail = Rule["email"];
export type RuleChannel = Rule["channels"][number];
export type HistoryItem = Out["history"]["items"][number];
type Delivery = HistoryItem["deliveries"][number];
export type DeliveryStatus = Delivery["status"];
export type RuleUpdate = inferRouterInputs<AppRouter>["alerts"]["updateRule"];

/** How often the rules and the history refetch, so that firing states stay fresh. */
export const REFRESH_MS = 5_000;
