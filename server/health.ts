import { ping, type Db } from "./db/client";

/** GET /api/health: 200 when the database answers, 503 when it does not. */
export async function healthResponse(db: Db): Promise<Response> {
  const ok = await ping(db);
  return Response.json(
    { status: ok ? "ok" : "unavailable", database: ok ? "up" : "down" },
    { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } },
  );
}
