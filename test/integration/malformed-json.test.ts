// A request body that is not JSON gets one clear message, whichever API it
// was sent to: "Malformed JSON in the request body: <the parser's detail>" on
// /api/trpc (direct road, batch, a query sent by POST) and on /api/v1, over
// real HTTP and through the fetch handlers behind the Next.js routes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { createTrpcHandler } from "../../server/api/handler";
import { createRestFetchHandler } from "../../server/api/rest";

let t: TestDb;
let api: ApiServer;
let token: string;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  token = (await newToken(t.db, "client")).token;
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;

/** JSON.parse's own words for a text, the detail both APIs quote. */
const detail = (text: string) => {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`${text} is JSON`);
};
const BODIES = ['{"type":"http","payload":', "nope", '{"type":"http",}', "{'type':'http'}"];

type Road = { label: string; send: (path: string, body: string) => Promise<Response> };
const overHttp: Road = {
  label: "over HTTP (the web process's listeners)",
  send: (path, body) =>
    fetch(`${api.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    }),
};
const throughFetchHandlers: Road = {
  label: "through the fetch handlers of the Next.js routes",
  send: (path, body) => {
    const req = new Request(`http://localhost${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    return path.startsWith("/api/trpc/") ? createTrpcHandler(api.deps)(req) : createRestFetchHandler(api.deps)(req);
  },
};

/** The message of an answer in either shape (a tRPC batch answers a list). */
async function messageOf(res: Response): Promise<string> {
  const body = (await res.json()) as any;
  return (Array.isArray(body) ? body[0] : body).error.message;
}

describe.each([overHttp, throughFetchHandlers])("$label", (road) => {
  it.each(BODIES)("answers %j with the same 400 and message on tRPC and REST, storing nothing", async (text) => {
    const expected = `Malformed JSON in the request body: ${detail(text)}`;
    const before = await countCommands();
    for (const path of [
      "/api/trpc/intake.submit",
      "/api/trpc/intake.submit?batch=1",
      "/api/trpc/intake.getMany",
      "/api/v1/commands",
      "/api/v1/commands/batch",
      "/api/v1/commands/get-many",
    ]) {
      const res = await road.send(path, text);
      expect(res.status, path).toBe(400);
      expect(await messageOf(res), path).toBe(expected);
    }
    expect(await countCommands()).toBe(before);
  });

  it("answers an empty body alike on both", async () => {
    for (const path of ["/api/trpc/intake.submit", "/api/v1/commands"]) {
      const res = await road.send(path, "");
      expect(res.status, path).toBe(400);
      expect(await messageOf(res), path).toBe("Send the input as a JSON request body");
    }
  });
});

it("still reads a tRPC body as Request.json() did (a leading byte order mark is dropped)", async () => {
  const res = await overHttp.send(
    "/api/trpc/intake.submit",
    '\uFEFF{"type":"http","payload":{"url":"https://backend.example/bom"}}',
  );
  expect(res.status).toBe(200);
});

it("names the input query parameter when a query's ?input= is not JSON", async () => {
  const res = await fetch(`${api.url}/api/trpc/intake.get?input=${encodeURIComponent('{"id":')}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(400);
  expect(await messageOf(res)).toBe(`Malformed JSON in the input query parameter: ${detail('{"id":')}`);
});
