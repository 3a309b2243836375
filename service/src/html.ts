const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A complete HTML page around a body that is already escaped. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

/** An HTML list of links; hrefs and labels are escaped here. */
export function linkList(links: ReadonlyArray<{ href: string; label: string }>): string {
  return itemList(links.map(linkItem));
}

/** One link as a list item; its href and label are escaped here. */
export function linkItem(link: { href: string; label: string }): string {
  return `<li><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></li>`;
}

/** An HTML list of items already rendered (see linkItem). */
export function itemList(items: readonly string[]): string {
  return `<ul>\n${items.join("\n")}\n</ul>`;
}
