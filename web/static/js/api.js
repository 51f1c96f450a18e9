// The one way pages talk to the gateway: JSON in and out, the session's tokens, and the API's own error bodies.
//
// A 401 on an expired access token is answered by one refresh (rotating the refresh token) and the call again.
// A 429 or 503 says when to come back (Retry-After): calls that are safe to repeat (reads, and writes carrying an
// Idempotency-Key) wait and retry by themselves, telling the page through `onWait`; others fail with that advice.

const SESSION_KEY = "jobstream.session";
const MAX_ATTEMPTS = 8;

export class ApiError extends Error {
  constructor(status, code, message, field, retryAfterS) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfterS = retryAfterS;
  }

  // What a person should read: the API's message, the field it names, and when to retry if it says so.
  describe() {
    const where = this.field ? ` (${this.field.replaceAll("_", " ")})` : "";
    const when = this.retryAfterS ? ` Try again in ${this.retryAfterS} s.` : "";
    return `${this.message}${where}.${when}`.replace(/\.\.$/, ".");
  }
}

export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryAfter(response) {
  const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) : 1;
}

export class Api {
  constructor(baseUrl, { onWait = () => {}, onSession = () => {} } = {}) {
    this.baseUrl = baseUrl;
    this.onWait = onWait;
    this.onSession = onSession;
    this.session = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    this.refreshing = null;
  }

  get user() {
    return this.session ? this.session.user : null;
  }

  saveSession(session) {
    this.session = session;
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
    this.onSession(this.user);
  }

  async register(fields) {
    this.saveSession(await this.request("POST", "/v1/auth/register", { body: fields, auth: false }));
  }

  async login(email, password) {
    this.saveSession(await this.request("POST", "/v1/auth/login", { body: { email, password }, auth: false }));
  }

  async logout() {
    try {
      if (this.session) await this.request("POST", "/v1/auth/logout", { retry: false });
    } finally {
      this.saveSession(null);
    }
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  // Every call: `query` (object; arrays repeat the name), `body` (JSON), `idempotencyKey`, `auth` (send the
  // access token, default true), `retry` (wait out 429/503 when safe, default true), `signal` (abort).
  async request(method, path, options = {}) {
    const { query, body, idempotencyKey, auth = true, signal } = options;
    const repeatable = method === "GET" || Boolean(idempotencyKey);
    const retry = options.retry !== false && repeatable;
    let refreshed = false;
    for (let attempt = 1; ; attempt += 1) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
      if (auth && this.session) headers.Authorization = `Bearer ${this.session.access_token}`;
      let response;
      try {
        response = await fetch(this.url(path, query), {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        if (!retry || attempt >= MAX_ATTEMPTS) {
          throw new ApiError(0, "unreachable", "Jobstream cannot be reached; check your connection", null, 2);
        }
        this.onWait({ status: 0, seconds: 2, message: "Jobstream cannot be reached" });
        await sleep(2000);
        continue;
      }
      if (response.status === 401 && auth && this.session && !refreshed && path !== "/v1/auth/refresh") {
        refreshed = true;
        if (await this.refresh()) continue;
      }
      if ((response.status === 429 || response.status === 503) && retry && attempt < MAX_ATTEMPTS) {
        const seconds = retryAfter(response);
        const answer = await response.json().catch(() => null);
        this.onWait({ status: response.status, seconds, message: answer?.error?.message || "Jobstream is busy" });
        await sleep(seconds * 1000);
        continue;
      }
      this.onWait(null);
      const answer = response.status === 204 ? null : await response.json().catch(() => null);
      if (!response.ok) {
        const error = answer?.error || {};
        const seconds = response.status === 429 || response.status === 503 ? retryAfter(response) : null;
        throw new ApiError(
          response.status,
          error.code || "http_error",
          error.message || `the request failed (HTTP ${response.status})`,
          error.field || null,
          seconds,
        );
      }
      return answer;
    }
  }

  url(path, query) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query || {})) {
      if (value === undefined || value === null || value === "") continue;
      for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(item));
    }
    return url.toString();
  }

  // One refresh at a time: refresh tokens rotate, and a second use of the old one would revoke the session.
  refresh() {
    if (!this.refreshing) {
      const token = this.session?.refresh_token;
      this.refreshing = (async () => {
        try {
          if (!token) return false;
          this.saveSession(
            await this.request("POST", "/v1/auth/refresh", { body: { refresh_token: token }, auth: false }),
          );
          return true;
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) this.saveSession(null);
          return false;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }
}
