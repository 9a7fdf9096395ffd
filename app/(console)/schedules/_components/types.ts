// The schedules page's data, as the router answers it (type-only: nothing of the server is bundled).
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

export type Schedule = inferRouterOutputs<AppRouter>["schedules"]["list"]["items"][number];

/** How often the list refetches, so that next and last runs stay fresh. */
export const REFRESH_MS = 5_000;
