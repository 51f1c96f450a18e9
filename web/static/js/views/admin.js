// Admins invite analysts, and employers into an existing or a new company; the link carries the token, shown once.

import { describe, field, formValues, h, messageBox, replace, showMessage, when } from "../dom.js";

export function render({ api, view, navigate }) {
  if (api.user?.role !== "admin") return navigate("#/login?next=%23%2Fadmin");
  const message = messageBox();
  const form = h(
    "form",
    { class: "panel narrow", novalidate: true, "aria-label": "Invite someone" },
    h("h1", {}, "Invite someone"),
    field("Their email", h("input", { name: "email", type: "email", required: true })),
    field("Role", h("select", { name: "role" }, h("option", { value: "analyst" }, "analyst"), h("option", { value: "employer" }, "employer"))),
    field("Company id (employers; empty for a new company)", h("input", { name: "company_id", maxlength: 36 })),
    message,
    h("button", { type: "submit" }, "Create invitation"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { email, role, company_id: companyId } = formValues(form);
    const body = { email, role };
    if (role === "employer" && companyId.trim()) body.company_id = companyId.trim();
    try {
      const invitation = await api.request("POST", "/v1/invitations", { body });
      const link = `${location.origin}/#/register?invite=${encodeURIComponent(invitation.invite_token)}`;
      showMessage(message, `Send them this link (valid until ${when(invitation.expires_at)}): ${link}`, "ok");
    } catch (error) {
      showMessage(message, describe(error));
    }
  });
  replace(view, form);
}
