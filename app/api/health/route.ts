import { appDeps } from "@/server/app";
import { healthResponse } from "@/server/health";

export const dynamic = "force-dynamic";

export const GET = () => healthResponse(appDeps().db);
