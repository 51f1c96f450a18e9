// Building pages without innerHTML: every text from the API goes in as a text node, never as markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A labelled form control; `control` is an input, select or textarea element.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", {}, hint) : null);
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// The message area of a form or panel: errors as readable text, announced to screen readers.
export function messageBox() {
  return h("p", { class: "message", role: "alert", "aria-live": "assertive", hidden: true });
}

export function showMessage(box, text, kind = "error") {
  box.hidden = !text;
  box.className = `message ${kind}`;
  box.textContent = text || "";
}

export function describe(error) {
  return typeof error?.describe === "function" ? error.describe() : String(error?.message || error);
}

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function when(iso) {
  return iso ? DATE.format(new Date(iso)) : "";
}

export function words(code) {
  return String(code || "").replaceAll("_", " ");
}
