import { router } from "./trpc";
import { intakeRouter } from "./routers/intake";
import { tokensRouter } from "./routers/tokens";

export const appRouter = router({
  intake: intakeRouter,
  tokens: tokensRouter,
});
export type AppRouter = typeof appRouter;
