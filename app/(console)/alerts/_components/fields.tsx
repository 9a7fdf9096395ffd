// Inputs of the rule form: a field's error line, and a duration as an amount
// and a unit (the rule stores seconds).
import type { UseFormRegisterReturn } from "react-hook-form";
import { input, label } from "@/app/_components/ui";
import { UNITS } from "./rule-values";

export function FieldError({ id, messages }: { id: string; messages: string[] }) {
  if (!messages.length) return null;
  return (
    <p id={id} className="mt-1 text-xs font-medium text-red-700">
      {messages.join("; ")}
    </p>
  );
}

/** `amount` and `unit`: the registrations of the form's Dur field `name` (its unit as a number). */
export function DurationField({
  name,
  title,
  help,
  messages,
  amount,
  unit,
}: {
  name: string;
  title: string;
  help?: string;
  messages: string[];
  amount: UseFormRegisterReturn;
  unit: UseFormRegisterReturn;
}) {
  const id = `rule-${name}`;
  return (
    <div>
      <label htmlFor={id} className={label}>
        {title}
      </label>
      <div className="flex gap-2">
        <input
          id={id}
          type="number"
          min={0}
          step="any"
          inputMode="decimal"
          {...amount}
          className={input}
          aria-invalid={messages.length > 0}
          aria-describedby={messages.length ? `${id}-error` : undefined}
        />
        <select aria-label={`${title} unit`} {...unit} className={`${input} w-32`}>
          {UNITS.map((u) => (
            <option key={u.value} value={u.value}>
              {u.label}
            </option>
          ))}
        </select>
      </div>
      {help ? <p className="mt-1 text-xs text-slate-500">{help}</p> : null}
      <FieldError id={`${id}-error`} messages={messages} />
    </div>
  );
}
