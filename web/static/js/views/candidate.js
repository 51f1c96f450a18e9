// A candidate's applications, newest first, each with its live status. Only the newest unsettled ones are
// followed live: a browser opens at most six connections to one host, and each follow holds one.

import { describe, h, messageBox, replace, showMessage, when } from "../dom.js";
import { followDecision, isSettled, statusText } from "./status.js";

const LIVE = 4;

export async function render({ api, view, signal, navigate }) {
  if (api.user?.role !== "candidate") return navigate("#/login?next=%23%2Fapplications");
  const message = messageBox();
  const list = h("ul", { class: "cards", "aria-label": "My applications" });
  replace(view, h("h1", {}, "My applications"), message, list);
  let answer;
  try {
    answer = await api.request("GET", "/v1/me/applications", { query: { limit: 50 }, signal });
  } catch (error) {
    if (error.name !== "AbortError") showMessage(message, describe(error));
    return;
  }
  if (!answer.items.length) {
    list.append(h("li", { class: "empty" }, "No applications yet. ", h("a", { href: "#/jobs" }, "Find a job")));
    return;
  }
  const titles = new Map();
  const rows = answer.items.map((application) => {
    const title = h("a", { href: `#/jobs/${application.job_id}` }, "a job");
    const status = h("p", { class: "status", "data-testid": "application-status" }, statusText(application));
    titles.set(application.job_id, [...(titles.get(application.job_id) || []), title]);
    list.append(
      h("li", { class: "card", dataset: { applicationId: application.application_id } }, h("h3", {}, title), status, h("p", { class: "meta" }, `Sent ${when(application.submitted_at)}`)),
    );
    return { application, status };
  });
  for (const [jobId, links] of titles) {
    api
      .request("GET", `/v1/jobs/${jobId}`, { signal, auth: false })
      .then((job) => links.forEach((link) => (link.textContent = job.title)))
      .catch(() => {});
  }
  const unsettled = rows.filter((row) => !isSettled(row.application)).slice(0, LIVE);
  await Promise.all(
    unsettled.map(({ application, status }) =>
      followDecision(api, application.application_id, signal, (latest) => (status.textContent = statusText(latest)), {
        stages: true,
      }).catch((error) => {
        if (error.name !== "AbortError") status.textContent = `${statusText(application)} (${describe(error)})`;
      }),
    ),
  );
}
