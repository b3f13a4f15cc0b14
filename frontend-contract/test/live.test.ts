/**
 * The generated client against the live API (run by tests/integration/contract): log in, read a
 * patient, and get a typed problem document for a patient that does not exist.
 *
 * Environment: EHR_API_URL, EHR_TENANT, EHR_USERNAME, EHR_PASSWORD, EHR_PATIENT_ID.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { createEhrClient, isProblem, needsMfa } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

test("log in and read a patient through the generated client", async () => {
  let token: string | undefined;
  const api = createEhrClient({ baseUrl: env("EHR_API_URL"), token: () => token });

  const login = await api.POST("/api/auth/login", {
    body: { tenant: env("EHR_TENANT"), username: env("EHR_USERNAME"), password: env("EHR_PASSWORD") },
  });
  assert.equal(login.response.status, 200, JSON.stringify(login.error));
  assert.ok(login.data);
  assert.ok(!needsMfa(login.data), "the test user has no second factor");
  token = login.data.access_token;
  assert.equal(login.data.token_type.toLowerCase(), "bearer");

  const patientId = env("EHR_PATIENT_ID");
  const patient = await api.GET("/api/patients/{patient_id}", {
    params: { path: { patient_id: patientId } },
  });
  assert.equal(patient.response.status, 200, JSON.stringify(patient.error));
  assert.equal(patient.data?.id, patientId);

  const missing = await api.GET("/api/patients/{patient_id}", {
    params: { path: { patient_id: "00000000-0000-4000-8000-000000000000" } },
  });
  assert.equal(missing.response.status, 404);
  assert.ok(isProblem(missing.error), JSON.stringify(missing.error));
  assert.equal(missing.response.headers.get("content-type")?.split(";")[0], "application/problem+json");
  assert.ok(missing.error.code.length > 0);
});

test("without a token the API answers 401 with a problem document", async () => {
  const anonymous = createEhrClient({ baseUrl: env("EHR_API_URL") });
  const refused = await anonymous.GET("/api/patients/{patient_id}", {
    params: { path: { patient_id: env("EHR_PATIENT_ID") } },
  });
  assert.equal(refused.response.status, 401);
  assert.ok(isProblem(refused.error));
});
