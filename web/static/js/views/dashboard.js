// Analysts (and employers, for their own company): per-job 1-minute windows, the company's hourly windows, the
// job's funnel and rejection reasons, plotted with Chart.js from exactly the numbers the API returns. Each chart
// has its totals beside it as text, and a table behind a disclosure, for readers who do not see the plot.

import { describe, field, h, messageBox, replace, showMessage, words } from "../dom.js";

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const COLORS = { applications: "#2f5bea", accepted: "#1a8a4a", rejected: "#c2410c", views: "#6b7280" };

function chart(canvas, type, labels, datasets) {
  return new window.Chart(canvas, {
    type,
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  });
}

function series(items, names) {
  return names.map((name) => ({
    label: words(name),
    data: items.map((item) => item[name]),
    borderColor: COLORS[name],
    backgroundColor: COLORS[name],
    tension: 0.2,
  }));
}

function sum(items, name) {
  return items.reduce((total, item) => total + Number(item[name] || 0), 0);
}

function panel(title, testId) {
  const canvas = h("canvas", { role: "img", "aria-label": title });
  const totals = h("p", { class: "totals", "data-testid": testId });
  const table = h("details", {}, h("summary", {}, "Numbers"));
  return { element: h("section", { class: "panel chart" }, h("h2", {}, title), totals, h("div", { class: "plot" }, canvas), table), canvas, totals, table };
}

function numbers(details, headers, rows) {
  details.append(
    h(
      "div",
      { class: "table" },
      h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell)))))),
    ),
  );
}

export async function render({ api, view, query, signal, navigate }) {
  const role = api.user?.role;
  if (!["analyst", "admin", "employer"].includes(role)) return navigate("#/login?next=%23%2Fdashboard");
  const message = messageBox();
  const picker = h("select", { name: "job" }, h("option", { value: "" }, "Choose a job…"));
  const search = h("input", { name: "q", type: "search", placeholder: "find a job by title" });
  const form = h("form", { class: "search", "aria-label": "Choose a job" }, role === "employer" ? null : field("Search", search), field("Job", picker), h("button", { type: "submit" }, "Show"));
  const charts = h("div", { class: "charts" });
  replace(view, h("h1", {}, "Analytics"), form, message, charts);

  async function loadJobs() {
    const answer =
      role === "employer"
        ? await api.request("GET", "/v1/me/jobs", { query: { limit: 100 }, signal })
        : await api.request("GET", "/v1/jobs", { query: { q: search.value.trim() || null, limit: 50 }, signal, auth: false });
    replace(picker, h("option", { value: "" }, "Choose a job…"), answer.items.map((job) => h("option", { value: job.job_id, selected: job.job_id === query.get("job") }, job.title)));
  }
  search.addEventListener("change", () => loadJobs().catch((error) => showMessage(message, describe(error))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (picker.value) navigate(`#/dashboard?job=${picker.value}`);
  });
  try {
    await loadJobs();
  } catch (error) {
    if (error.name !== "AbortError") showMessage(message, describe(error));
  }

  const jobId = query.get("job");
  try {
    const rejections = await api.request("GET", "/v1/analytics/rejections", { signal });
    charts.append(rejectionsPanel(rejections));
    if (!jobId) return;
    const [windows, funnel] = await Promise.all([
      api.request("GET", `/v1/analytics/jobs/${jobId}/windows`, { query: { limit: 500 }, signal }),
      api.request("GET", `/v1/analytics/jobs/${jobId}/funnel`, { signal }),
    ]);
    charts.prepend(jobWindowsPanel(windows), funnelPanel(funnel));
    if (funnel.company_id) {
      const company = await api.request("GET", `/v1/analytics/companies/${funnel.company_id}/windows`, { query: { limit: 500 }, signal });
      charts.insertBefore(companyPanel(company), charts.lastChild);
    }
  } catch (error) {
    if (error.name !== "AbortError") showMessage(message, describe(error));
  }
}

function jobWindowsPanel(answer) {
  const view = panel("Applications per minute (this job, last hour)", "job-window-totals");
  const items = answer.items;
  view.totals.textContent = `${sum(items, "applications")} applications, ${sum(items, "accepted")} accepted, ${sum(items, "rejected")} rejected, ${sum(items, "views")} views in ${items.length} one-minute windows.`;
  const labels = items.map((item) => TIME.format(new Date(item.window_start)));
  chart(view.canvas, "line", labels, series(items, ["applications", "accepted", "rejected"]));
  numbers(view.table, ["Minute", "Applications", "Accepted", "Rejected", "Views"], items.map((item, i) => [labels[i], item.applications, item.accepted, item.rejected, item.views]));
  return view.element;
}

function funnelPanel(funnel) {
  const view = panel("Funnel (this job, all time)", "funnel-totals");
  const steps = [
    ["views", funnel.views],
    ["applications", funnel.applications],
    ["accepted", funnel.accepted],
    ...Object.entries(funnel.stages),
  ];
  const conversion = funnel.conversion.application_to_accepted;
  view.totals.textContent = `${funnel.views} views, ${funnel.applications} applications, ${funnel.accepted} accepted${conversion === null ? "" : ` (${Math.round(conversion * 100)}%)`}, ${funnel.stages.hired} hired.`;
  chart(view.canvas, "bar", steps.map(([name]) => words(name)), [{ label: "applications", data: steps.map(([, count]) => count), backgroundColor: COLORS.applications }]);
  numbers(view.table, ["Step", "Count"], steps.map(([name, count]) => [words(name), count]));
  return view.element;
}

function companyPanel(answer) {
  const view = panel("The company's hourly windows (every 5 minutes, last day)", "company-window-totals");
  const items = answer.items;
  const latest = items.at(-1);
  view.totals.textContent = latest
    ? `${items.length} windows; the latest hour: ${latest.applications} applications, ${latest.accepted} accepted.`
    : "No window yet.";
  const labels = items.map((item) => TIME.format(new Date(item.window_start)));
  chart(view.canvas, "line", labels, series(items, ["applications", "accepted"]));
  numbers(view.table, ["Hour from", "Applications", "Accepted", "Rejected"], items.map((item, i) => [labels[i], item.applications, item.accepted, item.rejected]));
  return view.element;
}

function rejectionsPanel(answer) {
  const view = panel(answer.company_id ? "Rejections by reason (the company, last day)" : "Rejections by reason (every job, last day)", "rejection-totals");
  view.totals.textContent = `${answer.rejected} rejected applications.`;
  chart(view.canvas, "bar", answer.by_reason.map((row) => words(row.reason)), [{ label: "rejected", data: answer.by_reason.map((row) => row.rejected), backgroundColor: COLORS.rejected }]);
  numbers(view.table, ["Reason", "Rejected"], answer.by_reason.map((row) => [words(row.reason), row.rejected]));
  return view.element;
}
