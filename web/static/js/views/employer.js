// Employers: their company's jobs with counts, posting, editing and closing a job, a job's applicants (filtered,
// sorted, paged by cursor) and moving an application through its stages. Writes are accepted (202) at once and
// appear in the lists a moment later, once the read models have them.

import { describe, field, formValues, h, messageBox, replace, showMessage, when, words } from "../dom.js";

const STAGES = ["reviewed", "interview", "offer", "hired", "declined"];

function employerOnly(api, navigate) {
  if (api.user?.role === "employer") return true;
  navigate("#/login?next=%23%2Femployer");
  return false;
}

export async function renderJobs({ api, view, signal, navigate }) {
  if (!employerOnly(api, navigate)) return;
  const message = messageBox();
  const rows = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "More jobs");
  replace(
    view,
    h("h1", {}, "My company's jobs"),
    h("p", { class: "actions" }, h("a", { class: "button", href: "#/employer/new" }, "Post a job")),
    message,
    h(
      "div",
      { class: "table" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Job", "Status", "Applications", "Accepted", "Interview", "Hired", ""].map((t) => h("th", { scope: "col" }, t)))),
        rows,
      ),
    ),
    more,
    invitePanel(api),
  );
  let cursor = null;
  async function page() {
    try {
      const answer = await api.request("GET", "/v1/me/jobs", { query: { limit: 20, cursor }, signal });
      for (const job of answer.items) {
        rows.append(
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: `#/jobs/${job.job_id}` }, job.title)),
            h("td", {}, job.status),
            h("td", {}, job.applications),
            h("td", {}, job.accepted),
            h("td", {}, job.interview),
            h("td", {}, job.hired),
            h("td", {}, h("a", { href: `#/employer/jobs/${job.job_id}/applicants` }, "Applicants")),
          ),
        );
      }
      if (!answer.items.length && !cursor) rows.append(h("tr", {}, h("td", { colspan: 7 }, "No jobs yet: post your first one.")));
      cursor = answer.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      if (error.name !== "AbortError") showMessage(message, describe(error));
    }
  }
  more.addEventListener("click", page);
  await page();
}

function invitePanel(api) {
  const message = messageBox();
  const form = h(
    "form",
    { class: "panel", novalidate: true, "aria-label": "Invite a colleague" },
    h("h2", {}, "Invite a colleague"),
    field("Their email", h("input", { name: "email", type: "email", required: true })),
    message,
    h("button", { type: "submit" }, "Create invitation"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const invitation = await api.request("POST", `/v1/companies/${api.user.company_id}/invitations`, {
        body: { email: formValues(form).email, role: "employer" },
      });
      const link = `${location.origin}/#/register?invite=${encodeURIComponent(invitation.invite_token)}`;
      showMessage(message, `Send them this link (valid until ${when(invitation.expires_at)}): ${link}`, "ok");
    } catch (error) {
      showMessage(message, describe(error));
    }
  });
  return form;
}

