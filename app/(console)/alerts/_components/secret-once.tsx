"use client";
// A rule's webhook secret, shown the one time the server answers it (at
// creation, or a rotation): copy it now, it cannot be shown again.
import { btn, CopyButton } from "@/app/_components/ui";

export function SecretOnce({ secret, title, onDismiss }: { secret: string; title: string; onDismiss: () => void }) {
  return (
    <section className="rounded-xl border border-amber-300 bg-amber-50 p-4 shadow-sm" aria-label={title}>
      <h2 className="text-sm font-semibold text-amber-900">{title}: copy it now, it is shown only once</h2>
      <p className="mt-1 text-xs text-amber-800">
        Webhook receivers check <code>X-Conveyor-Signature</code> (<code>sha256=</code> HMAC-SHA256 of the raw body)
        with it. It cannot be shown again: rotate it to get a new one.
      </p>
      <div className="mt-3 flex items-center gap-2">
        <code
          aria-label="Webhook secret"
          className="min-w-0 flex-1 break-all rounded-lg border border-amber-200 bg-white px-2 py-1.5 font-mono text-xs text-slate-800"
        >
          {secret}
        </code>
        <CopyButton text={secret} label="Copy webhook secret" />
      </div>
      <button type="button" className={`${btn.secondary} mt-3`} onClick={onDismiss}>
        I have stored it
      </button>
    </section>
  );
}
