// The REST facade of the intake API under `next dev` (server/web/main.ts serves
// the same handler before Next in production).
import { createRestFetchHandler } from "@/server/api/rest";
import { appDeps } from "@/server/app";

export const dynamic = "force-dynamic";

let handler: ((req: Request) => Promise<Response>) | undefined;
const handle = (req: Request) => (handler ??= createRestFetchHandler(appDeps()))(req);

export { handle as GET, handle as POST, handle as PUT, handle as PATCH, handle as DELETE };
