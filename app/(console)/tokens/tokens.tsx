"use client";
import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_components/trpc";
import {
  btn,
  CopyButton,
  Empty,
  ErrorBox,
  input,
  label,
  Loading,
  PageHeader,
  Panel,
  RelTime,
} from "@/app/_components/ui";
import { cx } from "@/app/_components/cx";

export function Tokens() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const list = useQuery(trpc.tokens.list.queryOptions());
  const [name, setName] = useState("");
  const [scope, setScope] = useState<"client" | "admin">("client");
  const create = useMutation(
    trpc.tokens.create.mutationOptions({
      onSuccess: () => {
        setName("");
        void qc.invalidateQueries(trpc.tokens.list.pathFilter());
      },
    }),
  );
  const revoke = useMutation(
    trpc.tokens.revoke.mutationOptions({ onSuccess: () => void qc.invalidateQueries(trpc.tokens.list.pathFilter()) }),
  );
  const [rotating, setRotating] = useState<{ id: string; name: string } | null>(null);

  return (
    <>
      <PageHeader
        title="API tokens"
        subtitle="Client tokens submit commands and read their own; admin tokens can also call the console API."
      />
      <div className="grid items-start gap-6 xl:grid-cols-3">
        <div className="space-y-6">
          <Panel title="New token">
            <form
              className="space-y-4"
              onSubmit={(e) => {
                e.preventDefault();
                create.mutate({ name: name.trim(), scope });
              }}
            >
              <div>
                <label htmlFor="token-name" className={label}>
                  Name
                </label>
                <input
                  id="token-name"
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                  required
                  maxLength={200}
                  placeholder="e.g. billing-service"
                  className={input}
                />
              </div>
              <fieldset>
                <legend className={label}>Scope</legend>
                <div className="flex gap-2">
                  {(["client", "admin"] as const).map((s) => (
                    <label
                      key={s}
                      className={cx(
                        "flex flex-1 cursor-pointer items-center gap-2 rounded-lg border px-3 py-2 text-sm",
                        scope === s ? "border-slate-900 bg-slate-50" : "border-slate-300",
                      )}
                    >
                      <input type="radio" name="scope" value={s} checked={scope === s} onChange={() => setScope(s)} />
                      {s === "client" ? "Client" : "Admin"}
                    </label>
                  ))}
                </div>
              </fieldset>
              {create.error ? <ErrorBox error={create.error} title="Could not create the token" /> : null}
              <button type="submit" className={btn.primary} disabled={create.isPending || !name.trim()}>
                Create token
              </button>
            </form>
          </Panel>
          {create.data ? (
            <section className="rounded-xl border border-amber-300 bg-amber-50 p-4 shadow-sm" aria-label="New token">
              <h2 className="text-sm font-semibold text-amber-900">Copy these now: they are shown only once</h2>
              <p className="mt-1 text-xs text-amber-800">
                The token authenticates calls (Authorization: Bearer …). The signing secret verifies the
                X-Conveyor-Signature of callbacks.
              </p>
              {[
                ["Token", create.data.token],
                ["Signing secret", create.data.signingSecret],
              ].map(([k, v]) => (
                <div key={k} className="mt-3">
                  <p className="mb-1 text-xs font-medium text-amber-900">{k}</p>
                  <div className="flex items-center gap-2">
                    <code className="min-w-0 flex-1 break-all rounded-lg border border-amber-200 bg-white px-2 py-1.5 font-mono text-xs text-slate-800">
                      {v}
                    </code>
                    <CopyButton text={v!} label={`Copy ${k!.toLowerCase()}`} />
                  </div>
                </div>
              ))}
              <button type="button" className={`${btn.secondary} mt-4`} onClick={() => create.reset()}>
                I have stored them
              </button>
            </section>
          ) : null}
        </div>

        <Panel title="Tokens" className="xl:col-span-2" bodyClass="">
          {list.error ? (
            <div className="p-4">
              <ErrorBox error={list.error} title="Could not load tokens" onRetry={() => list.refetch()} />
            </div>
          ) : !list.data ? (
            <Loading />
          ) : list.data.items.length === 0 ? (
            <Empty title="No API token yet">Create one for each service that submits commands.</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <thead className="border-b border-slate-200 bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
                  <tr>
                    <th className="px-4 py-2.5">Name</th>
                    <th className="px-3 py-2.5">Scope</th>
                    <th className="px-3 py-2.5">Prefix</th>
                    <th className="px-3 py-2.5">Created</th>
                    <th className="px-3 py-2.5">Last used</th>
                    <th className="px-3 py-2.5">Status</th>
                    <th className="px-4 py-2.5" />
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {list.data.items.map((t) => (
                    <tr key={t.id} className={t.revokedAt ? "text-slate-400" : ""}>
                      <td className="px-4 py-2.5 font-medium">{t.name}</td>
                      <td className="px-3 py-2.5">
                        <span
                          className={cx(
                            "rounded-full px-2 py-0.5 text-xs font-medium",
                            t.scope === "admin" ? "bg-slate-900 text-white" : "bg-slate-100 text-slate-700",
                          )}
                        >
                          {t.scope}
                        </span>
                      </td>
                      <td className="px-3 py-2.5 font-mono text-xs">{t.prefix}…</td>
                      <td className="px-3 py-2.5 text-slate-500">
                        <RelTime iso={t.createdAt} /> <span className="text-xs">by {t.createdBy}</span>
                      </td>
                      <td className="px-3 py-2.5 text-slate-500">
                        {t.lastUsedAt ? <RelTime iso={t.lastUsedAt} /> : "never"}
                      </td>
                      <td className="px-3 py-2.5">
                        {t.revokedAt ? (
                          <span className="text-xs">
                            revoked <RelTime iso={t.revokedAt} />
                          </span>
                        ) : (
                          <span className="text-xs font-medium text-emerald-700">active</span>
                        )}
                      </td>
                      <td className="px-4 py-2.5 text-right">
                        {t.revokedAt ? null : (
                          <div className="flex justify-end gap-4">
                            <button
                              type="button"
                              className="text-sm font-medium text-sky-700 hover:underline"
                              aria-label={`Rotate the signing secret of ${t.name}`}
                              onClick={() => setRotating({ id: t.id, name: t.name })}
                            >
                              Rotate secret
                            </button>
                            <button
                              type="button"
                              className="text-sm font-medium text-red-700 hover:underline disabled:opacity-50"
                              disabled={revoke.isPending}
                              onClick={() => {
                                if (
                                  window.confirm(`Revoke the token "${t.name}"? Calls with it are refused from now on.`)
                                )
                                  revoke.mutate({ id: t.id });
                              }}
                            >
                              Revoke
                            </button>
                          </div>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {revoke.error ? (
            <div className="p-4">
              <ErrorBox error={revoke.error} title="Could not revoke" />
            </div>
          ) : null}
        </Panel>
      </div>
      {rotating ? <RotateSecretDialog token={rotating} onClose={() => setRotating(null)} /> : null}
    </>
  );
}

/** Asks before rotating a token's signing secret, then shows the new one, once. */
function RotateSecretDialog({ token, onClose }: { token: { id: string; name: string }; onClose: () => void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const rotate = useMutation(
    trpc.tokens.rotateSecret.mutationOptions({ onSuccess: () => void qc.invalidateQueries(trpc.audit.pathFilter()) }),
  );
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby={`${id}-title`}
      onClose={onClose}
      className="m-auto w-[min(34rem,calc(100vw-2rem))] rounded-xl border border-slate-200 bg-white p-0 text-slate-900 shadow-xl backdrop:bg-slate-900/40"
    >
      <div className="border-b border-slate-100 px-5 py-4">
        <h2 id={`${id}-title`} className="text-base font-semibold">
          {rotate.data ? `New signing secret of "${token.name}"` : `Rotate the signing secret of "${token.name}"?`}
        </h2>
        <p className="mt-1 text-sm text-slate-500">
          {rotate.data
            ? "Copy it now: it is shown only once. Callbacks are signed with it from now on."
            : "Callbacks of this token's commands are signed with a new secret from now on;" +
              " the old one stops verifying them at once, so update the receiving service right after." +
              " The token itself does not change."}
        </p>
      </div>
      <div className="px-5 py-4">
        {rotate.data ? (
          <div className="flex items-center gap-2">
            <code
              aria-label="New signing secret"
              className="min-w-0 flex-1 break-all rounded-lg border border-amber-200 bg-amber-50 px-2 py-1.5 font-mono text-xs text-slate-800"
            >
              {rotate.data.signingSecret}
            </code>
            <CopyButton text={rotate.data.signingSecret} label="Copy signing secret" />
          </div>
        ) : rotate.error ? (
          <ErrorBox error={rotate.error} title="Could not rotate the secret" />
        ) : (
          <p className="text-sm text-slate-600">The change is written to the audit log.</p>
        )}
      </div>
      <div className="flex justify-end gap-2 border-t border-slate-100 bg-slate-50 px-5 py-3">
        {rotate.data ? (
          <button type="button" className={btn.primary} onClick={() => ref.current?.close()}>
            I have stored it
          </button>
        ) : (
          <>
            <button type="button" className={btn.secondary} onClick={() => ref.current?.close()}>
              Cancel
            </button>
            <button
              type="button"
              className={btn.danger}
              disabled={rotate.isPending}
              onClick={() => rotate.mutate({ id: token.id })}
            >
              Rotate secret
            </button>
          </>
        )}
      </div>
    </dialog>
  );
}
