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
