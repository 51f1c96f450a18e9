// Log in and register. Candidates and employers register themselves; with an invitation token (from a colleague
// or an admin) the account joins that company or gets that role.

import { describe, field, formValues, h, messageBox, replace, showMessage } from "../dom.js";

const HOME = { candidate: "#/jobs", employer: "#/employer", analyst: "#/dashboard", admin: "#/dashboard" };

function home(user) {
  return HOME[user?.role] || "#/jobs";
}

export function renderLogin({ api, view, navigate, query }) {
  const message = messageBox();
  const form = h(
    "form",
    { class: "panel narrow", novalidate: true },
    h("h1", {}, "Log in"),
    field("Email", h("input", { name: "email", type: "email", autocomplete: "username", required: true })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    message,
    h("button", { type: "submit" }, "Log in"),
    h("p", {}, "New here? ", h("a", { href: "#/register" }, "Create an account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { email, password } = formValues(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api.login(email, password);
      navigate(query.get("next") || home(api.user));
    } catch (error) {
      showMessage(message, describe(error));
    } finally {
      button.disabled = false;
    }
  });
  replace(view, form);
  form.querySelector("input").focus();
}

export function renderRegister({ api, view, navigate, query }) {
  const invite = query.get("invite") || "";
  const message = messageBox();
  const role = h(
    "select",
    { name: "role", disabled: Boolean(invite) },
    h("option", { value: "candidate" }, "I am looking for a job"),
    h("option", { value: "employer" }, "I hire (creates a new company)"),
  );
  const form = h(
    "form",
    { class: "panel narrow", novalidate: true },
    h("h1", {}, invite ? "Accept your invitation" : "Create an account"),
    field("Your name", h("input", { name: "display_name", autocomplete: "name", required: true, maxlength: 100 })),
    field("Email", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    field(
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 12 }),
      "At least 12 characters.",
    ),
    invite ? h("p", {}, "Your role and company come from the invitation.") : field("Account", role),
    message,
    h("button", { type: "submit" }, "Create account"),
    h("p", {}, "Have an account? ", h("a", { href: "#/login" }, "Log in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = formValues(form);
    if (invite) fields.invite_token = invite;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api.register(fields);
      navigate(home(api.user));
    } catch (error) {
      showMessage(message, describe(error));
    } finally {
      button.disabled = false;
    }
  });
  replace(view, form);
  form.querySelector("input").focus();
}
