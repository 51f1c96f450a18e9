// One job: its description and live counters; candidates apply here, its employers manage it from here.

import { ApiError, newIdempotencyKey } from "../api.js";
import { describe, field, formValues, h, messageBox, replace, showMessage, when } from "../dom.js";
import { followDecision, statusText } from "./status.js";

export async function render({ api, view, params, signal }) {
  const [jobId] = params;
  const job = await api.request("GET", `/v1/jobs/${jobId}`, { signal, auth: false });
  const user = api.user;
  const counters = job.counters || {};
  const facts = [
    job.location,
    job.remote ? "remote" : null,
    job.deadline ? `apply by ${when(job.deadline)}` : null,
    job.max_applications ? `${job.max_applications} places` : null,
  ].filter(Boolean);
  const parts = [
    h("p", { class: "back" }, h("a", { href: "#/jobs" }, "← All jobs")),
    h("h1", {}, job.title),
    h("p", { class: "meta" }, facts.join(" · ")),
    job.status === "closed" ? h("p", { class: "badge closed" }, "This job is closed.") : null,
    h("p", { class: "description" }, job.description),
    job.tags?.length ? h("p", { class: "tags" }, job.tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
    h(
      "p",
      { class: "counters", "data-testid": "job-counters" },
      `${counters.applications ?? 0} applications so far, ${counters.accepted ?? 0} accepted`,
    ),
  ];
  if (!user) {
    parts.push(h("p", {}, h("a", { href: `#/login?next=${encodeURIComponent(`#/jobs/${jobId}`)}` }, "Log in"), " or ", h("a", { href: "#/register" }, "register"), " to apply."));
  } else if (user.role === "candidate" && job.status === "open") {
    parts.push(applyForm(api, jobId, signal));
  } else if ((user.role === "employer" && user.company_id === job.company_id) || user.role === "admin") {
    parts.push(
      h(
        "p",
        { class: "actions" },
        h("a", { class: "button", href: `#/employer/jobs/${jobId}/applicants` }, "Applicants"),
        h("a", { class: "button", href: `#/employer/jobs/${jobId}/edit` }, "Edit"),
      ),
    );
  }
  replace(view, h("article", { class: "job" }, parts));
}

function applyForm(api, jobId, signal) {
  const message = messageBox();
  const status = h("p", { class: "status", "data-testid": "application-status", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Apply");
  const form = h(
    "form",
    { class: "panel", novalidate: true, "aria-label": "Apply" },
    h("h2", {}, "Apply"),
    field("Cover letter", h("textarea", { name: "cover_letter", rows: 6, required: true, maxlength: 10000 })),
    field("Résumé link", h("input", { name: "resume_url", type: "url", required: true, placeholder: "https://…" })),
    field("How did you hear of this job? (optional)", h("input", { name: "referral_source", maxlength: 100 })),
    message,
    button,
    status,
  );
  // One key per application the candidate means to send: a double click, a retry after a 503 or a lost answer all
  // reuse it, so the gateway creates one application. A definitive refusal (4xx) frees it for a corrected form.
  let key = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    showMessage(message, "");
    key = key || newIdempotencyKey();
    const body = formValues(form);
    if (!body.referral_source) delete body.referral_source;
    try {
      const answer = await api.request("POST", `/v1/jobs/${jobId}/applications`, { body, idempotencyKey: key, signal });
      for (const control of form.querySelectorAll("input, textarea")) control.disabled = true;
      button.hidden = true;
      status.textContent = statusText(answer);
      status.append(" ", h("a", { href: "#/applications" }, "My applications"));
      await followDecision(api, answer.application_id, signal, (application) => {
        replace(status, statusText(application), " ", h("a", { href: "#/applications" }, "My applications"));
      });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) key = null;
      showMessage(message, describe(error));
      button.disabled = false;
    }
  });
  return form;
}
