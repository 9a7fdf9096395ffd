"use client";
// The form that creates or edits a rule, on react-hook-form, checked before
// sending with the schema the server checks with (see rule-values.ts). Issues
// the server still finds go on the field they name.
import { useForm, useWatch } from "react-hook-form";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import { btn, ErrorBox, input, label, Panel, STATE_LABEL, STATES } from "@/app/_components/ui";
import { RULE_KINDS, type RuleInput } from "@/server/alerts/rule-input";
import { QUEUED } from "@/server/engine/states";
import { DurationField, FieldError } from "./fields";
import { defaults, FIELDS, recipientList, resolver, webhookList, WINDOWED, type FormValues } from "./rule-values";
import { messagesOf, setServerIssues } from "./server-issues";
import type { Rule, RuleKind } from "./types";
import { cx } from "@/app/_components/cx";

const KIND_TEXT: Record<RuleKind, { label: string; help: string }> = {
  count: { label: "Count", help: "Commands that entered some states within a window" },
  stuck: { label: "Stuck", help: "Commands that have stayed in some states too long" },
  rate: { label: "Failure rate", help: "Share of finished commands that failed or hit an exception" },
  backlog: { label: "Backlog", help: `Commands ${QUEUED.join(" or ")} whose time has come` },
  latency: {
    label: "Latency",
    help: "A percentile of the time from receipt to finish of the commands finished in a window",
  },
  circuit: { label: "Circuit breakers", help: "Circuit breakers of flow control that are open or half-open" },
};

/** The threshold a new rule starts with for each kind (until the field is edited). */
const THRESHOLD_DEFAULT: Record<RuleKind, string> = {
  count: "5",
  stuck: "5",
  rate: "5",
  backlog: "100",
  latency: "30",
  circuit: "1",
};

