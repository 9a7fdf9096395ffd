// The embedded PostgreSQL behind `npm start`: first start, restart on the same
// data, a server left running by a killed parent, a stale postmaster.pid, a taken port.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import pg from "pg";
import { startEmbedded } from "../../server/db/embedded";
import { freePort, runTs } from "../helpers/proc";

const dirs: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "conveyor-embedded-"));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function query(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe("embedded PostgreSQL", () => {
  it("initialises, stops, and starts again on the same data", async () => {
    const dir = await tmp();
    const port = await freePort();
    const a = await startEmbedded({ dir, port });
    await query(a.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
    await a.stop();
    await expect(query(a.url, "SELECT 1")).rejects.toThrow();
    const b = await startEmbedded({ dir, port });
    expect(await query(b.url, "SELECT v FROM kept")).toEqual([{ v: 42 }]);
    await b.stop();
  });

  it("adopts a server left running by a parent that was killed", async () => {
    const dir = await tmp();
    const port = await freePort();
    const parent = runTs("test/fixtures/start-embedded.ts", [dir, String(port)]);
    await parent.waitFor(/ready/);
    parent.child.kill("SIGKILL");
    await parent.exited;
    const again = await startEmbedded({ dir, port });
    expect(await query(again.url, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
    await again.stop();
    // …and names the exact command when the orphan listens on another port.
    const other = runTs("test/fixtures/start-embedded.ts", [dir, String(port)]);
    await other.waitFor(/ready/);
    other.child.kill("SIGKILL");
    await expect(startEmbedded({ dir, port: port + 1 })).rejects.toThrow(/still running.*pg_ctl.* stop -D/s);
    await (await startEmbedded({ dir, port })).stop();
  });

  it("starts over a stale postmaster.pid", async () => {
    const dir = await tmp();
    const port = await freePort();
    await (await startEmbedded({ dir, port })).stop();
    await writeFile(
      path.join(dir, "pg", "postmaster.pid"),
      `999999\n${dir}/pg\n1700000000\n${port}\n\n127.0.0.1\n  1234  5678\nready\n`,
    );
    const pgAgain = await startEmbedded({ dir, port });
    expect(await query(pgAgain.url, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
    await pgAgain.stop();
  });

  it("says which port is taken", async () => {
    const dir = await tmp();
    const blocker = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => blocker.once("listening", r));
    const port = (blocker.address() as net.AddressInfo).port;
    await expect(startEmbedded({ dir, port })).rejects.toThrow(new RegExp(`Port ${port} is taken`));
    blocker.close();
  });
});