function jobForm(job, onSubmit) {
  const message = messageBox();
  const value = (name) => (job && job[name] !== null && job[name] !== undefined ? job[name] : "");
  const deadline = job?.deadline ? new Date(job.deadline) : null;
  const local = deadline ? new Date(deadline.getTime() - deadline.getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "";
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    field("Title", h("input", { name: "title", required: true, maxlength: 200, value: value("title") })),
    field("Description", h("textarea", { name: "description", rows: 8, required: true }, value("description"))),
    field("Location", h("input", { name: "location", required: true, maxlength: 120, value: value("location") })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "remote", value: "true", checked: Boolean(job?.remote) }), " Remote"),
    field("Tags", h("input", { name: "tags", value: (job?.tags || []).join(", ") }), "Comma-separated, e.g. python, kafka"),
    h(
      "div",
      { class: "row" },
      field("Salary from", h("input", { name: "salary_min", type: "number", min: 0, value: value("salary_min") })),
      field("Salary to", h("input", { name: "salary_max", type: "number", min: 0, value: value("salary_max") })),
      field("Currency", h("input", { name: "currency", maxlength: 3, placeholder: "EUR", value: value("currency") })),
    ),
    h(
      "div",
      { class: "row" },
      field("Places (applications accepted)", h("input", { name: "max_applications", type: "number", min: 1, value: value("max_applications") })),
      field("Deadline", h("input", { name: "deadline", type: "datetime-local", value: local })),
    ),
    message,
    h("button", { type: "submit" }, job ? "Save changes" : "Post the job"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const raw = formValues(form);
    const number = (text) => (String(text).trim() === "" ? null : Number(text));
    const body = {
      title: raw.title,
      description: raw.description,
      location: raw.location,
      remote: raw.remote === "true",
      tags: String(raw.tags || "").split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean),
      salary_min: number(raw.salary_min),
      salary_max: number(raw.salary_max),
      currency: String(raw.currency || "").trim().toUpperCase() || null,
      max_applications: number(raw.max_applications),
      deadline: raw.deadline ? new Date(raw.deadline).toISOString() : null,
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await onSubmit(body);
    } catch (error) {
      showMessage(message, describe(error));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export function renderNewJob({ api, view, navigate }) {
  if (!employerOnly(api, navigate)) return;
  replace(
    view,
    h("h1", {}, "Post a job"),
    jobForm(null, async (body) => {
      const job = await api.request("POST", "/v1/jobs", { body });
      navigate(`#/employer/jobs/${job.job_id}/applicants?posted=1`);
    }),
  );
}

export async function renderEditJob({ api, view, params, signal, navigate }) {
  if (!employerOnly(api, navigate)) return;
  const [jobId] = params;
  const job = await api.request("GET", `/v1/jobs/${jobId}`, { signal, auth: false });
  const message = messageBox();
  const close = h("button", { type: "button", class: "danger", disabled: job.status === "closed" }, job.status === "closed" ? "Closed" : "Close this job");
  close.addEventListener("click", async () => {
    if (!window.confirm("Close this job? New applications will be rejected.")) return;
    try {
      await api.request("POST", `/v1/jobs/${jobId}/close`, {});
      close.disabled = true;
      close.textContent = "Closed";
      showMessage(message, "The job is closed.", "ok");
    } catch (error) {
      showMessage(message, describe(error));
    }
  });
  replace(
    view,
    h("p", { class: "back" }, h("a", { href: `#/jobs/${jobId}` }, "← The job")),
    h("h1", {}, `Edit: ${job.title}`),
    message,
    jobForm(job, async (body) => {
      await api.request("PATCH", `/v1/jobs/${jobId}`, { body });
      showMessage(message, "Saved: the job page shows it within seconds.", "ok");
    }),
    h("p", { class: "actions" }, close),
  );
}

export async function renderApplicants({ api, view, params, query, signal, navigate }) {
  if (!employerOnly(api, navigate)) return;
  const [jobId] = params;
  const message = messageBox();
  const rows = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "More applicants");
  const filter = (name, options) =>
    h("select", { name }, h("option", { value: "" }, "any"), options.map((option) => h("option", { value: option, selected: query.get(name) === option }, words(option))));
  const filters = h(
    "form",
    { class: "search", "aria-label": "Filter applicants" },
    field("Stage", filter("stage", ["submitted", ...STAGES])),
    field("Status", filter("status", ["accepted", "rejected"])),
    field("Order", h("select", { name: "sort" }, h("option", { value: "newest" }, "newest first"), h("option", { value: "oldest", selected: query.get("sort") === "oldest" }, "oldest first"))),
    h("button", { type: "submit" }, "Show"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const search = new URLSearchParams();
    for (const [name, value] of new FormData(filters).entries()) if (value) search.set(name, String(value));
    navigate(`#/employer/jobs/${jobId}/applicants?${search}`);
  });
  const title = h("h1", {}, "Applicants");
  replace(
    view,
    h("p", { class: "back" }, h("a", { href: "#/employer" }, "← My jobs"), " · ", h("a", { href: `#/jobs/${jobId}` }, "The job")),
    title,
    query.get("posted") ? h("p", { class: "message ok" }, "Posted: the job is on the board within seconds.") : null,
    filters,
    message,
    h(
      "div",
      { class: "table" },
      h("table", {}, h("thead", {}, h("tr", {}, ["Applicant", "Sent", "Status", "Stage", "Move to"].map((t) => h("th", { scope: "col" }, t)))), rows),
    ),
    more,
  );
  api.request("GET", `/v1/jobs/${jobId}`, { signal, auth: false }).then((job) => (title.textContent = `Applicants: ${job.title}`)).catch(() => {});
  let cursor = null;
  async function page() {
    try {
      const answer = await api.request("GET", `/v1/jobs/${jobId}/applications`, {
        query: { stage: query.get("stage"), status: query.get("status"), sort: query.get("sort"), limit: 25, cursor },
        signal,
      });
      rows.append(...answer.items.map((application) => applicantRow(api, application)));
      if (!answer.items.length && !cursor) rows.append(h("tr", {}, h("td", { colspan: 5 }, "No applicant matches yet.")));
      cursor = answer.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      if (error.name !== "AbortError") showMessage(message, describe(error));
    }
  }
  more.addEventListener("click", page);
  await page();
}

function applicantRow(api, application) {
  const stage = h("td", { "data-testid": "stage" }, words(application.stage));
  const note = h("small", { role: "status" });
  const choice = h(
    "select",
    { "aria-label": `New stage for applicant ${application.candidate_id.slice(0, 8)}` },
    STAGES.map((option) => h("option", { value: option }, words(option))),
  );
  const move = h("button", { type: "button" }, "Move");
  move.addEventListener("click", async () => {
    move.disabled = true;
    try {
      await api.request("POST", `/v1/applications/${application.application_id}/stage`, { body: { stage: choice.value } });
      stage.textContent = words(choice.value);
      note.textContent = " Moved; the candidate is told.";
    } catch (error) {
      note.textContent = ` ${describe(error)}`;
    } finally {
      move.disabled = false;
    }
  });
  const accepted = application.status === "accepted";
  return h(
    "tr",
    { dataset: { applicationId: application.application_id } },
    h("th", { scope: "row" }, application.candidate_name || `Candidate ${application.candidate_id.slice(0, 8)}`),
    h("td", {}, when(application.submitted_at)),
    h("td", {}, application.status === "rejected" ? `rejected: ${words(application.rejection_reason)}` : "accepted"),
    stage,
    h("td", {}, accepted ? [choice, " ", move, note] : "—"),
  );
}
