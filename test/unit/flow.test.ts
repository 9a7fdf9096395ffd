// Decision tables for flow control (no database): what a gated claim may
// take, how the token bucket refills, how a circuit breaker moves, and the
// claim units built from gated scopes.
import { describe, expect, it } from "vitest";
import { allowance, refill, spend, START_SPREAD_MS, type ScopeRow } from "../../server/flow/allowance";
import { afterAnswer, afterException, circuitSettings, usesBudget, type Circuit } from "../../server/flow/circuit";
import { CIRCUIT_DEFAULTS, MAX_COOLDOWN_MS, hostOf, unitsOf } from "../../server/flow/scopes";

const now = new Date("2026-12-02T12:00:00.000Z");
const at = (ms: number) => new Date(now.getTime() + ms);
const row = (over: Partial<ScopeRow> = {}): ScopeRow => ({
  kind: "host",
  name: "api.example.com",
  paused: false,
  limit: null,
  tokens: null,
  tokensAt: null,
  inFlight: 0,
  circuitState: "closed",
  nextProbeAt: null,
  probeAlive: false,
  ...over,
});
const H = { kind: "host" as const, name: "api.example.com" };

describe("allowance", () => {
  const cases: [
    string,
    ScopeRow[],
    number,
    { take: number; probe?: boolean; reason: string | null; wakeAt?: Date | null },
  ][] = [
    ["nothing set: the room", [row()], 10, { take: 10, reason: null }],
    ["paused: nothing", [row({ paused: true })], 10, { take: 0, reason: "paused" }],
    [
      "concurrency minus in flight",
      [row({ limit: { concurrency: 5 }, inFlight: 3 })],
      10,
      { take: 2, reason: "limit" },
    ],
    ["concurrency full", [row({ limit: { concurrency: 5 }, inFlight: 5 })], 10, { take: 0, reason: "limit" }],
    ["concurrency above the room: the room", [row({ limit: { concurrency: 50 } })], 10, { take: 10, reason: null }],
    [
      "a fresh bucket: its burst, less the start spread",
      [row({ limit: { ratePerSecond: 100, burst: 20 } })],
      50,
      { take: Math.floor(20 - (100 * START_SPREAD_MS) / 1000), reason: "limit" },
    ],
    [
      "an empty bucket: nothing, and when the next token comes",
      [row({ limit: { ratePerSecond: 10, burst: 10 }, tokens: 0.5, tokensAt: now })],
      10,
      { take: 0, reason: "limit", wakeAt: at(50) },
    ],
    [
      "the tightest scope wins (type and host)",
      [
        row({ kind: "type", name: "http", limit: { concurrency: 4 }, inFlight: 1 }),
        row({ limit: { concurrency: 10 }, inFlight: 8 }),
      ],
      10,
      { take: 2, reason: "limit" },
    ],
    [
      "open circuit before its probe: nothing until next probe",
      [row({ circuitState: "open", nextProbeAt: at(5_000) })],
      10,
      { take: 0, reason: "circuit", wakeAt: at(5_000) },
    ],
    [
      "open circuit, probe due: one, as the probe",
      [row({ circuitState: "open", nextProbeAt: at(-1) })],
      10,
      { take: 1, probe: true, reason: "circuit" },
    ],
    [
      "half-open with its probe out: nothing",
      [row({ circuitState: "half_open", probeAlive: true })],
      10,
      { take: 0, reason: "circuit", wakeAt: null },
    ],
    [
      "half-open whose probe's lease is gone: a new probe",
      [row({ circuitState: "half_open", probeAlive: false })],
      10,
      { take: 1, probe: true, reason: "circuit" },
    ],
    [
      "a probe is due but the scope is paused: no probe",
      [row({ circuitState: "open", nextProbeAt: at(-1), paused: true })],
      10,
      { take: 0, probe: false, reason: "paused" },
    ],
  ];
  it.each(cases)("%s", (_name, rows, room, want) => {
    const a = allowance(rows, H, room, now);
    expect(a.take).toBe(want.take);
    expect(a.reason).toBe(want.reason);
    expect(a.probe).toBe(want.probe ?? false);
    if (want.wakeAt !== undefined) expect(a.wakeAt).toEqual(want.wakeAt);
  });

  it("refills at the rate up to the burst, and a debt is paid back first", () => {
    const l = { ratePerSecond: 10, burst: 10 };
    expect(refill({ limit: l, tokens: 0, tokensAt: now }, at(500))).toBeCloseTo(5);
    expect(refill({ limit: l, tokens: 0, tokensAt: now }, at(60_000))).toBeCloseTo(10 - (10 * START_SPREAD_MS) / 1000);
    expect(refill({ limit: l, tokens: -2, tokensAt: now }, at(100))).toBeCloseTo(-1);
    expect(refill({ limit: null, tokens: null, tokensAt: null }, now)).toBeNull();
    // the burst defaults to ceil(rate)
    expect(refill({ limit: { ratePerSecond: 2.5 }, tokens: null, tokensAt: null }, now)).toBeCloseTo(
      3 - (2.5 * START_SPREAD_MS) / 1000,
    );
  });

  it("spends what the claim may send (a reconcile first counts twice)", () => {
    const r = row({ limit: { ratePerSecond: 10, burst: 10 }, tokens: 3, tokensAt: now });
    expect(spend([r, row({ kind: "type", name: "http" })], 4, now)).toEqual([
      { kind: "host", name: "api.example.com", tokens: -1 },
    ]);
  });
});

