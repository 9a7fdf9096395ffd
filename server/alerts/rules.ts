// Alert rules as data (DESIGN §4, §9): create, replace, delete, a new webhook
// secret (each audited in the change's own transaction) and the list with
// what became of each rule's deliveries.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client";
import {
  insertRule,
  listedRules,
  removeRule,
  replaceRule,
  replaceWebhookSecret,
  type RuleColumns,
} from "../db/alert-rules";
import { encrypt, randomSecret } from "../crypto";
import type { State } from "../engine/states";
import { AppError } from "../errors";
import { channelsByRule, emailByRule, type RuleChannel, type RuleEmail } from "./delivery";
import { maskWebhook } from "./format";
import { DEFAULT_CIRCUIT_THRESHOLD, DEFAULT_PERCENTILE, type RuleInput } from "./rule-input";

export { ruleInput, type RuleInput } from "./rule-input";

/** What a change of a rule needs besides the input: the key that encrypts its webhook secret, and HTTP_ALLOWED_HOSTS's list check. */
export type RuleSecrets = {
  key: Buffer;
  /** The list of HTTP_ALLOWED_HOSTS, when there is one (createHostListCheck): a webhook it refuses is refused at once. */
  hostCheck?: ((url: string) => string | null) | null;
};

const columns = (r: RuleInput): RuleColumns => ({
  name: r.name,
  kind: r.kind,
  states: r.kind === "count" || r.kind === "stuck" ? (r.states ?? []) : [],
  type: r.type ?? null,
  windowSeconds: r.kind === "circuit" || r.kind === "backlog" ? null : (r.windowSeconds ?? null),
  ageSeconds: r.ageSeconds ?? null,
  percentile: r.kind === "latency" ? (r.percentile ?? DEFAULT_PERCENTILE) : null,
  threshold: r.threshold ?? DEFAULT_CIRCUIT_THRESHOLD,
  recipients: (r.recipients ?? []).map((x) => x.toLowerCase()),
  webhooks: r.webhooks ?? [],
  cooldownSeconds: r.cooldownSeconds ?? 3600,
  notifyOnResolve: r.notifyOnResolve ?? false,
  enabled: r.enabled ?? true,
  silencedUntil: r.silencedUntil ? new Date(r.silencedUntil) : null,
});

/** A webhook HTTP_ALLOWED_HOSTS's list refuses: BAD_REQUEST naming it (nothing is stored). */
function checkHosts(r: RuleInput, hostCheck: RuleSecrets["hostCheck"]) {
  if (!hostCheck) return;
  const issues = (r.webhooks ?? []).flatMap((u, i) => {
    const why = hostCheck(u);
    return why ? [{ path: ["webhooks", i], message: why }] : [];
  });
  if (issues.length) throw new AppError("BAD_REQUEST", "A webhook is not allowed", issues);
}

const newSecret = () => randomSecret("whsec_");

/**
 * `actor`: who makes the change, as the audit log names them (a user's email,
 * or token:<name>). The answer carries the rule's webhook secret: the only
 * time it is shown.
 */
export async function createRule(db: Db, r: RuleInput, actor: string, s: RuleSecrets) {
  checkHosts(r, s.hostCheck);
  const id = randomUUID();
  const webhookSecret = newSecret();
  await insertRule(db, id, columns(r), encrypt(s.key, webhookSecret), actor, {
    actor,
    action: "alert.create",
    reason: null,
    details: { id, name: r.name },
  });
  return { id, webhookSecret };
}

/**
 * Replaces the rule's input. A rule that gets its first webhook (or had no
 * secret, made before webhooks existed) gets a new webhook secret, answered
 * this once as `webhookSecret`.
 */
export async function updateRule(db: Db, r: RuleInput & { id: string }, actor: string, s: RuleSecrets) {
  checkHosts(r, s.hostCheck);
  const audit = {
    actor,
    action: "alert.update",
    reason: null,
    details: { id: r.id, name: r.name, enabled: r.enabled, silencedUntil: r.silencedUntil },
  };
  const secret = newSecret();
  const done = await replaceRule(db, r.id, columns(r), encrypt(s.key, secret), audit);
  if (!done) throw new AppError("NOT_FOUND", "No such rule");
  return done.secretSet ? { id: r.id, webhookSecret: secret } : { id: r.id };
}

/** A new webhook secret, shown once: deliveries sent from now on (retries too) are signed with it; the old one stops verifying. */
export async function rotateWebhookSecret(db: Db, id: string, actor: string, key: Buffer) {
  const webhookSecret = newSecret();
  const name = await replaceWebhookSecret(db, id, encrypt(key, webhookSecret), (ruleName) => ({
    actor,
    action: "alert.rotateWebhookSecret",
    reason: null,
    details: { id, name: ruleName },
  }));
  if (name === null) throw new AppError("NOT_FOUND", "No such rule");
  return { id, webhookSecret };
}

export async function deleteRule(db: Db, id: string, actor: string) {
  if (!(await removeRule(db, id, { actor, action: "alert.delete", reason: null, details: { id } })))
    throw new AppError("NOT_FOUND", "No such rule");
  return { id };
}

const NO_EMAIL: RuleEmail = { latest: null, lastSentAt: null, unsent: { notSent: 0, queued: 0 } };

/**
 * `reveal`: whether the reader may see webhook URLs whole (admins). A chat
 * service's incoming-webhook URL is its own credential: others see it masked.
 */
export async function listRules(db: Db, opts: { reveal: boolean } = { reveal: true }) {
  const [rows, email, channels] = await Promise.all([listedRules(db.pool), emailByRule(db), channelsByRule(db)]);
  const shown = (u: string) => (opts.reveal ? u : maskWebhook(u));
  return rows.map((r) => {
    const last = channels.get(r.id) ?? new Map<string, RuleChannel["last"]>();
    const channel = (kind: "email" | "webhook", to: string): RuleChannel => ({
      channel: kind,
      to: kind === "webhook" ? shown(to) : to,
      last: last.get(`${kind} ${to}`) ?? null,
    });
    return {
      id: r.id,
      name: r.name,
      kind: r.kind,
      // a command_status[] column: its values are states
      states: r.states as State[],
      type: r.type,
      windowSeconds: r.windowSeconds,
      ageSeconds: r.ageSeconds,
      percentile: r.percentile,
      threshold: r.threshold,
      recipients: r.recipients,
      webhooks: r.webhooks.map(shown),
      cooldownSeconds: r.cooldownSeconds,
      notifyOnResolve: r.notifyOnResolve,
      enabled: r.enabled,
      silencedUntil: r.silencedUntil?.toISOString() ?? null,
      state: r.firing ? ("firing" as const) : ("ok" as const),
      firingSince: r.firingSince?.toISOString() ?? null,
      // What became of its emails, from the deliveries (the rule's own last_sent_at is when it last alerted, sent or not).
      email: email.get(r.id) ?? NO_EMAIL,
      /** Each channel (every recipient, every webhook) with its last delivery. */
      channels: [...r.recipients.map((x) => channel("email", x)), ...r.webhooks.map((x) => channel("webhook", x))],
      lastValue: r.lastValue,
      lastEvaluatedAt: r.lastEvaluatedAt?.toISOString() ?? null,
    };
  });
}
