import { createTrpcHandler } from "@/server/api/handler";
import { appDeps } from "@/server/app";

export const dynamic = "force-dynamic";

let handler: ((req: Request) => Promise<Response>) | undefined;
const handle = (req: Request) => (handler ??= createTrpcHandler(appDeps()))(req);

export { handle as GET, handle as POST };