describe("circuit breaker", () => {
  const s = { threshold: 3, cooldownSeconds: 10 };
  const closed: Circuit = {
    state: "closed",
    since: now,
    consecutive: 0,
    cooldownMs: null,
    nextProbeAt: null,
    probeLease: null,
  };
  const L = "lease-1";

  it("closed → open after the threshold, with the cooldown", () => {
    let c = closed;
    for (let i = 0; i < 2; i++) c = afterException(c, s, L, now);
    expect(c).toMatchObject({ state: "closed", consecutive: 2 });
    c = afterException(c, s, L, now);
    expect(c).toMatchObject({ state: "open", consecutive: 3, cooldownMs: 10_000, nextProbeAt: at(10_000) });
  });

  it("an answer resets the count and closes from any state", () => {
    expect(afterAnswer({ ...closed, consecutive: 2 }, now)).toMatchObject({ state: "closed", consecutive: 0 });
    const open: Circuit = {
      state: "half_open",
      since: now,
      consecutive: 9,
      cooldownMs: 40_000,
      nextProbeAt: now,
      probeLease: L,
    };
    expect(afterAnswer(open, at(5))).toEqual({ ...closed, since: at(5) });
  });

  it("a failed probe reopens with the cooldown doubled, up to 5 minutes; another attempt's exception changes nothing", () => {
    const half: Circuit = {
      state: "half_open",
      since: now,
      consecutive: 5,
      cooldownMs: 10_000,
      nextProbeAt: now,
      probeLease: L,
    };
    expect(afterException(half, s, L, now)).toMatchObject({
      state: "open",
      cooldownMs: 20_000,
      nextProbeAt: at(20_000),
    });
    expect(afterException({ ...half, cooldownMs: 200_000 }, s, L, now).cooldownMs).toBe(MAX_COOLDOWN_MS);
    expect(afterException(half, s, "another", now)).toMatchObject({
      state: "half_open",
      consecutive: 6,
      probeLease: L,
    });
  });

  it("budget: used while closed, not while open or half-open, nor by the probe", () => {
    expect(usesBudget(closed, L)).toBe(true);
    expect(usesBudget({ ...closed, state: "open" }, L)).toBe(false);
    expect(usesBudget({ ...closed, state: "half_open", probeLease: L }, L)).toBe(false);
    expect(usesBudget({ ...closed, state: "half_open", probeLease: "other" }, L)).toBe(false);
  });

  it("settings: the scope's override, else the type's, else the defaults", () => {
    expect(circuitSettings(undefined, undefined, CIRCUIT_DEFAULTS)).toEqual({ threshold: 5, cooldownSeconds: 10 });
    expect(circuitSettings({ threshold: 2 }, { threshold: 7, cooldownSeconds: 30 }, CIRCUIT_DEFAULTS)).toEqual({
      threshold: 2,
      cooldownSeconds: 30,
    });
  });
});

describe("scopes and units", () => {
  it("a host is the URL's host name, lower case, without port", () => {
    expect(hostOf("https://API.Example.com:8443/x?y")).toBe("api.example.com");
    expect(hostOf("http://[::1]:80/")).toBe("[::1]");
    expect(hostOf("not a url")).toBeNull();
  });

  it("a gated host's unit also respects a gated http type; the type's unit leaves the gated hosts out", () => {
    const units = unitsOf([
      { kind: "host", name: "a.example" },
      { kind: "type", name: "http" },
      { kind: "type", name: "mailer" },
    ]);
    expect(units).toEqual([
      {
        type: "http",
        host: "a.example",
        exceptHosts: [],
        scopes: [
          { kind: "type", name: "http" },
          { kind: "host", name: "a.example" },
        ],
        circuit: { kind: "host", name: "a.example" },
      },
      { type: "http", host: null, exceptHosts: ["a.example"], scopes: [{ kind: "type", name: "http" }], circuit: null },
      {
        type: "mailer",
        host: null,
        exceptHosts: [],
        scopes: [{ kind: "type", name: "mailer" }],
        circuit: { kind: "type", name: "mailer" },
      },
    ]);
  });
});
