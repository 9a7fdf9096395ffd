// The SDK's types cannot drift from the server's schemas: test/types/sdk-contract.ts
// compiles cleanly as the sources stand, and stops compiling when the SDK's
// types are changed the way a drift would change them.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import ts from "typescript";

const root = path.resolve(".");
const CONTRACT = path.join(root, "test/types/sdk-contract.ts");
const SDK_TYPES = path.join(root, "packages/client/src/types.ts");

/** The contract's diagnostics under the root tsconfig, with the SDK's types.ts replaced by `sdkTypes` when given. */
function diagnose(sdkTypes?: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(root, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  )!;
  const options = { ...config.options, incremental: false, noEmit: true };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => (sdkTypes !== undefined && path.resolve(f) === SDK_TYPES ? sdkTypes : readFile(f));
  const program = ts.createProgram([CONTRACT], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map(
      (d) =>
        `${d.file ? path.relative(root, d.file.fileName) : "?"}:${d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0} ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`,
    );
}

const source = readFileSync(SDK_TYPES, "utf8");
const drifted = (from: string, to: string) => {
  expect(source).toContain(from);
  return source.replace(from, to);
};
/** The contract lines that fail, by their text. */
const failing = (problems: string[]) => {
  const lines = readFileSync(CONTRACT, "utf8").split("\n");
  return problems.map((p) => {
    const m = /^test\/types\/sdk-contract\.ts:(\d+) /.exec(p);
    return m ? lines[Number(m[1]) - 1]!.trim() : p;
  });
};

describe("the SDK's types against the server's", () => {
  it("agree as the sources stand", () => {
    expect(diagnose()).toEqual([]);
  }, 60_000);

  it("disagree when the SDK drops a field the server accepts, or adds one it does not send", () => {
    const problems = failing(
      diagnose(
        drifted("  orderingKey?: string;\n};", "};").replace(
          "  finishedAt: string | null;\n};",
          "  finishedAt: string | null;\n  startedAt: string | null;\n};",
        ),
      ),
    );
    expect(problems).toContain("Expect<Equal<Sdk.SubmitInput, z.input<typeof submitInput>>>,");
    expect(problems).toContain("Expect<Equal<Sdk.CommandView, ServerView>>,");
    expect(problems).toContain('Expect<Equal<Sdk.GetManyResult, Output<"getMany">>>,');
  }, 60_000);

  it("disagree when a field's type or optionality differs", () => {
    const problems = failing(
      diagnose(
        drifted("  priority?: number;", "  priority?: number | string;")
          .replace("  attemptCount: number;", "  attemptCount?: number;")
          .replace('  | "cancelled";', ""),
      ),
    );
    expect(problems).toContain("Expect<Equal<Sdk.SubmitInput, z.input<typeof submitInput>>>,");
    expect(problems).toContain("Expect<Equal<Sdk.CommandView, ServerView>>,");
    expect(problems).toContain("Expect<Equal<Sdk.State, ServerState>>,");
  }, 60_000);
});