export function RuleForm({
  rule,
  onDone,
  onCancel,
}: {
  rule: Rule | null;
  /** `webhookSecret`: the rule's new webhook secret, answered this once (at creation, or the first save of an older rule). */
  onDone: (id: string, wasNew: boolean, webhookSecret?: string) => void;
  onCancel: () => void;
}) {
  const trpc = useTRPC();
  const types = useQuery(trpc.commands.types.queryOptions(undefined, { staleTime: 60_000 }));
  const { register, handleSubmit, control, setError, setValue, formState } = useForm<FormValues, unknown, RuleInput>({
    defaultValues: defaults(rule),
    resolver,
  });
  const onError = (err: unknown) => setServerIssues(err, FIELDS, (name, e) => setError(name as keyof FormValues, e));
  const create = useMutation(
    trpc.alerts.createRule.mutationOptions({
      // the secret matters (and is shown) only to a rule with webhooks
      onSuccess: (r, input) => onDone(r.id, true, input.webhooks?.length ? r.webhookSecret : undefined),
      onError,
    }),
  );
  const update = useMutation(
    trpc.alerts.updateRule.mutationOptions({
      onSuccess: (r) => onDone(r.id, false, "webhookSecret" in r ? r.webhookSecret : undefined),
      onError,
    }),
  );
  const m = rule ? update : create;
  const kind = useWatch({ control, name: "kind" });
  const type = useWatch({ control, name: "type" });
  const recipients = recipientList(useWatch({ control, name: "recipients" }));
  const webhooks = webhookList(useWatch({ control, name: "webhooks" }));

  const { errors } = formState;
  const msgs = (f: keyof FormValues) =>
    messagesOf(errors[f], f === "recipients" ? recipients : f === "webhooks" ? webhooks : undefined);
  const kindField = register("kind", {
    onChange: (e: { target: { value: RuleKind } }) => {
      if (!rule && !formState.dirtyFields.threshold) setValue("threshold", THRESHOLD_DEFAULT[e.target.value]);
    },
  });
  const described = (f: keyof FormValues) => (msgs(f).length ? `rule-${f}-error` : undefined);
  const elsewhere = errors.root?.server?.message?.split("\n") ?? [];
  const onFields = Object.keys(errors).some((k) => k !== "root");
  const submit = handleSubmit((input) => (rule ? update.mutate({ id: rule.id, ...input }) : create.mutate(input)));

  return (
    <Panel title={rule ? `Edit rule: ${rule.name}` : "New rule"}>
      <form noValidate className="space-y-4" aria-label={rule ? "Edit rule" : "New rule"} onSubmit={submit}>
        <div>
          <label htmlFor="rule-name" className={label}>
            Name
          </label>
          <input
            id="rule-name"
            {...register("name")}
            maxLength={200}
            placeholder="e.g. Ledger exceptions"
            className={input}
            aria-invalid={!!errors.name}
            aria-describedby={described("name")}
          />
          <FieldError id="rule-name-error" messages={msgs("name")} />
        </div>

        <fieldset>
          <legend className={label}>Kind</legend>
          <div className="grid grid-cols-2 gap-2">
            {RULE_KINDS.map((k) => (
              <label
                key={k}
                title={KIND_TEXT[k].help}
                className={cx(
                  "flex cursor-pointer items-center gap-2 rounded-lg border px-3 py-2 text-sm",
                  kind === k ? "border-slate-900 bg-slate-50 font-medium" : "border-slate-300",
                )}
              >
                <input type="radio" value={k} {...kindField} />
                {KIND_TEXT[k].label}
              </label>
            ))}
          </div>
          <p className="mt-1 text-xs text-slate-500">{KIND_TEXT[kind].help}.</p>
          <FieldError id="rule-kind-error" messages={msgs("kind")} />
        </fieldset>

        {kind === "count" || kind === "stuck" ? (
          <fieldset aria-describedby={described("states")}>
            <legend className={label}>{kind === "count" ? "States entered" : "States stuck in"}</legend>
            <div className="grid grid-cols-2 gap-x-3 gap-y-1">
              {STATES.map((s) => (
                <label key={s} className="flex items-center gap-2 text-sm text-slate-700">
                  <input type="checkbox" value={s} {...register("states")} />
                  {STATE_LABEL[s]}
                </label>
              ))}
            </div>
            <FieldError id="rule-states-error" messages={msgs("states")} />
          </fieldset>
        ) : null}

        <div>
          <label htmlFor="rule-type" className={label}>
            Command type <span className="font-normal text-slate-400">(optional)</span>
          </label>
          <select id="rule-type" {...register("type")} className={input} aria-describedby={described("type")}>
            <option value="">Any type</option>
            {[...new Set([...(types.data ?? []), ...(type ? [type] : [])])].map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
          {kind === "circuit" ? (
            <p className="mt-1 text-xs text-slate-500">
              A type counts its own circuit breaker and those of the hosts its commands go to.
            </p>
          ) : null}
          <FieldError id="rule-type-error" messages={msgs("type")} />
        </div>

        {kind === "latency" ? (
          <div>
            <label htmlFor="rule-percentile" className={label}>
              Percentile
            </label>
            <div className="relative">
              <input
                id="rule-percentile"
                type="number"
                min={0}
                max={100}
                step="any"
                inputMode="decimal"
                {...register("percentile")}
                className={`${input} pl-7`}
                aria-invalid={!!errors.percentile}
                aria-describedby={described("percentile")}
              />
              <span className="pointer-events-none absolute inset-y-0 left-3 flex items-center text-sm text-slate-500">
                p
              </span>
            </div>
            <p className="mt-1 text-xs text-slate-500">
              Of the time from receipt to finish: 50 is the median, 95 (the default) leaves out the slowest 5%.
            </p>
            <FieldError id="rule-percentile-error" messages={msgs("percentile")} />
          </div>
        ) : null}

        {WINDOWED.includes(kind) ? (
          <DurationField
            name="windowSeconds"
            title="Window"
            amount={register("windowSeconds.amount")}
            unit={register("windowSeconds.unit", { setValueAs: Number })}
            help={
              kind === "count"
                ? "Counts the commands that entered the states within this window."
                : "Looks at the commands finished within this window."
            }
            messages={msgs("windowSeconds")}
          />
        ) : null}
        {kind === "stuck" ? (
          <DurationField
            name="ageSeconds"
            title="Age"
            amount={register("ageSeconds.amount")}
            unit={register("ageSeconds.unit", { setValueAs: Number })}
            help="Fires for commands in the states for longer than this."
            messages={msgs("ageSeconds")}
          />
        ) : null}

        <div>
          <label htmlFor="rule-threshold" className={label}>
            Threshold
          </label>
          <div className="relative">
            <input
              id="rule-threshold"
              type="number"
              min={0}
              max={kind === "rate" ? 100 : undefined}
              step={kind === "circuit" ? 1 : "any"}
              inputMode="decimal"
              {...register("threshold")}
              className={`${input} ${kind === "rate" || kind === "latency" ? "pr-8" : ""}`}
              aria-invalid={!!errors.threshold}
              aria-describedby={described("threshold")}
            />
            {kind === "rate" || kind === "latency" ? (
              <span className="pointer-events-none absolute inset-y-0 right-3 flex items-center text-sm text-slate-500">
                {kind === "rate" ? "%" : "s"}
              </span>
            ) : null}
          </div>
          <p className="mt-1 text-xs text-slate-500">
            {kind === "rate"
              ? "Fires when at least this percentage of finished commands failed or hit an exception."
              : kind === "latency"
                ? "Fires when the percentile reaches this many seconds."
                : kind === "circuit"
                  ? "Fires while at least this many circuit breakers are open or half-open (default 1)."
                  : "Fires when the number of commands reaches this value."}
          </p>
          <FieldError id="rule-threshold-error" messages={msgs("threshold")} />
        </div>

        <div>
          <label htmlFor="rule-recipients" className={label}>
            Recipients
          </label>
          <textarea
            id="rule-recipients"
            rows={3}
            {...register("recipients")}
            placeholder={"oncall@example.com\nops@example.com"}
            className={`${input} font-mono text-xs`}
            aria-invalid={!!errors.recipients}
            aria-describedby={described("recipients")}
          />
          <p className="mt-1 text-xs text-slate-500">
            Email addresses, separated by commas or new lines (none if the rule has a webhook).
          </p>
          <FieldError id="rule-recipients-error" messages={msgs("recipients")} />
        </div>

        <div>
          <label htmlFor="rule-webhooks" className={label}>
            Webhooks <span className="font-normal text-slate-400">(optional)</span>
          </label>
          <textarea
            id="rule-webhooks"
            rows={2}
            {...register("webhooks")}
            placeholder="https://hooks.slack.com/services/…"
            className={`${input} font-mono text-xs`}
            aria-invalid={!!errors.webhooks}
            aria-describedby={described("webhooks")}
          />
          <p className="mt-1 text-xs text-slate-500">
            URLs, one per line: each alert is POSTed to them as JSON with a one-line <code>text</code> (a chat
            incoming-webhook shows it as is), signed in <code>X-Conveyor-Signature</code> with the rule&apos;s webhook
            secret.
          </p>
          <FieldError id="rule-webhooks-error" messages={msgs("webhooks")} />
        </div>

        <DurationField
          name="cooldownSeconds"
          title="Repeat every"
          amount={register("cooldownSeconds.amount")}
          unit={register("cooldownSeconds.unit", { setValueAs: Number })}
          help="While it keeps firing, the alert is sent again no sooner than this (1 minute to 7 days)."
          messages={msgs("cooldownSeconds")}
        />

        <div className="space-y-1.5">
          <label className="flex items-center gap-2 text-sm text-slate-700">
            <input type="checkbox" {...register("notifyOnResolve")} />
            Notify when resolved
          </label>
          <label className="flex items-center gap-2 text-sm text-slate-700">
            <input type="checkbox" {...register("enabled")} />
            Enabled
          </label>
          <FieldError
            id="rule-enabled-error"
            messages={[...msgs("enabled"), ...msgs("notifyOnResolve"), ...msgs("silencedUntil")]}
          />
        </div>

        {elsewhere.length ? (
          <div role="alert" className="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
            <ul className="list-disc pl-5">
              {elsewhere.map((e) => (
                <li key={e}>{e}</li>
              ))}
            </ul>
          </div>
        ) : onFields ? (
          <p role="alert" className="text-sm font-medium text-red-700">
            Check the fields marked above.
          </p>
        ) : m.error ? (
          <ErrorBox error={m.error} title={rule ? "Could not save the rule" : "Could not create the rule"} />
        ) : null}

        <div className="flex items-center gap-2">
          <button type="submit" className={btn.primary} disabled={m.isPending}>
            {rule ? "Save changes" : "Create rule"}
          </button>
          {rule ? (
            <button type="button" className={btn.secondary} onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
    </Panel>
  );
}
