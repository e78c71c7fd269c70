// Compiled by tests/test_sdk.py with `tsc --noEmit --strict` against the generated types.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const client = createClient<paths>({
  baseUrl: "http://127.0.0.1:8000",
  headers: { Authorization: "Bearer dc_example" },
});

export async function keepTheStrategy(dealId: string): Promise<string | undefined> {
  const { data, error } = await client.PUT("/v1/deals/{deal_id}/strategy", {
    params: { path: { deal_id: dealId }, header: { "If-Match": "*" } },
    body: { customer_objectives: "Cut onboarding time in half", risks: ["Budget freeze"] },
  });
  if (error) {
    return error.code; // e.g. "strategy_owned_by_seller"
  }
  return data.customer_objectives ?? undefined;
}
