// The build lock of `npm start` (scripts/build-if-needed.ts): one build at a time per
// checkout, and a start stopped during its build does not leave the next one waiting.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { withBuildLock } from "../../scripts/build-if-needed";
import { runTs } from "../helpers/proc";

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(lockOf(r), { recursive: true, force: true });
});
const lockOf = (root: string) =>
  path.join(
    os.tmpdir(),
    `conveyor-build-${createHash("sha256").update(path.resolve(root)).digest("hex").slice(0, 16)}.lock`,
  );
function heldBy(pid: number) {
  const root = mkdtempSync(path.join(os.tmpdir(), "lock-root-"));
  roots.push(root);
  mkdirSync(lockOf(root));
  writeFileSync(path.join(lockOf(root), "pid"), String(pid));
  return root;
}

describe("the build lock", () => {
  it("is taken over at once when its holder is gone", () => {
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    const root = heldBy(gone);
    const said: string[] = [];
    expect(
      withBuildLock(
        root,
        () => "built",
        (m) => said.push(m),
      ),
    ).toBe("built");
    expect(said).toEqual([`Taking over the build lock of process ${gone} (it is gone)`]);
    expect(existsSync(lockOf(root))).toBe(false);
  });

  it("is taken over when it names no holder a few seconds after it was made", () => {
    const root = heldBy(process.pid);
    rmSync(path.join(lockOf(root), "pid"));
    const old = new Date(Date.now() - 11_000);
    utimesSync(lockOf(root), old, old);
    const said: string[] = [];
    expect(
      withBuildLock(
        root,
        () => "built",
        (m) => said.push(m),
      ),
    ).toBe("built");
    expect(said).toEqual(["Taking over the build lock of process ? (it is gone)"]);
  });

  it("is taken over after 15 minutes even when its holder lives", () => {
    const root = heldBy(process.pid);
    const old = new Date(Date.now() - 16 * 60_000);
    utimesSync(lockOf(root), old, old);
    const said: string[] = [];
    expect(
      withBuildLock(
        root,
        () => "built",
        (m) => said.push(m),
      ),
    ).toBe("built");
    expect(said[0]).toMatch(/held for 15 minutes/);
  });

  it("makes another start wait, saying so, while a live holder builds", async () => {
    const root = heldBy(process.pid);
    const waiter = runTs("test/fixtures/build-lock.ts", [root]);
    await waiter.waitFor(new RegExp(`Waiting for the build that process ${process.pid} is running`));
    expect(waiter.output()).not.toMatch(/ran under the lock/);
    rmSync(lockOf(root), { recursive: true, force: true }); // the holder finishes
    await waiter.waitFor(/ran under the lock/);
    expect((await waiter.exited).code).toBe(0);
  });
});
