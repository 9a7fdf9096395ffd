"use client";
// Edit & retry (DESIGN §9) on the command page: a button beside the other
// actions (disabled, with the server's reason, where it cannot apply: the
// same preview the other buttons read), and its dialog: the payload as JSON
// in a text box prefilled with the current one (secrets masked, and kept when
// left so), checked as it is typed (syntax, and the type's schema when the
// console has it: ./payload-check.ts); what only the server can check comes
// back as issues and is shown at the field they name. After it ran, the dialog
// shows what was updated and what was skipped, and why.
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { TRPCClientError } from "@trpc/client";
import { ACTION_FROM } from "@/server/engine/actions";
import { useTRPC, useTRPCClient } from "./trpc";
import { ResultView } from "./actions";
import { btn, ErrorBox, input, label } from "./ui";
import { cx } from "./cx";
import { changedFields, checkPayloadText, pathText, type PayloadIssue } from "./payload-check";

type Command = { id: string; type: string; payload?: unknown; needsReconcile: boolean };
type Result = { updated: string[]; skipped: { id: string; reason: string }[] };

const HELP = "Stores the corrected payload and runs the command again, under the same id and idempotency key.";

export function EditRetryButton({ command, size = "md" }: { command: Command; size?: "sm" | "md" }) {
  const trpc = useTRPC();
  const [open, setOpen] = useState(false);
  // The same query (and cache entry) as the other action buttons of this command.
  const preview = useQuery(trpc.commands.preview.queryOptions({ ids: [command.id] }, { refetchInterval: 3_000 }));
  const p = preview.data?.actions.editAndRetry;
  const disabled = !p || p.change === 0;
  const title = !preview.data
    ? preview.error
      ? `Could not check whether this applies: ${preview.error.message}`
      : "Checking whether this applies…"
    : p && p.change > 0
      ? HELP
      : `Not available: ${p?.skipped.map((s) => s.reason).join("; ") ?? "unknown"}`;
  return (
    <>
      <button
        type="button"
        disabled={disabled}
        title={title}
        className={`${btn.secondary} ${size === "sm" ? "px-2.5 py-1 text-xs" : ""}`}
        onClick={() => setOpen(true)}
      >
        Edit &amp; retry
      </button>
      {open ? <EditRetryDialog command={command} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

/** The server's issues: those under `payload` (path below it), those of `reason`, and the rest. */
function splitIssues(err: unknown) {
  const all =
    err instanceof TRPCClientError
      ? (((err.data as { issues?: PayloadIssue[] } | undefined)?.issues ?? []) as PayloadIssue[])
      : [];
  return {
    payload: all.filter((i) => i.path[0] === "payload").map((i) => ({ ...i, path: i.path.slice(1) })),
    reason: all.filter((i) => i.path[0] === "reason").map((i) => i.message),
    other: all.filter((i) => i.path[0] !== "payload" && i.path[0] !== "reason"),
  };
}

const issueLine = (i: PayloadIssue) => (i.path.length ? `${pathText(i.path)}: ${i.message}` : i.message);

function EditRetryDialog({ command, onClose }: { command: Command; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const id = useId();
  // Prefilled once, with the payload as the page showed it when the dialog opened.
  const [initial] = useState(() => JSON.stringify(command.payload, null, 2));
  const [text, setText] = useState(initial);
  const [reason, setReason] = useState("");
  const [tried, setTried] = useState(false);
  // The server's issues apply to the text they were sent with: cleared when it changes.
  const [serverFor, setServerFor] = useState<{ text: string; reason: string } | null>(null);
  const client = useTRPCClient();
  const trpc = useTRPC();
  const qc = useQueryClient();

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const check = useMemo(() => checkPayloadText(text, command.type), [text, command.type]);
  const changed = useMemo(
    () => ("value" in check && check.value !== undefined ? changedFields(command.payload, check.value) : []),
    [check, command.payload],
  );

  const m = useMutation({
    mutationFn: (v: { payload: unknown; reason: string }): Promise<Result> =>
      client.commands.editAndRetry.mutate({ id: command.id, payload: v.payload, reason: v.reason }),
    onSuccess: async () => {
      await Promise.all([
        qc.invalidateQueries(trpc.commands.pathFilter()),
        qc.invalidateQueries(trpc.audit.pathFilter()),
      ]);
    },
  });
  const server = splitIssues(m.error);
  const serverPayload = serverFor?.text === text ? server.payload : [];
  const serverReason = serverFor?.reason === reason ? server.reason : [];
  const payloadIssues = check.ok ? serverPayload : check.issues;
  const reasonMissing = tried && !reason.trim();
  const reasonMessages = [...(reasonMissing ? ["Say why you edit and retry it."] : []), ...serverReason];
  // Shown once the operator has changed the text or tried to send; the prefilled payload is not scolded up front.
  const showPayload = payloadIssues.length > 0 && (tried || text !== initial || serverPayload.length > 0);

  const goToError = () => {
    const el = area.current;
    if (!el) return;
    el.focus();
    if (!check.ok && check.syntax && check.syntax.offset >= 0)
      el.setSelectionRange(check.syntax.offset, Math.min(check.syntax.offset + 1, text.length));
  };

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (!check.ok) return goToError();
    if (!reason.trim()) return;
    setServerFor({ text, reason });
    m.mutate({ payload: check.value, reason: reason.trim() });
  };

  return (
    <dialog
      ref={ref}
      role="dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-desc`}
      onClose={onClose}
      className={cx(
        "m-auto w-[min(44rem,calc(100vw-2rem))] rounded-xl border border-slate-200 bg-white p-0 text-slate-900 shadow-xl",
        "backdrop:bg-slate-900/40 backdrop:backdrop-blur-[1px]",
      )}
    >
      <form onSubmit={submit} noValidate className="flex flex-col">
        <div className="border-b border-slate-100 px-5 py-4">
          <h2 id={`${id}-title`} className="text-base font-semibold">
            Edit &amp; retry this {command.type} command?
          </h2>
          <p id={`${id}-desc`} className="mt-1 text-sm text-slate-500">
            {HELP} Applies to {ACTION_FROM.editAndRetry.join(", ")} commands; others are skipped.
          </p>
        </div>

        {m.data ? (
          <ResultView result={m.data} />
        ) : (
          <div className="space-y-4 px-5 py-4">
            {command.needsReconcile ? (
              <p
                className="rounded-lg border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900"
                data-testid="reconcile-note"
              >
                The last attempt&apos;s outcome is unknown. The next attempt first asks the backend what became of it
                (with this payload&apos;s status query): if it was done, the command succeeds and the new payload is not
                sent.
              </p>
            ) : null}
            <div>
              <div className="flex items-baseline justify-between gap-2">
                <label htmlFor={`${id}-payload`} className={label}>
                  Payload
                </label>
                <span className="text-xs text-slate-500">
                  JSON
                  {check.ok ? (
                    <>
                      {" · "}
                      <button
                        type="button"
                        className={btn.link + " text-xs"}
                        onClick={() => setText(JSON.stringify(check.value, null, 2))}
                      >
                        Format
                      </button>
                    </>
                  ) : null}
                </span>
              </div>
              <textarea
                id={`${id}-payload`}
                ref={area}
                rows={14}
                spellCheck={false}
                autoCapitalize="off"
                autoCorrect="off"
                value={text}
                onChange={(e) => setText(e.target.value)}
                onKeyDown={(e) => {
                  // Tab indents (two spaces) instead of leaving the box; Escape still closes the dialog.
                  if (e.key !== "Tab" || e.shiftKey) return;
                  e.preventDefault();
                  const el = e.currentTarget;
                  const { selectionStart: s, selectionEnd: end } = el;
                  setText(text.slice(0, s) + "  " + text.slice(end));
                  requestAnimationFrame(() => el.setSelectionRange(s + 2, s + 2));
                }}
                aria-invalid={showPayload || undefined}
                aria-describedby={showPayload ? `${id}-payload-error` : `${id}-payload-note`}
                className={cx(
                  input,
                  "font-mono text-xs leading-relaxed",
                  showPayload && "border-red-400 focus:border-red-500 focus:ring-red-500/20",
                )}
                autoFocus
              />
              {showPayload ? (
                <div id={`${id}-payload-error`} className="mt-1 text-xs font-medium text-red-700" role="alert">
                  {payloadIssues.length === 1 ? (
                    <p>{issueLine(payloadIssues[0]!)}</p>
                  ) : (
                    <ul className="list-disc pl-4">
                      {payloadIssues.map((i) => (
                        <li key={issueLine(i)}>{issueLine(i)}</li>
                      ))}
                    </ul>
                  )}
                  {!check.ok && check.syntax && check.syntax.offset >= 0 ? (
                    <button type="button" className={btn.link + " text-xs"} onClick={goToError}>
                      Go to line {check.syntax.line}
                    </button>
                  ) : null}
                </div>
              ) : (
                <p id={`${id}-payload-note`} className="mt-1 text-xs text-slate-500">
                  {changed.length
                    ? `Changes ${changed.map((f) => f || "the payload").join(", ")}. `
                    : "Nothing changed yet (sent as it is, this is a plain retry). "}
                  Secrets show masked (••••); left as they are, they are kept.
                </p>
              )}
            </div>
            <div>
              <label htmlFor={`${id}-reason`} className={label}>
                Reason (required)
              </label>
              <textarea
                id={`${id}-reason`}
                aria-label="Reason"
                rows={2}
                value={reason}
                maxLength={1000}
                onChange={(e) => setReason(e.target.value)}
                aria-invalid={reasonMessages.length > 0 || undefined}
                placeholder="Why? It goes into the audit log, with the payload before and after."
                className={input}
              />
              {reasonMessages.length ? (
                <p className="mt-1 text-xs font-medium text-red-700">{reasonMessages.join("; ")}</p>
              ) : null}
            </div>
            {m.error && (server.other.length || (!server.payload.length && !server.reason.length)) ? (
              <ErrorBox error={m.error} title="Edit & retry refused" />
            ) : null}
          </div>
        )}

        <div className="flex items-center justify-end gap-2 border-t border-slate-100 bg-slate-50 px-5 py-3">
          <button type="button" className={btn.secondary} onClick={() => ref.current?.close()}>
            {m.data ? "Done" : "Close"}
          </button>
          {m.data ? null : (
            <button type="submit" className={btn.primary} disabled={m.isPending}>
              Edit &amp; retry
            </button>
          )}
        </div>
      </form>
    </dialog>
  );
}
