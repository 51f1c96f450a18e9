// What happened to an application, in words, and the long-polls that keep it current without reloading:
// `?wait=25` until it is decided, then `?wait=25&stage=S` until its stage moves on. Each poll returns as soon
// as the change is visible; the gateway holds no database connection while it waits.

import { words } from "../dom.js";

const FINAL_STAGES = new Set(["hired", "declined"]);
// Polls start at least this far apart, so two read models that disagree for a moment cannot make a busy loop.
const MIN_INTERVAL_MS = 1000;

export function statusText(application) {
  if (application.status === "pending") return "Submitted: waiting for the decision…";
  if (application.status === "rejected") return `Not accepted: ${words(application.rejection_reason)}.`;
  if (!application.stage || application.stage === "submitted") return "Accepted: the employer will review it.";
  return `Accepted, now at stage: ${words(application.stage)}.`;
}

export function isSettled(application) {
  return application.status === "rejected" || FINAL_STAGES.has(application.stage);
}

// Calls `onChange(application)` on each change until it is settled or `signal` aborts.
export async function followDecision(api, applicationId, signal, onChange, { stages = false } = {}) {
  let known = null;
  while (!signal.aborted) {
    const started = Date.now();
    const query = { wait: 25 };
    if (known && known.status !== "pending") query.stage = known.stage || "submitted";
    const application = await api.request("GET", `/v1/applications/${applicationId}`, { query, signal });
    const changed = !known || application.status !== known.status || application.stage !== known.stage;
    known = application;
    if (changed) onChange(application);
    if (application.status !== "pending" && (!stages || isSettled(application))) return application;
    const early = MIN_INTERVAL_MS - (Date.now() - started);
    if (early > 0) await new Promise((resolve) => setTimeout(resolve, early));
  }
  return known;
}
