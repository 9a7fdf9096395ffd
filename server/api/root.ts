import { router } from "./trpc";
import { intakeRouter } from "./routers/intake";
import { tokensRouter } from "./routers/tokens";
import { commandsRouter } from "./routers/commands";
import { auditRouter, authRouter, usersRouter } from "./routers/users";
import { alertsRouter } from "./routers/alerts";
import { flowRouter } from "./routers/flow";
import { schedulesRouter } from "./routers/schedules";
import { batchesRouter } from "./routers/batches";

export const appRouter = router({
  intake: intakeRouter,
  tokens: tokensRouter,
  commands: commandsRouter,
  users: usersRouter,
  audit: auditRouter,
  auth: authRouter,
  alerts: alertsRouter,
  flow: flowRouter,
  schedules: schedulesRouter,
  batches: batchesRouter,
});
export type AppRouter = typeof appRouter;
