// The published form of @conveyor/client: `npm pack ./packages/client` from
// the repository root (its prepack builds it), installed into an empty folder
// (offline: the package has no dependencies), imported from plain Node ESM
// against a running Conveyor, and type-checked there by tsc.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";

const run = promisify(execFile);
const root = path.resolve(".");
const tsc = path.join(root, "node_modules/.bin/tsc");
// Child processes without the test runner's loader hooks.
const env = { ...process.env, NODE_OPTIONS: "", npm_config_audit: "false", npm_config_fund: "false" };

let t: TestDb;
let api: ApiServer;
let tmp: string;
let app: string;
let packed: { filename: string; files: { path: string }[] };

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  tmp = await mkdtemp(path.join(os.tmpdir(), "conveyor-sdk-pack-"));
  const { stdout } = await run("npm", ["pack", "./packages/client", "--pack-destination", tmp, "--json"], {
    cwd: root,
    env,
  });
  packed = JSON.parse(stdout)[0];
  app = path.join(tmp, "app");
  await mkdir(app);
  await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  await run("npm", ["install", "--offline", path.join(tmp, packed.filename)], { cwd: app, env });
}, 180_000);

afterAll(async () => {
  await api?.close();
  await t?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const CONSUMER_TS = `
import { Conveyor, ConveyorError, verifyRequest, isBatchView, type CommandView, type State, type SubmitInput } from "@conveyor/client";

const sdk = new Conveyor({ url: "http://localhost:3000", token: "cvy_x", retry: { attempts: 3 } });

export async function order(): Promise<State> {
  const input: SubmitInput = { type: "http", payload: { url: "https://payments.internal/charge" }, priority: 5 };
  const { id, duplicate } = await sdk.submit(input);
  const http = await sdk.submit({ type: "http", payload: { url: "https://x.example/", method: "PUT", timeoutMs: 500 } });
  const batch = await sdk.submitBatch([input], { batch: { name: "nightly" } });
  for (const r of batch.receipts) if (!r.ok) console.log(r.error.code, r.error.issues?.[0]?.path);
  const progress = batch.batchId ? await sdk.getBatch(batch.batchId) : null;
  const many: CommandView[] = (await sdk.getMany([id, http.id])).items;
  const view = await sdk.waitFor(id, { timeoutMs: 60_000, signal: AbortSignal.timeout(90_000) });
  console.log(duplicate, progress?.counts.succeeded, many.length, view.finishedAt?.toUpperCase());
  return view.status;
}

export async function POST(request: Request): Promise<Response> {
  try {
    const body = await verifyRequest(request, "whsec_x");
    return Response.json(isBatchView(body) ? { batch: body.done } : { command: body.status });
  } catch (err) {
    if (err instanceof ConveyorError && err.code === "INVALID_SIGNATURE") return new Response(null, { status: 401 });
    throw err;
  }
}
`;

const WRONG_TS = `
import { Conveyor, type State } from "@conveyor/client";
const sdk = new Conveyor({ url: "http://localhost:3000", token: "cvy_x" });
export const s: State = "done";
export const r = sdk.submit({ type: "http" });
export const v = sdk.get(42);
export const w = sdk.submit({ type: "http", payload: { url: 1 } });
export const b = sdk.submitBatch([{ type: "mine", payload: 1 }, { type: "http", payload: { method: "GET" } }]);
`;

async function typecheck(file: string, moduleResolution: "NodeNext" | "Bundler") {
  const config = path.join(app, `tsconfig.${moduleResolution}.json`);
  await writeFile(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "ES2022",
        lib: ["ES2022", "DOM"],
        module: moduleResolution === "NodeNext" ? "NodeNext" : "ESNext",
        moduleResolution,
        types: [],
        noEmit: true,
      },
      files: [file],
    }),
  );
  return run(tsc, ["-p", config], { cwd: app, env }).then(
    () => ({ ok: true, out: "" }),
    (e: { stdout: string }) => ({ ok: false, out: e.stdout }),
  );
}

