// The real web process (`npm run web`) and a real browser, for end-to-end tests.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
/** Browser tests run wherever Debian's chromium is installed, and always in CI (.ci/run installs it). */
export const browserAvailable = existsSync(CHROMIUM) || process.env.CI === "true";

/** Starts server/web/main.ts on `port` in its own process group (so that stopping it stops its children). */
export function spawnWeb(
  port: number,
  env: Record<string, string>,
  stdio: "inherit" | "pipe" = "inherit",
): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", path.resolve("server/web/main.ts")], {
    env: { ...process.env, NODE_ENV: "production", PORT: String(port), ...env },
    stdio: ["ignore", stdio, stdio],
    detached: true,
  });
}

/** Resolves once /api/health answers 200; rejects if the process exits first. */
export async function waitHealthy(url: string, child: ChildProcess) {
  let exited = false;
  child.once("exit", () => (exited = true));
  for (;;) {
    if (exited) throw new Error("the web process exited");
    const ok = await fetch(`${url}/api/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function stopWeb(child: ChildProcess | undefined) {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
}

/** Headless Chromium with a fresh profile, flags that keep it off the (closed) network. */
export async function launchBrowser(): Promise<{ ctx: BrowserContext; page: Page; close: () => Promise<void> }> {
  const profile = await mkdtemp(path.join(os.tmpdir(), "conveyor-e2e-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  ctx.setDefaultTimeout(20_000);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  return {
    ctx,
    page,
    close: async () => {
      await ctx.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the login form and waits to land on `next`. */
export async function signIn(p: Page, base: string, email: string, password: string, next: string) {
  await p.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await p.getByLabel("Email").fill(email);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.waitForURL(`${base}${next}`);
}
