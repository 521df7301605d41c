// A client as an integrator would write it: only the types generated from
// Keysmith's OpenAPI document (generated/<run>/schema.d.ts) and openapi-fetch.
// It must type-check (tsc) and then, run against a live server, create a
// service user and a key, rotate the key and revoke the old one.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

// Node's environment, without pulling in all of @types/node.
declare const process: { env: Record<string, string | undefined> };

const baseUrl = process.env.KEYSMITH_URL!;
const tenant = process.env.KEYSMITH_TENANT!;
const client = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${process.env.KEYSMITH_KEY}` },
});

function check<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${what}: HTTP ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

const path = { tenant };
const user = check(
  "create service user",
  await client.POST("/api/v1/tenants/{tenant}/service-users", {
    params: { path },
    body: { name: "generated-client", owner_email: "client@owner.test" },
  }),
);
const created = check(
  "create key",
  await client.POST("/api/v1/tenants/{tenant}/keys", {
    params: { path },
    body: { service_user_id: user.id, name: "from-the-generated-client", allowed_tools: ["echo"] },
  }),
);
const rotated = check(
  "rotate",
  await client.POST("/api/v1/tenants/{tenant}/keys/{id}/rotate", {
    params: { path: { tenant, id: created.id } },
  }),
);
const revoked = check(
  "revoke",
  await client.POST("/api/v1/tenants/{tenant}/keys/{id}/revoke", {
    params: { path: { tenant, id: created.id } },
    body: { reason: "rotated by the generated client" },
  }),
);
const missing = await client.GET("/api/v1/tenants/{tenant}/keys/{id}", {
  params: { path: { tenant, id: "ks_doesnotexist" } },
});
// The error body is typed too: the Error schema.
const code = missing.error?.error.code;
console.log(
  JSON.stringify({
    created: created.id,
    new: rotated.new.id,
    new_key_shown: rotated.new.key.length > 0,
    revoked: revoked.status,
    missing: [missing.response.status, code],
  }),
);
