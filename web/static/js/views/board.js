// The job board: search with filters (kept in the address, so a search can be shared and reloaded) and the
// trending jobs of the last day.

import { describe, field, h, messageBox, replace, showMessage } from "../dom.js";

const PAGE = 20;

export function jobCard(job) {
  const salary =
    job.salary_min || job.salary_max
      ? `${job.salary_min ?? "…"}–${job.salary_max ?? "…"} ${job.currency || ""}`.trim()
      : null;
  return h(
    "li",
    { class: "card" },
    h("h3", {}, h("a", { href: `#/jobs/${job.job_id}` }, job.title)),
    h(
      "p",
      { class: "meta" },
      [job.location, job.remote ? "remote" : null, salary, job.status === "closed" ? "closed" : null]
        .filter(Boolean)
        .join(" · "),
    ),
    job.tags?.length ? h("p", { class: "tags" }, job.tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
  );
}

export async function render({ api, view, query, navigate, signal }) {
  const message = messageBox();
  const results = h("ul", { class: "cards", "aria-label": "Jobs" });
  const more = h("button", { type: "button", hidden: true }, "More jobs");
  const form = h(
    "form",
    { class: "search", role: "search" },
    field("Search", h("input", { name: "q", type: "search", value: query.get("q") || "", placeholder: "title or words" })),
    field("Location", h("input", { name: "location", value: query.get("location") || "" })),
    field("Tag", h("input", { name: "tag", value: query.get("tag") || "", placeholder: "e.g. python" })),
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "remote", value: "true", checked: query.get("remote") === "true" }),
      " Remote only",
    ),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const search = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) if (String(value).trim()) search.set(name, String(value).trim());
    navigate(`#/jobs${search.toString() ? `?${search}` : ""}`);
  });
  const trending = h("ol", { class: "trending" });
  replace(
    view,
    h(
      "div",
      { class: "columns" },
      h("section", {}, h("h1", {}, "Jobs"), form, message, results, more),
      h("aside", {}, h("h2", {}, "Trending today"), trending),
    ),
  );

  const filters = {
    q: query.get("q"),
    location: query.get("location"),
    tag: query.get("tag") ? query.get("tag").toLowerCase() : null,
    remote: query.get("remote") === "true" ? "true" : null,
  };
  let offset = 0;
  async function page() {
    more.disabled = true;
    try {
      const answer = await api.request("GET", "/v1/jobs", { query: { ...filters, limit: PAGE, offset }, signal, auth: false });
      results.append(...answer.items.map(jobCard));
      if (!answer.items.length && !offset) results.append(h("li", { class: "empty" }, "No job matches this search."));
      offset += answer.items.length;
      more.hidden = answer.items.length < PAGE;
    } catch (error) {
      if (error.name !== "AbortError") showMessage(message, describe(error));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", page);
  await page();
  try {
    const hot = await api.request("GET", "/v1/jobs/trending", { query: { limit: 5 }, signal, auth: false });
    replace(
      trending,
      hot.items.length
        ? hot.items.map((job) => h("li", {}, h("a", { href: `#/jobs/${job.job_id}` }, job.title), ` · ${job.accepted} accepted`))
        : h("li", { class: "empty" }, "Nothing yet today."),
    );
  } catch (error) {
    if (error.name !== "AbortError") replace(trending, h("li", { class: "empty" }, describe(error)));
  }
}
