// Small DOM and formatting helpers. Text always goes in as text nodes (never innerHTML):
// job names, messages and errors come from workers and must not become markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

// Like replace, but the nodes already there are updated in place wherever the new tree
// has the same shape: a row under the pointer stays the same element (a click whose
// press and release straddle a redraw still lands), and a progress bar keeps its node,
// so its width animates instead of jumping. Listeners are not copied: those of the
// nodes kept are the same functions (they read data-* attributes when they fire).
export function morph(node, ...children) {
  const next = document.createElement("div");
  append(next, children);
  patchChildren(node, next);
}

function patchChildren(old, next) {
  const fresh = [...next.childNodes];
  fresh.forEach((child, i) => {
    const current = old.childNodes[i];
    if (!current) old.append(child);
    else if (!same(current, child)) old.replaceChild(child, current);
    else if (current.nodeType === Node.TEXT_NODE) {
      if (current.data !== child.data) current.data = child.data;
    } else patch(current, child);
  });
  while (old.childNodes.length > fresh.length) old.lastChild.remove();
}

function same(a, b) {
  return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
}

function patch(old, next) {
  for (const { name } of [...old.attributes]) {
    if (!next.hasAttribute(name)) old.removeAttribute(name);
  }
  for (const { name, value } of [...next.attributes]) {
    if (old.getAttribute(name) !== value) old.setAttribute(name, value);
  }
  patchChildren(old, next);
}

export function seconds(iso) {
  return iso ? Date.parse(iso) / 1000 : null;
}

export function duration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs)) return "";
  if (secs < 1) return `${Math.round(secs * 1000)} ms`;
  if (secs < 60) return `${secs.toFixed(1)} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} m ${Math.floor(secs % 60)} s`;
  return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} m`;
}

export function ago(iso) {
  const at = seconds(iso);
  if (at === null) return "";
  return duration(Math.max(0, Date.now() / 1000 - at)) + " ago";
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}
