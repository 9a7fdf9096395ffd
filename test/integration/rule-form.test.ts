// The console's rule form logic, without a browser but with the real API: its
// resolver (the server's own schema, over the values as typed) marks the same
// fields the server would, what it lets through the server accepts, and a
// BAD_REQUEST the server answers lands on the fields its issues name
// (react-hook-form's own form control, as the page uses it).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFormControl } from "react-hook-form";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import type { AppRouter } from "../../server/api/root";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import {
  defaults,
  FIELDS,
  recipientList,
  resolver,
  webhookList,
  type FormValues,
} from "../../app/(console)/alerts/_components/rule-values";
import { messagesOf, setServerIssues } from "../../app/(console)/alerts/_components/server-issues";

let t: TestDb;
let api: ApiServer;
let trpc: ReturnType<typeof createTRPCClient<AppRouter>>;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  const { token } = await newToken(t.db, "admin", "form-admin");
  trpc = createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${api.url}/api/trpc`, headers: { authorization: `Bearer ${token}` } })],
  });
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

function form(values: Partial<FormValues> = {}) {
  return createFormControl<FormValues, unknown, Parameters<typeof trpc.alerts.createRule.mutate>[0]>({
    defaultValues: { ...defaults(null), ...values },
    resolver,
  });
}
/** What the page shows next to each field with an error. */
function shown(f: ReturnType<typeof form>) {
  const v = f.getValues();
  const out: Record<string, string[]> = {};
  for (const name of [...FIELDS, "root"] as (keyof FormValues)[]) {
    const m =
      name === ("root" as keyof FormValues)
        ? messagesOf(f.getFieldState("root.server" as keyof FormValues).error)
        : messagesOf(
            f.getFieldState(name).error,
            name === "recipients"
              ? recipientList(v.recipients)
              : name === "webhooks"
                ? webhookList(v.webhooks)
                : undefined,
          );
    if (m.length) out[name] = m;
  }
  return out;
}

describe("the rule form", () => {
  it("checks with the server's schema: the fields it marks, and what it lets through the server accepts", async () => {
    const bad = form({ name: "  ", threshold: "", recipients: "oncall@example.com, not-an-email" });
    expect(await bad.trigger()).toBe(false);
    expect(shown(bad)).toEqual({
      name: ["Too small: expected string to have >=1 characters"],
      threshold: ["enter a number"],
      recipients: ["not-an-email: must be an email address"],
    });
    // the checks per kind (zod runs them once every field has the right type, on the server too)
    const stuck = form({
      name: "Stuck",
      kind: "stuck",
      states: [],
      ageSeconds: { amount: "", unit: 60 },
      recipients: "a@example.com",
    });
    await stuck.trigger();
    expect(shown(stuck)).toEqual({
      states: ["a stuck rule needs the states to watch"],
      ageSeconds: ["a stuck rule needs an age"],
    });
    const rate = form({ kind: "rate", threshold: "150", recipients: "" });
    await rate.trigger();
    expect(shown(rate)).toEqual({
      name: expect.any(Array),
      threshold: ["a rate is a share from 0 to 1"],
      recipients: ["at least one recipient or webhook"],
      webhooks: ["at least one recipient or webhook"],
    });
    // a webhook that is not a URL (or twice the same) is named, as typed
    const hooks = form({
      name: "Hooks",
      kind: "backlog",
      recipients: "",
      webhooks: "https://chat.example/hook\nftp://chat.example/x\nnot a url\nhttps://chat.example/hook",
    });
    await hooks.trigger();
    expect(shown(hooks)).toEqual({
      webhooks: [
        "ftp://chat.example/x: must be an http:// or https:// URL",
        "not: must be an http:// or https:// URL",
        "a: must be an http:// or https:// URL",
        "url: must be an http:// or https:// URL",
        "https://chat.example/hook: this webhook is listed twice",
      ],
    });
    // latency: a percentile and seconds; circuit: the threshold may be left empty (1)
    const latency = form({
      name: "Slow",
      kind: "latency",
      percentile: "0",
      threshold: "0",
      recipients: "a@example.com",
    });
    await latency.trigger();
    expect(shown(latency)).toEqual({
      percentile: ["a percentile is above 0 and at most 100"],
      threshold: ["a latency threshold is a number of seconds above 0"],
    });
    const circuit = form({ name: "Open", kind: "circuit", threshold: "1.5", recipients: "a@example.com" });
    await circuit.trigger();
    expect(shown(circuit)).toEqual({
      threshold: ["a circuit rule's threshold is a number of circuit breakers, a whole number from 1"],
    });

    // 12.5 % over 2 hours, as typed: the server gets a share and seconds, and stores them.
    const ok = form({
      name: " Ledger failures ",
      kind: "rate",
      threshold: "12.5",
      windowSeconds: { amount: "2", unit: 3600 },
      recipients: "a@example.com;\nb@example.com",
    });
    let sent: Parameters<typeof trpc.alerts.createRule.mutate>[0] | undefined;
    await ok.handleSubmit((input) => void (sent = input))();
    expect(sent).toMatchObject({
      name: "Ledger failures",
      kind: "rate",
      threshold: 0.125,
      windowSeconds: 7200,
      recipients: ["a@example.com", "b@example.com"],
      cooldownSeconds: 3600,
    });
    expect(sent).not.toHaveProperty("states", expect.anything()); // a rate rule has none
    const { id } = await trpc.alerts.createRule.mutate(sent!);
    const stored = (await trpc.alerts.listRules.query()).items.find((r) => r.id === id)!;
    expect(stored).toMatchObject({ name: "Ledger failures", kind: "rate", threshold: 0.125, windowSeconds: 7200 });
    // and the form opened on the stored rule shows it as it was typed
    expect(defaults(stored)).toMatchObject({
      threshold: "12.5",
      windowSeconds: { amount: "2", unit: 3600 },
      recipients: "a@example.com\nb@example.com",
    });
  });

  it("puts the issues of the server's BAD_REQUEST on the fields they name, and the others on the form", async () => {
    const f = form({ recipients: "a@example.com\nnope" });
    // sent as is, past the form's own check (as an older page or another client could)
    const err = await trpc.alerts.createRule
      .mutate({ name: "x", kind: "count", threshold: 1, recipients: ["a@example.com", "nope"], bogus: true } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCClientError);
    expect(setServerIssues(err, FIELDS, (name, e) => f.setError(name as keyof FormValues, e))).toBe(true);
    expect(shown(f)).toEqual({
      recipients: ["nope: must be an email address"],
      states: ["a count rule needs the states to count"],
      windowSeconds: ["a count rule needs a window"],
      root: ['Unrecognized key: "bogus"'],
    });
    // a rule that is not there is no validation error: nothing goes on the form
    const missing = await trpc.alerts.deleteRule
      .mutate({ id: "00000000-0000-4000-8000-000000000000" })
      .catch((e: unknown) => e);
    const g = form();
    expect(setServerIssues(missing, FIELDS, (name, e) => g.setError(name as keyof FormValues, e))).toBe(false);
    expect(shown(g)).toEqual({});
  });

  it("latency, circuit and webhook-only rules as typed reach the server as it stores them; the secret comes back once", async () => {
    const latency = form({
      name: "Slow ledger",
      kind: "latency",
      type: "ledger",
      percentile: "99",
      threshold: "2.5",
      windowSeconds: { amount: "5", unit: 60 },
      recipients: "",
      webhooks: "https://chat.example/hooks/abcd1234",
    });
    let sent: Parameters<typeof trpc.alerts.createRule.mutate>[0] | undefined;
    await latency.handleSubmit((input) => void (sent = input))();
    expect(sent).toMatchObject({
      kind: "latency",
      percentile: 99,
      threshold: 2.5,
      windowSeconds: 300,
      recipients: [],
      webhooks: ["https://chat.example/hooks/abcd1234"],
    });
    const made = await trpc.alerts.createRule.mutate(sent!);
    expect(made.webhookSecret).toMatch(/^whsec_[\w-]{43}$/);
    const stored = (await trpc.alerts.listRules.query()).items.find((r) => r.id === made.id)!;
    expect(stored).toMatchObject({ kind: "latency", percentile: 99, threshold: 2.5, webhooks: sent!.webhooks });
    expect(JSON.stringify(stored)).not.toContain(made.webhookSecret);
    expect(defaults(stored)).toMatchObject({ percentile: "99", threshold: "2.5", webhooks: sent!.webhooks![0] });

    const circuit = form({ name: "Open circuits", kind: "circuit", threshold: "", recipients: "a@example.com" });
    sent = undefined;
    await circuit.handleSubmit((input) => void (sent = input))();
    expect(sent).toMatchObject({ kind: "circuit" });
    expect(sent).not.toHaveProperty("threshold", expect.anything());
    expect(sent).not.toHaveProperty("windowSeconds", expect.anything());
    const c = await trpc.alerts.createRule.mutate(sent!);
    expect((await trpc.alerts.listRules.query()).items.find((r) => r.id === c.id)).toMatchObject({
      kind: "circuit",
      threshold: 1,
      percentile: null,
      windowSeconds: null,
    });
  });
});
