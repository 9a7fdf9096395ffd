import { appDeps } from "@/server/app";
import { acceptInboundResult } from "@/server/commands/inbound";

export const dynamic = "force-dynamic";

/** Inbound result of an awaiting command (see server/commands/inbound.ts). */
export async function POST(req: Request, { params }: { params: Promise<{ id: string }> }) {
  const deps = appDeps();
  const raw = await req.text();
  if (raw.length > deps.maxBodyBytes) return Response.json({ error: "body too large" }, { status: 413 });
  const { id } = await params;
  const r = await acceptInboundResult(deps.db, await deps.secretKey(), id, raw, req.headers.get("x-conveyor-signature"));
  return Response.json(r.body, { status: r.status });
}
