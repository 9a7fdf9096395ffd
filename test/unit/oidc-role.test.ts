// The role an SSO sign-in gets (DESIGN §9), as a decision table: the claim's
// value (absent, a role, something else, a list) × the default role.
import { describe, expect, it } from "vitest";
import { claimValue, decideRole } from "../../server/auth/oidc-role";

const decide = (
  claims: Record<string, unknown>,
  defaultRole: "viewer" | "operator" | "admin" | "none",
  roleClaim = "conveyor_role",
) => decideRole(claims, { roleClaim, defaultRole });

describe("the role of an SSO sign-in", () => {
  // [what the claim holds, default role, the outcome: a role and where it came from, or "refused"]
  const table: [unknown, "viewer" | "operator" | "admin" | "none", string][] = [
    [undefined, "viewer", "viewer from default"],
    [undefined, "operator", "operator from default"],
    [undefined, "admin", "admin from default"],
    [undefined, "none", "refused"],
    ["viewer", "none", "viewer from claim"],
    ["operator", "viewer", "operator from claim"],
    ["admin", "viewer", "admin from claim"],
    // the claim wins over the default, downwards too
    ["viewer", "admin", "viewer from claim"],
    // case and spaces do not matter
    [" Operator ", "none", "operator from claim"],
    ["ADMIN", "none", "admin from claim"],
    // a value that is no role counts as none
    ["superuser", "viewer", "viewer from default"],
    ["superuser", "none", "refused"],
    ["", "none", "refused"],
    [null, "none", "refused"],
    [3, "operator", "operator from default"],
    [{ role: "admin" }, "none", "refused"],
    [true, "none", "refused"],
    // a list (the provider's groups): the highest role in it; other values ignored
    [["viewer", "admin", "operator"], "none", "admin from claim"],
    [["engineering", "operator"], "none", "operator from claim"],
    [["engineering", "sales"], "viewer", "viewer from default"],
    [["engineering", "sales"], "none", "refused"],
    [[], "none", "refused"],
    [[1, null, "viewer"], "none", "viewer from claim"],
  ];
  it.each(table)("claim %j, default %s → %s", (value, def, expected) => {
    const d = decide(value === undefined ? { sub: "u1" } : { sub: "u1", conveyor_role: value }, def);
    expect(d.ok ? `${d.role} from ${d.from}` : "refused").toBe(expected);
  });

  it("says why it refuses, naming the claim", () => {
    const d = decide({ sub: "u1", groups: ["admin"] }, "none", "conveyor_role");
    expect(d).toEqual({ ok: false, message: expect.stringContaining('claim "conveyor_role"') });
    expect(d.ok || d.message).toMatch(/may not sign in/);
  });

  it("reads the claim named by OIDC_ROLE_CLAIM, not another one", () => {
    expect(decide({ sub: "u1", conveyor_role: "admin", groups: "viewer" }, "none", "groups")).toEqual({
      ok: true,
      role: "viewer",
      from: "claim",
    });
  });
});

describe("the role claim's name", () => {
  it("is a claim's own name first, even with dots in it (namespaced claims)", () => {
    expect(claimValue({ "https://corp.example/role": "admin" }, "https://corp.example/role")).toBe("admin");
    expect(claimValue({ "a.b": "flat", a: { b: "nested" } }, "a.b")).toBe("flat");
  });
  it("else a path into nested objects (realm_access.roles)", () => {
    const claims = { realm_access: { roles: ["offline_access", "operator"] } };
    expect(claimValue(claims, "realm_access.roles")).toEqual(["offline_access", "operator"]);
    expect(decide(claims, "none", "realm_access.roles")).toEqual({ ok: true, role: "operator", from: "claim" });
  });
  it("finds nothing through lists, scalars or inherited properties", () => {
    expect(claimValue({ a: [{ b: "admin" }] }, "a.0.b")).toBeUndefined();
    expect(claimValue({ a: "admin" }, "a.length")).toBeUndefined();
    expect(claimValue({ a: {} }, "a.constructor")).toBeUndefined();
    expect(claimValue({}, "toString")).toBeUndefined();
    expect(claimValue({ a: null }, "a.b")).toBeUndefined();
  });
});
