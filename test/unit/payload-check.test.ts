// The Edit & retry dialog's check of a payload typed as JSON (app/_components/payload-check.ts):
// where a syntax error is, the issues of the type's schema as the server words them, and what an edit changes.
import { describe, expect, it } from "vitest";
import { changedFields, checkPayloadText } from "../../app/_components/payload-check";
import { registry } from "../../server/command-types";
import { AppError } from "../../server/errors";

describe("checkPayloadText", () => {
  it("says where the JSON breaks, by line and column", () => {
    const text = '{\n  "url": "https://x.example/",\n  "method": "POST",,\n}';
    const r = checkPayloadText(text, "http");
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.syntax).toMatchObject({ line: 3, column: 20 });
    expect(r.issues).toEqual([
      { path: [], message: expect.stringMatching(/^not valid JSON: .*\(line 3, column 20\)$/) },
    ]);
    // The message does not quote the whole text back.
    expect(r.issues[0]!.message).not.toContain("https://x.example/");
  });

  it("a text cut short is broken at its end", () => {
    const r = checkPayloadText('{"url": "https://x.example/"', "http");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.syntax).toMatchObject({ line: 1, column: 29 });
  });

  it("an empty box asks for JSON", () => {
    expect(checkPayloadText("  ", "http")).toMatchObject({
      ok: false,
      issues: [{ path: [], message: /enter the payload/ }],
    });
  });

  it("checks the http schema in the browser with the issues the server gives, paths below payload", () => {
    const payload = { url: "ftp://x.example/", timeoutMs: 5, extra: 1 };
    const r = checkPayloadText(JSON.stringify(payload), "http");
    expect(r.ok).toBe(false);
    let server: { path: (string | number)[]; message: string }[] = [];
    try {
      registry.validate("http", payload);
    } catch (e) {
      server = (e as AppError).issues!;
    }
    expect(server.length).toBeGreaterThan(0);
    expect(r.issues).toEqual(server.map((i) => ({ ...i, path: i.path.slice(1) })));
    expect(r.issues.map((i) => i.path.join("."))).toEqual(expect.arrayContaining(["url", "timeoutMs"]));
  });

  it("refuses what jsonb cannot hold, and leaves a type it has no schema for to the server", () => {
    expect(checkPayloadText('{"a": "x\\u0000y"}', "custom")).toMatchObject({ ok: false, issues: [{ path: ["a"] }] });
    expect(checkPayloadText('{"anything": 1}', "custom")).toMatchObject({ ok: true, value: { anything: 1 } });
    expect(checkPayloadText('{"url": "https://x.example/"}', "http").ok).toBe(true);
  });
});

describe("changedFields", () => {
  it("names the top-level fields that differ, whatever the key order (jsonb reorders keys)", () => {
    const before = { url: "https://a.example/", headers: { b: "2", a: "1" }, body: { n: 1 } };
    expect(changedFields(before, { headers: { a: "1", b: "2" }, body: { n: 1 }, url: "https://a.example/" })).toEqual(
      [],
    );
    expect(changedFields(before, { ...before, url: "https://b.example/", method: "PUT" })).toEqual(["method", "url"]);
    expect(changedFields(before, { url: "https://a.example/", headers: before.headers })).toEqual(["body"]);
    expect(changedFields([1], [2])).toEqual([""]);
  });
});
