// The commands list's data, as the router answers it (type-only: nothing of the server is bundled).
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

type Out = inferRouterOutputs<AppRouter>["commands"];

export type ListPage = Out["list"];
export type CommandRow = ListPage["items"][number];
export type Counts = Out["counts"];
