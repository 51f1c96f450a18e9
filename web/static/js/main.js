// The front end's entry: reads where the API is, keeps the session, and routes `#/...` to one view at a time.
// Leaving a view aborts its signal, which ends its long-polls and timers.

import { Api } from "./api.js";
import { h, replace } from "./dom.js";
import * as admin from "./views/admin.js";
import * as auth from "./views/auth.js";
import * as board from "./views/board.js";
import * as candidate from "./views/candidate.js";
import * as dashboard from "./views/dashboard.js";
import * as employer from "./views/employer.js";
import * as job from "./views/job.js";

const ROUTES = [
  [/^\/jobs$/, board.render],
  [/^\/jobs\/([0-9a-f-]{36})$/, job.render],
  [/^\/login$/, auth.renderLogin],
  [/^\/register$/, auth.renderRegister],
  [/^\/applications$/, candidate.render],
  [/^\/employer$/, employer.renderJobs],
  [/^\/employer\/new$/, employer.renderNewJob],
  [/^\/employer\/jobs\/([0-9a-f-]{36})\/edit$/, employer.renderEditJob],
  [/^\/employer\/jobs\/([0-9a-f-]{36})\/applicants$/, employer.renderApplicants],
  [/^\/dashboard$/, dashboard.render],
  [/^\/admin$/, admin.render],
];

const NAV = {
  candidate: [["#/jobs", "Jobs"], ["#/applications", "My applications"]],
  employer: [["#/jobs", "Jobs"], ["#/employer", "My jobs"], ["#/dashboard", "Analytics"]],
  analyst: [["#/jobs", "Jobs"], ["#/dashboard", "Analytics"]],
  admin: [["#/jobs", "Jobs"], ["#/dashboard", "Analytics"], ["#/admin", "Invitations"]],
};

let current = null;

function showWait(wait) {
  const notice = document.getElementById("notice");
  if (!wait) {
    notice.hidden = true;
    return;
  }
  const why = wait.status ? `${wait.message} (HTTP ${wait.status})` : wait.message;
  notice.textContent = `${why}. Retrying in ${wait.seconds} s; nothing you entered is lost.`;
  notice.hidden = false;
}

function renderNav(api) {
  const user = api.user;
  const links = (user ? NAV[user.role] : [["#/jobs", "Jobs"]]) || [];
  const items = links.map(([href, label]) => h("a", { href }, label));
  if (user) {
    items.push(h("span", { class: "who" }, `${user.display_name} (${user.role})`));
    items.push(h("button", { type: "button", class: "link", onclick: () => logOut(api) }, "Log out"));
  } else {
    items.push(h("a", { href: "#/login" }, "Log in"), h("a", { href: "#/register" }, "Register"));
  }
  replace(document.getElementById("nav"), items);
}

// Back to the job board once the session has ended, unless the user has gone elsewhere meanwhile
// (following an invitation link, say): the logout call may take a while.
function logOut(api) {
  const from = location.hash;
  api.logout().finally(() => {
    if (location.hash === from) navigate("#/jobs");
  });
}

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

function route(api) {
  if (current) current.abort();
  current = new AbortController();
  const [path, search] = (location.hash.slice(1) || "/jobs").split("?");
  const view = document.getElementById("view");
  const context = { api, view, query: new URLSearchParams(search || ""), signal: current.signal, navigate };
  for (const [pattern, render] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      replace(view, h("p", {}, "Loading…"));
      Promise.resolve(render({ ...context, params: match.slice(1) })).catch((error) => {
        if (error.name !== "AbortError") replace(view, h("p", { class: "message error", role: "alert" }, String(error.message)));
      });
      return;
    }
  }
  replace(view, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/jobs" }, "Back to the jobs")));
}

async function boot() {
  const config = await fetch("/config.json").then((response) => response.json());
  const api = new Api(config.api_url, { onWait: showWait, onSession: () => renderNav(api) });
  window.addEventListener("hashchange", () => route(api));
  renderNav(api);
  route(api);
}

boot();
