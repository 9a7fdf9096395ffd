import { requireUser } from "@/lib/session";
import { Empty, PageHeader, Panel } from "@/app/_components/ui";

export const metadata = { title: "Alerts · Conveyor" };

export default async function Page() {
  await requireUser("/alerts");
  return (
    <>
      <PageHeader title="Alerts" subtitle="Email alerts from rules you configure." />
      <Panel>
        <Empty title="Alert rules arrive soon">
          Rules on counts, stuck commands, failure rates and backlog, with their firing history, will be configured here. Until then, watch the overview and the Exception tab of the commands list.
        </Empty>
      </Panel>
    </>
  );
}
