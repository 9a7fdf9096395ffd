// `npm run worker` (and npm start's worker): compiles the worker (server/worker/main.ts
// and every module of ours it imports) into one ES module with esbuild, then runs it in
// this process, so signals reach it directly.
//
// Why not tsx, as in development: tsx compiles with esbuild's keepNames, which wraps every
// closure the worker makes per command in a naming helper. Compiled without it, the worker's
// own JavaScript per command fell by a quarter (bench:worker-js: 24.5 → 17.9 µs). Packages are not bundled:
// they load from node_modules as usual. Stack traces point at the TypeScript sources.
//
// `node scripts/worker.mjs other-entry.ts` runs another entry the same way (the benchmarks).
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const given = process.argv[2] && !process.argv[2].startsWith("-") ? process.argv[2] : undefined;
const entry = path.resolve(root, given ?? "server/worker/main.ts");
// The entry sees the command line as if it had been run directly: node <entry> <its arguments>.
process.argv.splice(1, given ? 2 : 1, entry);

// Inside the checkout, so that the bundle's imports of packages resolve from its node_modules.
const dir = path.join(root, "node_modules", ".cache", "conveyor");
const name = path.basename(entry).replace(/\.[cm]?tsx?$/, "");

const { outputFiles } = await build({
  entryPoints: [entry],
  absWorkingDir: root,
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "inline",
  write: false,
  outfile: path.join(dir, `${name}.mjs`), // where the source map's paths are relative to
  logLevel: "warning",
});
const code = outputFiles[0].contents;

// Named by content: workers starting together write the same file, each atomically.
const file = path.join(dir, `${name}-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.mjs`);
let runnable = true;
if (!existsSync(file)) {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
    // Earlier versions of this entry: a running process no longer needs its file once loaded.
    for (const f of readdirSync(dir)) {
      const old = path.join(dir, f);
      if (old !== file && f.startsWith(`${name}-`) && Date.now() - statSync(old).mtimeMs > 600_000)
        rmSync(old, { force: true });
    }
  } catch (err) {
    // A read-only install: run the sources through tsx, as in development (slower, same behaviour).
    console.warn(
      `scripts/worker.mjs: cannot write ${dir} (${err.code ?? err.message}); running ${path.relative(root, entry)} through tsx instead`,
    );
    runnable = false;
  }
}

if (runnable) {
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(file).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(entry).href);
}
