import { appDeps } from "@/server/app";
import { acceptInboundResult } from "@/server/commands/inbound";
import { answerWhileDiscarding, readLimited } from "@/server/api/handler";

export const dynamic = "force-dynamic";

/** Inbound result of an awaiting command (see server/commands/inbound.ts). */
export async function POST(req: Request, { params }: { params: Promise<{ id: string }> }) {
  const deps = appDeps();
  const declared = req.headers.get("content-length");
  // Bounded like the API roads: over MAX_BODY_BYTES the 413 is answered while the rest is read and discarded.
  const limited = req.body
    ? await readLimited(req.body, deps.maxBodyBytes, declared)
    : ({ ok: true, body: Buffer.alloc(0) } as const);
  if (!limited.ok) {
    const tooLarge = Response.json(
      { error: `body is larger than MAX_BODY_BYTES (${deps.maxBodyBytes} bytes)` },
      { status: 413, headers: { connection: "close" } },
    );
    return req.body ? answerWhileDiscarding(tooLarge, req.body, limited.read, declared) : tooLarge;
  }
  const { id } = await params;
  const r = await acceptInboundResult(
    deps.db,
    await deps.secretKey(),
    id,
    limited.body.toString("utf8"),
    req.headers.get("x-conveyor-signature"),
  );
  return Response.json(r.body, { status: r.status });
}