describe("npm pack ./packages/client", () => {
  it("packs the build, the README and the manifest, with no runtime dependency", async () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("README.md");
    expect(files.filter((f) => !f.startsWith("dist/"))).toEqual(["README.md", "package.json"]);
    const manifest = JSON.parse(await readFile(path.join(app, "node_modules/@conveyor/client/package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@conveyor/client", type: "module" });
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.peerDependencies).toBeUndefined();
  });

  it("is imported from plain Node ESM and talks to Conveyor", async () => {
    const secret = "whsec_packed";
    const body = '{"id":"x","status":"succeeded"}';
    const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    await writeFile(
      path.join(app, "check.mjs"),
      `import { Conveyor, ConveyorError, verifySignature } from "@conveyor/client";
const [url, token, secret, body, signature] = process.argv.slice(2);
const sdk = new Conveyor({ url, token });
const receipt = await sdk.submit({ type: "http", payload: { url: "https://backend.example/packed" }, runAt: "2999-01-01T00:00:00Z" });
const view = await sdk.get(receipt.id);
const missing = await sdk.get("00000000-0000-4000-8000-000000000000").catch((e) => e);
console.log(JSON.stringify({
  receipt, status: view.status, key: view.idempotencyKey,
  missing: missing instanceof ConveyorError ? [missing.code, missing.httpStatus] : String(missing),
  verified: await verifySignature(body, signature, secret),
  tampered: await verifySignature(body.replace("succeeded", "failed"), signature, secret),
}));
`,
    );
    const { token } = await newToken(t.db, "client");
    const { stdout } = await run(process.execPath, ["check.mjs", api.url, token, secret, body, signature], {
      cwd: app,
      env,
    });
    const out = JSON.parse(stdout);
    expect(out).toMatchObject({
      receipt: { status: "pending", duplicate: false },
      status: "pending",
      missing: ["NOT_FOUND", 404],
      verified: true,
      tampered: false,
    });
    expect(out.key).toMatch(/^[0-9a-f-]{36}$/);
    const row = await t.db.pool.query(`SELECT idempotency_key FROM commands WHERE id = $1`, [out.receipt.id]);
    expect(row.rows[0].idempotency_key).toBe(out.key);
  });

  it("type-checks a consumer with tsc, under NodeNext and bundler resolution", async () => {
    await writeFile(path.join(app, "consumer.ts"), CONSUMER_TS);
    for (const mode of ["NodeNext", "Bundler"] as const)
      expect(await typecheck("consumer.ts", mode)).toEqual({ ok: true, out: "" });
  });

  it("type-checks the READMEs' TypeScript examples as a consumer would write them", async () => {
    const blocks = await Promise.all(
      ["README.md", "packages/client/README.md"].map(async (f) =>
        [...(await readFile(path.join(root, f), "utf8")).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!),
      ),
    );
    expect(blocks.map((b) => b.length)).toEqual([1, 3]);
    // Each block is a module of its own; process.env is Node's (the folder has no @types/node).
    const preamble = "declare const process: { env: Record<string, string | undefined> };\n";
    for (const [i, code] of blocks.flat().entries()) {
      await writeFile(path.join(app, `readme-${i}.ts`), preamble + code);
      expect(await typecheck(`readme-${i}.ts`, "NodeNext")).toEqual({ ok: true, out: "" });
    }
  });

  it("and its types are real: a consumer that misuses them does not compile", async () => {
    await writeFile(path.join(app, "wrong.ts"), WRONG_TS);
    const r = await typecheck("wrong.ts", "NodeNext");
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/wrong\.ts\(4,\d+\): error TS2322: Type '"done"' is not assignable to type 'State'/);
    expect(r.out).toMatch(/wrong\.ts\(5,\d+\): error TS2345: [^]*Property 'payload' is missing/);
    expect(r.out).toMatch(/wrong\.ts\(6,\d+\): error TS2345: Argument of type 'number'/);
    // The built-in http type's payload is checked where the type is written as a literal, in a batch too.
    expect(r.out).toMatch(/wrong\.ts\(7,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(r.out).toMatch(/wrong\.ts\(8,\d+\): error TS2741: Property 'url' is missing/);
  });
});
