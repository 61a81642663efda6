/**
 * The Elysia application: the two routes of the External Provisioning API and the error
 * answers around them. It reads what to serve from a `ProvisioningService`, so a reload
 * swaps the state without touching the routes.
 */
import { Elysia } from "elysia";
import { apiVersion } from "./schemas.ts";
import { errorResponse, quoteRequestText } from "./errors.ts";
import { provisioningInformationRoute } from "./routes/provisioning-information.ts";
import { reprovisionRoute } from "./routes/reprovision.ts";
import type { ProvisioningService } from "../provisioning/service.ts";

/** Paths the API serves and the methods each allows, for 405 answers. */
const allowedMethods: Record<string, string> = {
  "/device/provisioninginformation": "GET",
  "/device/reprovision": "GET, POST",
};

/** Builds the application around the service that holds what to serve. */
export function createApp(service: ProvisioningService) {
  return new Elysia()
    .onError(({ code, error, request }) => answerError(code, error, request))
    .use(provisioningInformationRoute(service))
    .use(reprovisionRoute(service));
}

export type App = ReturnType<typeof createApp>;

function answerError(code: string | number, error: unknown, request: Request): Response {
  const path = pathOf(request.url);

  if (code === "NOT_FOUND") return answerNotFound(request.method, path);
  if (code === "VALIDATION" || code === "PARSE") return answerBadQuery(request.url);

  // Any other failure is ours: say so without detail; the log has the cause.
  const status =
    typeof (error as { status?: unknown }).status === "number"
      ? (error as { status: number }).status
      : 500;
  return errorResponse(
    status >= 400 && status < 600 ? status : 500,
    "the endpoint could not answer this request",
  );
}

/**
 * What the request handler refuses before Elysia sees it (as Elysia hooks they would cost
 * every request a call), where Elysia would answer otherwise than it should:
 * - HEAD, which Elysia routes to the GET handler, so HEAD /device/reprovision would run the
 *   hook and reload. iotedged never sends it: 405 with the same Allow as any other method
 *   the path does not serve (404 for an unknown path).
 * - api-version given more than once, of which Elysia keeps the last: the answer would
 *   depend on the order, and a POST with a wrong version first would still reprovision.
 *   iotedged sends one parameter, so only a query with several parts is looked into; an
 *   unknown path or a wrong method is still told so first, as with any other query.
 */
export function refuseBeforeRouting(request: Request): Response | undefined {
  if (request.method === "HEAD") return answerNotFound(request.method, pathOf(request.url));

  const url = request.url;
  const query = url.indexOf("?");
  if (query < 0 || url.indexOf("&", query) < 0 || apiVersionsIn(url).length < 2) {
    return undefined;
  }

  const served = allowedOn(pathOf(url))?.split(", ").includes(request.method);
  return served ? answerBadQuery(url) : undefined;
}

/** The methods a path allows; the router serves each path with one trailing slash too. */
function allowedOn(path: string): string | undefined {
  return allowedMethods[path] ?? allowedMethods[path.replace(/(?<=.)\/$/, "")];
}

function answerNotFound(method: string, path: string): Response {
  const allowed = allowedOn(path);

  if (allowed) {
    return errorResponse(
      405,
      `${quoteRequestText(method)} is not allowed on ${path}; use ${allowed}`,
      { allow: allowed },
    );
  }

  return errorResponse(
    404,
    `no such path: ${quoteRequestText(path)}; this endpoint serves GET /device/provisioninginformation and GET or POST /device/reprovision`,
  );
}

function answerBadQuery(url: string): Response {
  const versions = apiVersionsIn(url);
  const problem =
    versions.length === 0
      ? "the api-version query parameter is missing"
      : versions.length > 1
        ? "api-version is given more than once"
        : `api-version ${JSON.stringify(quoteRequestText(versions[0]!))} is not supported`;

  return errorResponse(400, `${problem}; call with ?api-version=${apiVersion}`);
}

/**
 * The values of every api-version parameter, decoded, read as the router reads the query:
 * from the first "?" on, a "#..." still part of the value it follows (a URL parser would
 * drop it), and a name that is not exactly api-version ("?api-version" after "??") not
 * taken for it.
 */
function apiVersionsIn(url: string): string[] {
  const start = url.indexOf("?");
  if (start < 0) return [];

  const versions: string[] = [];
  for (const pair of url.slice(start + 1).split("&")) {
    const equals = pair.indexOf("=");
    const name = equals < 0 ? pair : pair.slice(0, equals);
    if (decodeQueryPart(name) === "api-version") {
      versions.push(equals < 0 ? "" : decodeQueryPart(pair.slice(equals + 1)));
    }
  }
  return versions;
}

function decodeQueryPart(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return text;
  }
}

/** The origin every request is given before routing; a Unix socket has no host anyway. */
const plainOrigin = "http://localhost";

/**
 * The request with its URL's origin made `http://localhost`. Elysia finds the path by
 * looking for "/" from the 12th character on (its `handler.standardHostname`), which
 * skips into the path when the Host header is shorter than 4 characters ("Host: x"), and
 * a correct request was routed as a 404 or 405.
 */
export function withPlainOrigin(request: Request): Request {
  const url = request.url;
  if (url.startsWith(`${plainOrigin}/`)) return request;

  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  return new Request(plainOrigin + (start < 0 ? "/" : url.slice(start)), request);
}

/**
 * The path of a request URL without parsing it whole: the hot path logs it per request.
 * Bun gives a bare path, not a URL, when the Host header is not a valid host name (as a
 * client may send for a Unix socket), so both forms are handled.
 */
export function pathOf(url: string): string {
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";

  const query = url.indexOf("?", start);
  return query < 0 ? url.slice(start) : url.slice(start, query);
}
