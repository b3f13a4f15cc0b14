/**
 * A thin typed client of the EHR platform's business API.
 *
 * Types come from `schema.d.ts`, generated from `openapi.json` by openapi-typescript
 * (`npm run generate`); requests go through openapi-fetch, so paths, parameters, bodies and
 * answers are checked by the compiler. Errors are RFC 9457 problem documents with a stable `code`.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths };
export type Problem = components["schemas"]["ProblemDetails"];
export type TokenResponse = components["schemas"]["TokenResponse"];
export type MfaChallenge = components["schemas"]["MfaChallengeResponse"];

export type EhrClient = Client<paths>;

export interface EhrClientOptions {
  /** The API's origin, e.g. `https://ehr.example.org` (no trailing `/api`). */
  baseUrl: string;
  /** Returns the current access token (or undefined before login). */
  token?: () => string | undefined;
  fetch?: typeof globalThis.fetch;
}

/** A client that adds `Authorization: Bearer …` to every request once a token is known. */
export function createEhrClient(options: EhrClientOptions): EhrClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const bearer: Middleware = {
    onRequest({ request }) {
      const token = options.token?.();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  };
  client.use(bearer);
  return client;
}

/** Whether a login answer asks for the second factor (`POST /api/auth/login/mfa` next). */
export function needsMfa(answer: TokenResponse | MfaChallenge): answer is MfaChallenge {
  return "mfa_required" in answer && answer.mfa_required === true;
}

/** Whether a failed call's body is one of our problem documents. */
export function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && "code" in body && "status" in body;
}
